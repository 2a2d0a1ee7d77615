"""Wiring of the content service: the one place its parts meet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.content import api, handlers
from shared import topics
from shared.events import ContentPublished
from shared.service import Service, serve
from shared.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    http_port: int = Field(8001, description="HTTP port of the content service")


def create_app(settings: ContentSettings | None = None) -> FastAPI:
    settings = settings or ContentSettings()
    service = Service(
        "content", settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.CONTENT_LIFECYCLE: ContentPublished},
        description="Content items, approval workflow, brand charter, scheduling; intranet ingestion.",
    )
    service.consume(topics.INTRANET_CONTENT, {"intranet.content.submitted": handlers.on_intranet_content})
    return service.http_app(api.router)


def main() -> None:
    settings = ContentSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
