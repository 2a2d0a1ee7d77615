"""Wiring of the reporting service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.reporting import api, handlers, jobs
from shared import topics
from shared.events import KpiChanged
from shared.service import Service, serve
from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    http_port: int = Field(8004, description="HTTP port of the reporting service")
    # Larger than the shared default: a batch's cost is mostly per distinct rollup key touched,
    # not per event, so bigger batches amortise it (see bench/results/reporting.md).
    consumer_max_records: int = Field(
        5000, ge=1, description="Records per consumer batch (one DB transaction) of the reporting consumers")
    kpi_stream_min_interval_seconds: float = Field(
        5.0, ge=0, description="A KPI key is emitted on reporting.kpis.v1 at most once per this interval")
    kpi_stream_tick_seconds: float = Field(0.5, gt=0, description="How often the KPI stream looks for changes")
    webhook_retry_delays_seconds: list[float] = Field(
        [5.0, 30.0, 120.0, 600.0, 3600.0], description="Delays between the attempts of a webhook delivery")
    webhook_tick_seconds: float = Field(1.0, gt=0, description="How often due webhook deliveries are sent")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook POST")
    webhook_pause_after_failures: int = Field(
        20, ge=1, description="A KPI webhook subscription is paused after this many failed attempts in a row "
                              "(its pending deliveries wait; PATCH active=true resumes it)")
    gauge_tenants: int = Field(20, ge=0, description="Business gauges for at most this many tenants (the largest)")
    gauge_subsidiaries: int = Field(20, ge=0, description="... and this many subsidiaries of each")
    gauge_tick_seconds: float = Field(15.0, gt=0, description="How often the business gauges are refreshed")


def create_app(settings: ReportingSettings | None = None, *, name: str = "reporting") -> FastAPI:
    """``name`` is the schema and the consumer groups' prefix: another name replays every topic
    from the start into an empty schema (how replay equality is checked)."""
    s = settings or ReportingSettings()
    service = Service(
        name, s, migrations=Path(__file__).parent / "migrations", produces={topics.KPIS: KpiChanged},
        description="KPI rollups of content, ambassadors, notifications and engagements; the KPI API, "
                    "the KPI stream, leaderboards, digests and outbound webhooks.",
    )
    service.consume_batches(topics.CONTENT_LIFECYCLE, ("content.published", "content.updated"),
                            handlers.on_content_events)
    service.consume_batches(topics.AMBASSADORS, ("ambassador.enrolled", "ambassador.updated", "ambassador.withdrawn"),
                            handlers.on_ambassador_events)
    service.consume_batches(topics.NOTIFICATIONS, ("notification.sent",), handlers.on_notifications)
    service.consume_batches(topics.ENGAGEMENTS, ("engagement.recorded",), handlers.on_engagements)
    service.run_while_started(lambda: jobs.run_kpi_stream(
        service.pool, s.kpi_stream_min_interval_seconds, s.kpi_stream_tick_seconds))
    service.run_while_started(lambda: jobs.run_webhooks(
        service.pool, s.webhook_retry_delays_seconds, s.webhook_tick_seconds, s.webhook_timeout_seconds,
        s.webhook_pause_after_failures))
    service.run_while_started(lambda: jobs.run_gauges(
        service.pool, s.gauge_tenants, s.gauge_subsidiaries, s.gauge_tick_seconds))
    return service.http_app(api.router, api.me)


def main() -> None:
    settings = ReportingSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
