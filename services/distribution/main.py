"""Wiring of the distribution service: the one place its parts meet."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import Field, SecretStr

from services.distribution import admin_api, api, channels, domain, scim_api
from services.distribution.handlers import delivery, directory, fanout
from shared import topics
from shared.events import AmbassadorEnrolled, NotificationSent
from shared.service import Service, serve
from shared.settings import ServiceSettings


class DistributionSettings(ServiceSettings):
    http_port: int = Field(8002, description="HTTP port of the distribution service")
    tracking_base_url: str = Field("http://127.0.0.1:8003",
                                   description="Public base URL of the tracking service, for tracked links")
    consent_validity_days: float = Field(365, gt=0, description="A consent lapses this long after it was given "
                                                                "unless renewed")
    personal_data_retention_days: float = Field(
        90, ge=0, description="Personal data of departed employees is erased this long after the departure")
    directory_sweep_interval_seconds: float = Field(
        60, gt=0, description="How often lapsed consents are withdrawn and retention-expired data erased")
    alerts_per_week: int = Field(5, ge=1, description="Fatigue budget: alerts per ambassador in any 7 days, "
                                                      "whatever the channel (more are deferred, never dropped)")
    digest_hour: int = Field(8, ge=0, le=23, description="Local hour (the ambassador's time zone) of the daily "
                                                         "e-mail digest")
    fanout_page_size: int = Field(2000, ge=1, description="Ambassadors read and notified per page (one transaction) "
                                                          "of a fan-out")
    fanout_slices: int = Field(8, ge=1, le=256, description="Slices a fan-out is cut into: the unit of work replicas "
                                                            "share")
    fanout_concurrency: int = Field(2, ge=1, description="Fan-out pages written at once per replica")
    fanout_poll_interval_seconds: float = Field(1.0, gt=0, description="How often an idle fan-out worker looks for "
                                                                       "work (the consumer's commit wakes it sooner)")
    smtp_host: str = Field("127.0.0.1", description="SMTP server for e-mail alerts and digests")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port")
    smtp_username: str | None = Field(None, description="SMTP login, if the server wants one")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_start_tls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS")
    smtp_use_tls: bool = Field(False, description="Connect to the SMTP server over TLS (port 465)")
    mail_from: str = Field("Portevoix <noreply@portevoix.invalid>", description="From: of the e-mails sent")
    delivery_poll_interval_seconds: float = Field(1.0, gt=0, description="How often the delivery worker looks "
                                                                         "for due notifications when idle")
    delivery_batch_size: int = Field(200, ge=1, description="Deliveries leased per round of the worker")
    delivery_concurrency: int = Field(50, ge=1, description="Sends in flight per replica")
    delivery_lease_seconds: float = Field(120, gt=0, description="A leased delivery not recorded by then "
                                                                 "(replica died) is sent again")
    delivery_timeout_seconds: float = Field(10, gt=0, description="Longest wait for one SMTP or HTTP send")
    delivery_max_attempts: int = Field(6, ge=1, description="Attempts before a notification is failed (DLQ)")
    delivery_backoff_base_seconds: float = Field(5, gt=0, description="First retry delay (doubles each time, "
                                                                      "with jitter)")
    delivery_backoff_max_seconds: float = Field(1800, gt=0, description="Longest retry delay")
    circuit_failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open an endpoint's "
                                                                "circuit")
    circuit_open_seconds: float = Field(60, gt=0, description="How long an open circuit skips its endpoint")


def create_app(settings: DistributionSettings | None = None) -> FastAPI:
    settings = settings or DistributionSettings()
    service = Service(
        "distribution", settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.AMBASSADORS: AmbassadorEnrolled, topics.NOTIFICATIONS: NotificationSent},
        description="Ambassador directory (from HR events and SCIM 2.0), enrolment and consent, audience "
                    "targeting, notifications with tracked links.",
    )
    service.consume(topics.HR_EMPLOYEES, {
        "hr.employee.upserted": directory.on_employee_upserted,
        "hr.employee.departed": directory.on_employee_departed,
    })
    policy = fanout_policy(settings)
    content = fanout.Fanout(policy)
    service.consume(topics.CONTENT_LIFECYCLE, {
        "content.published": content.on_content_published,
        "content.updated": content.on_content_updated,
        "content.retired": content.on_content_retired,
    })
    service.run_while_started(directory.sweeper(lambda: service.pool, settings.personal_data_retention_days,
                                                settings.directory_sweep_interval_seconds))
    service.run_while_started(fanout.FanoutWorker(lambda: service.pool, policy).run)
    service.run_while_started(delivery_worker(service, settings))
    app = service.http_app(api.router, admin_api.router, admin_api.directory_router, scim_api.router)
    scim_api.install(app)
    return app


def fanout_policy(s: DistributionSettings) -> fanout.Policy:
    return fanout.Policy(s.alerts_per_week, s.digest_hour, s.fanout_page_size, s.fanout_slices, s.fanout_concurrency,
                         s.fanout_poll_interval_seconds)


def delivery_worker(service: Service, s: DistributionSettings) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        smtp = channels.SmtpSettings(
            s.smtp_host, s.smtp_port, s.mail_from, s.smtp_username,
            s.smtp_password.get_secret_value() if s.smtp_password else None, s.smtp_start_tls, s.smtp_use_tls,
            s.delivery_timeout_seconds)
        async with httpx.AsyncClient(timeout=s.delivery_timeout_seconds, follow_redirects=False) as http:
            senders = {"email": channels.Email(smtp), "email_digest": channels.Email(smtp),
                       "slack": channels.Slack(http), "teams": channels.Teams(http), "webhook": channels.Webhook(http)}
            policy = delivery.DeliveryPolicy(
                s.delivery_batch_size, s.delivery_concurrency, s.delivery_lease_seconds,
                s.delivery_poll_interval_seconds, s.delivery_max_attempts, s.delivery_backoff_base_seconds,
                s.delivery_backoff_max_seconds, s.alerts_per_week, s.digest_hour, s.tracking_base_url)
            breaker = domain.CircuitBreaker(s.circuit_failure_threshold, s.circuit_open_seconds)
            await delivery.DeliveryWorker(lambda: service.pool, lambda: service.broker, senders, policy,
                                          breaker).run()
    return run


def main() -> None:
    settings = DistributionSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
