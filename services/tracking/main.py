"""Wiring of the tracking service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field
from starlette.exceptions import HTTPException

from services.tracking import api, handlers
from shared import topics
from shared.events import EngagementRecorded
from shared.service import Service, serve
from shared.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    http_port: int = Field(8003, description="HTTP port of the tracking service (the redirector)")


def create_app(settings: TrackingSettings | None = None) -> FastAPI:
    settings = settings or TrackingSettings()
    service = Service(
        "tracking", settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.ENGAGEMENTS: EngagementRecorded},
        description="Tracked-link redirector and engagement recording.",
    )
    service.consume(topics.NOTIFICATIONS, {"notification.sent": handlers.on_notification_sent})
    app = service.http_app(api.router)
    app.add_exception_handler(HTTPException, api.not_found_page)
    service.run_while_started(lambda: handlers.prune_clicks_forever(service.pool))
    return app


def main() -> None:
    settings = TrackingSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
