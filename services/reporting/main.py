"""Wiring of the reporting service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.reporting import api, handlers
from shared import topics
from shared.service import Service, serve
from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    http_port: int = Field(8004, description="HTTP port of the reporting service")


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    service = Service(
        "reporting", settings, migrations=Path(__file__).parent / "migrations",
        description="KPI rollups of content, ambassadors, notifications and engagements; the KPI API.",
    )
    service.consume(topics.CONTENT_LIFECYCLE, {
        "content.published": handlers.on_content_published,
        "content.updated": handlers.on_content_updated,
    })
    service.consume(topics.AMBASSADORS, {
        "ambassador.enrolled": handlers.on_ambassador_enrolled,
        "ambassador.withdrawn": handlers.on_ambassador_withdrawn,
    })
    service.consume(topics.NOTIFICATIONS, {"notification.sent": handlers.on_notification_sent})
    service.consume(topics.ENGAGEMENTS, {"engagement.recorded": handlers.on_engagement_recorded})
    return service.http_app(api.router)


def main() -> None:
    settings = ReportingSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
