"""Wiring of the distribution service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.distribution import admin_api, api, scim_api
from services.distribution.handlers import directory, fanout
from services.distribution.scim import ScimError
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
    service.consume(topics.CONTENT_LIFECYCLE, {
        "content.published": fanout.on_content_published,
        "content.retired": fanout.on_content_retired,
    })
    service.run_while_started(directory.sweeper(lambda: service.pool, settings.personal_data_retention_days,
                                                settings.directory_sweep_interval_seconds))
    app = service.http_app(api.router, admin_api.router, admin_api.directory_router, scim_api.router)
    app.add_exception_handler(ScimError, scim_error_response)
    return app


scim_error_response = scim_api.scim_error_response


def main() -> None:
    settings = DistributionSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
