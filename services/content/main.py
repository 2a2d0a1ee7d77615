"""Wiring of the content service: the one place its parts meet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from services.content import api, handlers
from services.content.domain import IllegalTransition, SelfApproval
from services.content.watch import api as watch_api
from services.content.watch import handlers as watch
from shared import topics
from shared.events import ContentPublished
from shared.service import Service, serve
from shared.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    http_port: int = Field(8001, description="HTTP port of the content service")
    scheduler_interval_seconds: float = Field(5.0, gt=0, description="How often due publications and expiries run")
    scheduler_batch_size: int = Field(100, ge=1, description="Items published or retired per scheduler transaction")
    webhook_tolerance_seconds: float = Field(300, gt=0, description="Accepted clock skew of signed webhooks")
    webhook_max_bytes: int = Field(256 * 1024, ge=1024, description="Largest webhook body accepted")
    watch_poll_interval_seconds: float = Field(900, ge=1, description="How often a healthy watched feed is polled "
                                               "(a failing one backs off exponentially, up to a day)")
    watch_tick_seconds: float = Field(10, gt=0, description="How often the watcher looks for feeds due")
    watch_max_failures: int = Field(5, ge=1, description="Failed polls in a row before a feed is parked")
    watch_fetch_timeout_seconds: float = Field(15, gt=0, description="Longest wait for a publisher's answer")
    watch_max_feed_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest feed document read")
    image_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024,
                                 description="Largest image an editor may upload (its base64 body is let through "
                                 "the HTTP guard on /v1/images unless http_body_limits says otherwise)")
    watch_allow_private_addresses: bool = Field(
        False, description="Let feeds live on internal addresses (loopback, RFC 1918): off, so that a feed URL "
        "cannot make the poller reach into the company network; on for intranet feeds and tests")


def create_app(settings: ContentSettings | None = None) -> FastAPI:
    settings = settings or ContentSettings()
    upload_limit = settings.image_max_bytes * 4 // 3 + 4096  # base64 and the JSON around it
    settings = settings.model_copy(update={"http_body_limits": {"/v1/images": upload_limit,
                                                                **settings.http_body_limits}})
    service = Service(
        "content", settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.CONTENT_LIFECYCLE: ContentPublished},
        description="Content items, approval workflow, brand charter, scheduling; intranet ingestion.",
    )
    service.consume(topics.INTRANET_CONTENT, {"intranet.content.submitted": handlers.on_intranet_content})
    service.run_while_started(lambda: handlers.run_scheduler(
        service.pool, settings.scheduler_interval_seconds, settings.scheduler_batch_size))
    service.run_while_started(lambda: watch.run_watcher(lambda: service.pool, watch.PollSettings(
        interval=timedelta(seconds=settings.watch_poll_interval_seconds), max_failures=settings.watch_max_failures,
        timeout=settings.watch_fetch_timeout_seconds, max_bytes=settings.watch_max_feed_bytes,
        allow_private_addresses=settings.watch_allow_private_addresses), settings.watch_tick_seconds))
    app = service.http_app(api.router, api.admin, api.webhooks, watch_api.router, watch_api.ideas)
    app.state.settings = settings
    _answer_refusals(app)
    return app


def _answer_refusals(app: FastAPI) -> None:
    """The use cases' refusals, each as one clear HTTP answer."""
    def handle(kind: type[Exception], status: int, body: Any) -> None:
        async def answer(_: Request, error: Exception) -> JSONResponse:
            return JSONResponse({"detail": body(error)}, status_code=status)
        app.add_exception_handler(kind, answer)

    handle(handlers.NotFound, 404, lambda e: "no such content")
    handle(handlers.Forbidden, 403, str)
    handle(SelfApproval, 403, str)
    handle(handlers.WebhookRefused, 401, lambda e: f"webhook refused: {e}")
    handle(IllegalTransition, 409, lambda e: {"message": str(e), "state": e.current, "allowed": e.allowed})
    handle(handlers.CharterRefused, 422, lambda e: {"message": str(e),
                                                    "violations": [v.model_dump() for v in e.violations]})
    handle(watch.NotFound, 404, str)
    handle(watch.Forbidden, 403, str)
    handle(watch.Conflict, 409, str)
    handle(watch.Invalid, 422, lambda e: [{"loc": ["body"], "msg": str(e), "type": "value_error"}])

    async def invalid(_: Request, error: Exception) -> JSONResponse:
        # A whole-item validation after merging an edit: the same 422 shape as a request body's.
        errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in error.errors()]  # type: ignore[attr-defined]
        return JSONResponse({"detail": errors}, status_code=422)
    app.add_exception_handler(ValidationError, invalid)


def main() -> None:
    settings = ContentSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
