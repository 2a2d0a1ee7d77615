"""Wiring of the distribution service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.distribution import api, handlers
from shared import topics
from shared.events import AmbassadorEnrolled, NotificationSent
from shared.service import Service, serve
from shared.settings import ServiceSettings


class DistributionSettings(ServiceSettings):
    http_port: int = Field(8002, description="HTTP port of the distribution service")
    tracking_base_url: str = Field("http://127.0.0.1:8003",
                                   description="Public base URL of the tracking service, for tracked links")


def create_app(settings: DistributionSettings | None = None) -> FastAPI:
    settings = settings or DistributionSettings()
    service = Service(
        "distribution", settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.AMBASSADORS: AmbassadorEnrolled, topics.NOTIFICATIONS: NotificationSent},
        description="Ambassador directory (from HR), enrolment and consent, audience targeting, "
                    "notifications with tracked links.",
    )
    service.consume(topics.HR_EMPLOYEES, {
        "hr.employee.upserted": handlers.on_employee_upserted,
        "hr.employee.departed": handlers.on_employee_departed,
    })
    service.consume(topics.CONTENT_LIFECYCLE, {
        "content.published": handlers.on_content_published,
        "content.retired": handlers.on_content_retired,
    })
    return service.http_app(api.router)


def main() -> None:
    settings = DistributionSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
