"""Wiring of the web front: the one place its parts meet. Pages are static files (HTML, CSS,
JavaScript modules; no build step, nothing fetched from the internet); the API calls of the pages
go through the same-origin proxy to the four services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from services.web import api, handlers
from shared.service import Service, serve
from shared.settings import ServiceSettings


class WebSettings(ServiceSettings):
    http_port: int = Field(8005, description="HTTP port of the web front")
    content_base_url: str = Field("http://127.0.0.1:8001", description="Base URL of the content service")
    distribution_base_url: str = Field("http://127.0.0.1:8002", description="Base URL of the distribution service")
    tracking_base_url: str = Field("http://127.0.0.1:8003", description="Base URL of the tracking service")
    reporting_base_url: str = Field("http://127.0.0.1:8004", description="Base URL of the reporting service")
    web_local_login: bool = Field(False, description="Demo only: POST /login issues an HS256 token for any user, "
                                                     "tenant and roles (needs PORTEVOIX_JWT_HS256_SECRET)")
    web_login_ttl_seconds: int = Field(8 * 3600, ge=60, description="Lifetime of a demo login token")
    web_training_kit_file: Path = Field(Path(__file__).parent / "training_kit.json",
                                        description="JSON {language: text}: the training kit of a tenant whose "
                                                    "comms team has written none in the studio")
    web_kpi_poll_seconds: float = Field(5.0, gt=0, description="How often the dashboard refreshes the KPIs")
    web_proxy_timeout_seconds: float = Field(30.0, gt=0, description="Longest wait for a service behind the proxy")
    db_pool_max: int = Field(5, ge=1, description="Largest database pool size (per replica)")


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    service = Service("web", settings, migrations=Path(__file__).parent / "migrations",
                      description="The web front: ambassador hub, comms studio, KPI dashboard, and the "
                                  "same-origin proxy to the services.")
    app = service.http_app(api.pages, api.login, api.router, api.gateway, title="Portevoix web")
    app.mount("/static", StaticFiles(directory=api.STATIC), name="static")
    app.state.settings = settings
    app.state.default_kit = handlers.default_kit(settings.web_training_kit_file)
    app.state.bases = {"content": settings.content_base_url, "distribution": settings.distribution_base_url,
                       "tracking": settings.tracking_base_url, "reporting": settings.reporting_base_url}
    _with_http_client(app, settings)
    return app


def _with_http_client(app: FastAPI, settings: WebSettings) -> None:
    """One pooled HTTP client for the proxy, opened and closed with the service."""
    service_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.web_proxy_timeout_seconds, follow_redirects=False) as client:
            application.state.http = client
            async with service_lifespan(application):
                yield

    app.router.lifespan_context = lifespan


def main() -> None:
    settings = WebSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
