"""Wiring of the web front: the one place its parts meet. Pages are static files (HTML, CSS,
JavaScript modules; no build step, nothing fetched from the internet); the API calls of the pages
go through the same-origin proxy to the four services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import Field, SecretStr

from services.web import api, auth_api, handlers
from services.web.oidc import OidcClient
from shared.service import Service, serve
from shared.settings import ServiceSettings


class WebSettings(ServiceSettings):
    http_port: int = Field(8005, description="HTTP port of the web front")
    content_base_url: str = Field("http://127.0.0.1:8001", description="Base URL of the content service")
    distribution_base_url: str = Field("http://127.0.0.1:8002", description="Base URL of the distribution service")
    tracking_base_url: str = Field("http://127.0.0.1:8003", description="Base URL of the tracking service")
    reporting_base_url: str = Field("http://127.0.0.1:8004", description="Base URL of the reporting service")
    web_local_login: bool = Field(False, description="Demo only: POST /login opens a session for any user, "
                                                     "tenant and roles (needs PORTEVOIX_JWT_HS256_SECRET)")
    web_login_ttl_seconds: int = Field(8 * 3600, ge=60, description="Lifetime of a demo login session")
    web_public_url: str | None = Field(
        None, description="The front's URL as browsers reach it (https://portevoix.acme.example): the origin "
                          "state-changing calls must come from, and the base of the OIDC redirect URIs. "
                          "Unset: the request's own scheme and Host")
    web_oidc_issuer: str | None = Field(
        None, description="OpenID Connect issuer of the enterprise's identity provider (its discovery document is "
                          "<issuer>/.well-known/openid-configuration). Set with the client id and secret to sign in "
                          "at /auth/login")
    web_oidc_client_id: str | None = Field(None, description="The front's client id at the identity provider")
    web_oidc_client_secret: SecretStr | None = Field(
        None, description="The front's client secret (a confidential client: the tokens stay server-side)")
    web_oidc_client_auth: Literal["client_secret_basic", "client_secret_post"] = Field(
        "client_secret_basic", description="How the front authenticates at the token endpoint")
    web_oidc_scopes: list[str] = Field(
        ["openid", "profile", "email", "offline_access"],
        description="Scopes asked for (offline_access: a refresh token; add your API's scope if the provider "
                    "needs one to put the services' audience in the access token, e.g. api://portevoix/.default)")
    web_oidc_redirect_uri: str | None = Field(
        None, description="Redirect URI registered at the provider; default <public URL>/auth/callback")
    web_oidc_post_logout_redirect_uri: str | None = Field(
        None, description="Where the provider sends the browser after logout; default <public URL>/login?reason="
                          "logged_out (register it at the provider)")
    web_session_cookie_secure: bool = Field(
        True, description="Session cookies are Secure (HTTPS only). false is honoured only when the front is "
                          "reached over plain http on loopback (local demo)")
    web_session_max_seconds: int = Field(
        12 * 3600, ge=60, le=30 * 86400, description="Longest a browser session lasts, refreshes included")
    web_session_refresh_margin_seconds: int = Field(
        60, ge=0, description="Refresh the access token when it has less than this left")
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
    app = service.http_app(api.pages, auth_api.auth, api.router, api.gateway, title="Portevoix web")
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
            application.state.oidc = _oidc_client(client, settings)
            async with service_lifespan(application):
                yield

    app.router.lifespan_context = lifespan


def _oidc_client(http: httpx.AsyncClient, settings: WebSettings) -> OidcClient | None:
    if not (settings.web_oidc_issuer and settings.web_oidc_client_id and settings.web_oidc_client_secret):
        return None
    return OidcClient(http, issuer=settings.web_oidc_issuer, client_id=settings.web_oidc_client_id,
                      client_secret=settings.web_oidc_client_secret.get_secret_value(),
                      scopes=settings.web_oidc_scopes, auth_method=settings.web_oidc_client_auth)


def main() -> None:
    settings = WebSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
