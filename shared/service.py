"""One service process: its HTTP API, Kafka consumers and producers, outbox relay, database
pool and migrations, ``/healthz``, ``/readyz`` and ``/metrics``. ``main.py`` of each service
builds one :class:`Service` and is the one place things are wired."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import db, logs, metrics
from shared.auth import TokenVerifier
from shared.consumer import BatchHandler, EventConsumer, Handler
from shared.http_guard import GuardedFastAPI, GuardPolicy
from shared.kafka import KafkaUnavailable, create_broker, declare_publishers
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings
from shared.topics import Topic

log = logging.getLogger(__name__)

# Consumers allocate a few objects per event, thousands per batch, and most live until the batch
# is committed: with CPython's default (700 allocations) the collector ran several times per
# batch and its full collections walked the whole heap (a third of the reporting consumer's
# parse time). A larger first generation, and the objects of the start-up frozen out of the
# collector's walks, made aggregation ~1.5x faster in the reporting benchmark.
GC_THRESHOLDS = (20_000, 10, 10)


class Service:
    def __init__(self, name: str, settings: ServiceSettings, *, migrations: Path,
                 produces: Mapping[Topic, Any] = {}, description: str = "") -> None:  # noqa: B006
        self.name = name
        self.schema = name
        self.settings = settings
        self.description = description
        self.migrations = migrations
        self.broker: KafkaBroker = create_broker(settings, client_id=f"portevoix-{name}")
        self.publishers = declare_publishers(self.broker, produces, {t.name: m for t, m in produces.items()})
        self.consumers: list[EventConsumer] = []
        self._pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self.jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.background: list[asyncio.Task[None]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name}: the database pool is not started")
        return self._pool

    def consume(self, topic: Topic, handlers: Mapping[str, Handler]) -> EventConsumer:
        consumer = EventConsumer(
            name=self.name, topic=topic, handlers=handlers, pool=lambda: self.pool, broker=self.broker,
            retry_delays=self.settings.retry_delays_seconds, max_records=self.settings.consumer_max_records,
            max_poll_interval_ms=self.settings.consumer_max_poll_interval_ms,
        )
        self.consumers.append(consumer)
        return consumer

    def consume_batches(self, topic: Topic, types: Collection[str], handler: BatchHandler) -> EventConsumer:
        """Like :meth:`consume`, with one handler call per batch for the fresh events of ``types``."""
        consumer = EventConsumer(
            name=self.name, topic=topic, handlers={}, pool=lambda: self.pool, broker=self.broker,
            retry_delays=self.settings.retry_delays_seconds, max_records=self.settings.consumer_max_records,
            max_poll_interval_ms=self.settings.consumer_max_poll_interval_ms, batch_handler=handler, batch_types=types,
        )
        self.consumers.append(consumer)
        return consumer

    def run_while_started(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A background job (e.g. a scheduler) started after the service, cancelled at stop."""
        self.jobs.append(job)

    def asyncapi(self) -> AsyncAPI:
        return AsyncAPI(self.broker, title=f"Portevoix {self.name}", version="1.0.0",
                        description=self.description, schema_version="3.0.0")

    async def start(self) -> None:
        s = self.settings
        self._pool = await db.create_pool(s.database_url.get_secret_value(), self.schema,
                                          min_size=s.db_pool_min, max_size=s.db_pool_max)
        await db.migrate(self._pool, self.schema, self.migrations)
        await self.broker.connect()
        self.relay = OutboxRelay(self._pool, self.broker, self.schema, batch_size=s.outbox_batch_size,
                                 poll_interval=s.outbox_poll_interval_seconds)
        await self.relay.start()
        await self.broker.start()
        self.background = [asyncio.create_task(job(), name=f"{self.name}-job") for job in self.jobs]
        gc.set_threshold(*GC_THRESHOLDS)
        gc.collect()
        gc.freeze()  # what start-up built lives as long as the process: never walked again
        log.info("%s: started (schema %s, %d consumers)", self.name, self.schema, len(self.consumers))

    async def stop(self) -> None:
        """Consumers finish their batch (committed or handed back), then the relay, then the pool."""
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.relay:
            await self.relay.stop()
        if self._pool is not None:
            await self._pool.close()
        gc.unfreeze()  # this service's objects may go now (several services share a test process)
        log.info("%s: stopped", self.name)

    async def ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # readiness reports, never raises
            checks["database"] = f"unavailable: {type(error).__name__}"
        checks["kafka"] = "ok" if await self.broker.ping(timeout=2) else "unavailable"
        return checks

    def http_app(self, *routers: APIRouter, title: str | None = None) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = GuardedFastAPI(GuardPolicy.from_settings(self.settings), title=title or f"Portevoix {self.name}",
                             version="1.0.0", lifespan=lifespan, description=self.description)
        app.state.service = self
        if self.settings.jwt_hs256_secret or self.settings.jwt_jwks_url:
            app.state.token_verifier = TokenVerifier(self.settings)
        app.add_middleware(HttpMetrics)
        for router in routers:
            app.include_router(router)

        @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz", tags=["ops"], summary="Readiness: database and Kafka reachable")
        async def readyz() -> JSONResponse:
            checks = await self.ready()
            ok = all(v == "ok" for v in checks.values())
            return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

        @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
        async def metrics_endpoint() -> Response:
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

        @app.exception_handler(StarletteHTTPException)
        async def http_error(request: Request, error: StarletteHTTPException) -> Response:
            """Every 422 in the documented validation-error shape, also those raised by hand."""
            if error.status_code == 422 and not isinstance(error.detail, list):
                detail = error.detail
                item: dict[str, Any] = {"loc": ["request"], "type": "value_error",
                                        "msg": str(detail.get("message", detail) if isinstance(detail, dict)
                                                   else detail)}
                if isinstance(detail, dict):
                    item["ctx"] = detail
                return JSONResponse({"detail": [item]}, status_code=422, headers=error.headers)
            return await http_exception_handler(request, error)

        @app.exception_handler(RequestValidationError)
        async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
            """FastAPI's answer, the inputs it echoes made JSON: NaN and ±Infinity (Python's decoder
            accepts them, and 1e400 overflows to one) would make the answer itself fail, a 500."""
            return JSONResponse({"detail": _json_safe(jsonable_encoder(error.errors()))}, status_code=422)

        @app.exception_handler(KafkaUnavailable)
        async def kafka_unavailable(_: Any, error: KafkaUnavailable) -> JSONResponse:
            return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

        document_roles(app)
        return app


def raw_body(model: type[BaseModel], *, signed: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself (to verify a signature over the
    exact bytes, or validate items one by one): the body's schema, inline, and the headers of
    Standard Webhooks signatures."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/$defs/"):
                return inline({**definitions[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items()
                                                                              if k != "$ref"}})
            return {key: inline(value) for key, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": inline(schema)}}}}
    if signed:
        extra["parameters"] = [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": text}
            for name, text in (("webhook-id", "Unique per message: a retry reuses it"),
                               ("webhook-timestamp", "Unix seconds; 5 minutes' tolerance"),
                               ("webhook-signature", "v1,<base64 HMAC-SHA256 of id.timestamp.body>, space-separated"))]
    return extra


def document_roles(app: FastAPI) -> None:
    """Each operation of the OpenAPI document says in words which roles it requires (and in
    ``x-portevoix-roles``), from its bearer requirement's scopes (``shared.auth.require``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI's generate() fills it in, once
            for operation in (op for ops in generate().get("paths", {}).values() for op in ops.values()):
                bearer = [req["HTTPBearer"] for req in operation.get("security", []) if "HTTPBearer" in req]
                if not bearer:
                    continue
                roles = sorted({role for scopes in bearer for role in scopes})
                sentence = (f"Requires a bearer token with one of the roles: {', '.join(roles)}." if roles
                            else "Requires a bearer token (any role).")
                operation["x-portevoix-roles"] = roles
                operation["description"] = f"{operation.get('description', '')}\n\n{sentence}".strip()
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


class HttpMetrics:
    """Pure ASGI middleware: request count and latency by route template (bounded labels), and
    the request's trace context (the caller's ``traceparent`` header, or a new trace)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        traceparent = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"traceparent"), None)
        try:
            with logs.bound(traceparent=traceparent):  # events this request causes carry its trace
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(method, path, str(status["code"])).inc()
            metrics.HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)


def serve(app: FastAPI, settings: ServiceSettings, port: int) -> None:
    """Run one service process. SIGTERM/SIGINT stop it gracefully: uvicorn stops accepting,
    then the lifespan stops consumers (batch finished or handed back), relay and pool."""
    import uvicorn

    logs.configure_logging(settings.log_level)
    uvicorn.run(app, host=settings.http_host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=20)
