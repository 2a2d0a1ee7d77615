"""Wiring of the tracking service: the one place its parts meet."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from pydantic import Field
from starlette.exceptions import HTTPException

from services.tracking import api, handlers
from services.tracking.link_cache import KnownContents
from shared import topics
from shared.events import EngagementRecorded
from shared.service import Service, serve
from shared.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    http_port: int = Field(8003, description="HTTP port of the tracking service (the redirector)")
    kafka_compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = Field(
        "lz4", description="Engagements are produced in volume: lz4 is cheap on CPU")
    kafka_linger_ms: int = Field(
        0, ge=0, description="No wait to fill batches: a webhook call's records are sent together anyway, and "
        "the calls waiting for an ack would each wait out the linger (5 ms put 4 senders at 25k events/s, 0 at 37k)")
    webhook_max_events: int = Field(1000, ge=1, description="Most events in one webhook call (413 above)")
    link_cache_size: int = Field(100_000, ge=1, description="Tracked links the redirector keeps in memory")
    outbox_batch_size: int = Field(
        100, ge=1, description="Click events per relay round: small, so a round never holds the event loop "
        "long enough to delay redirects (1000 per round put p99 at 60-110 ms at 1,000 clicks/s)")


def create_app(settings: TrackingSettings | None = None, *, name: str = "tracking") -> FastAPI:
    """``name`` is the schema and the consumer groups' prefix (a benchmark runs its own)."""
    settings = settings or TrackingSettings()
    service = Service(
        name, settings, migrations=Path(__file__).parent / "migrations",
        produces={topics.ENGAGEMENTS: EngagementRecorded},
        description="Tracked-link redirector, signed engagement webhooks and share confirmations.",
    )
    service.consume(topics.NOTIFICATIONS, {"notification.sent": handlers.on_notification_sent})
    service.consume(topics.AMBASSADORS, {"ambassador.enrolled": handlers.on_ambassador_profile,
                                         "ambassador.updated": handlers.on_ambassador_profile,
                                         "ambassador.withdrawn": handlers.on_ambassador_withdrawn})
    app = service.http_app(api.router, api.webhooks, api.shares, api.admin)
    app.state.redirector = handlers.Redirector(lambda: service.pool, cache_size=settings.link_cache_size)
    app.state.known_contents = KnownContents(settings.link_cache_size)
    app.add_middleware(api.RedirectFastPath)  # outermost: the redirects skip the rest of the stack
    app.add_exception_handler(HTTPException, api.not_found_page)
    service.run_while_started(lambda: handlers.prune_forever(service.pool))
    service.run_while_started(_freeze_startup_objects)
    return app


async def _freeze_startup_objects() -> None:
    """The objects of start-up (modules, app, models) live as long as the process: keep them out
    of the garbage collector's full passes, which otherwise stall every request in flight for
    tens of milliseconds now and then (measured: the redirector's p99)."""
    gc.collect()
    gc.freeze()


def main() -> None:
    settings = TrackingSettings()
    serve(create_app(settings), settings, settings.http_port)


if __name__ == "__main__":
    main()
