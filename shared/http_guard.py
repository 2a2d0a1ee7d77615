"""The HTTP guard in front of every service: per-client rate limits on the public endpoints,
request body size limits and security headers. Pure ASGI, outermost (outside the error handling
and any middleware a service adds, e.g. tracking's redirect fast path), so a refused request
costs a dict look-up and never reaches a route.

- Rate limits: one token bucket per client key, in-process (each replica limits on its own; the
  limit a client sees is per replica). The public endpoints only: the redirector ``/r/``, the
  signed webhooks ``/v1/webhooks/`` and SCIM ``/scim/``; authenticated APIs are not limited here.
  The client key is the client address (uvicorn rewrites it from ``X-Forwarded-For`` when the
  peer is a trusted proxy), plus the path for webhooks (one bucket per source) and the bearer
  credential for SCIM (one bucket per tenant's SCIM client). Refusal: 429 with ``Retry-After``.
- Body size: 413 from ``Content-Length`` before anything is read; a body sent without it is
  counted as it streams and refused when it passes the limit.
- NUL characters (U+0000) in a query string or a JSON body: 422. PostgreSQL cannot store them
  in text or jsonb, so without this a valid-looking request would end in a 500.
- JSON nesting deeper than ``http_max_json_depth``: 422, measured as the body streams (every body
  but a form's: a route may parse JSON whatever the content type says). Python's decoder recurses
  once per level and fails past ~1000 with a RecursionError, and a validation error echoing a deep
  input recurses again when it is encoded: without this, 100 kB of ``[[[[`` is a 500.
- A service may shape the guard's refusals under a path prefix (SCIM answers SCIM error bodies).
- Security headers on every answer (unless the route set its own).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.settings import ServiceSettings

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-resource-policy", b"same-site"),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


@dataclass(frozen=True)
class Limit:
    """``per_second`` tokens refill continuously up to ``burst``; 0 per second disables."""
    per_second: float
    burst: int


class TokenBuckets:
    """Token buckets by client key. Bounded: past ``max_clients`` keys, the buckets that have
    refilled (idle clients) are forgotten, which loses nothing since a full bucket is the default."""

    def __init__(self, limit: Limit, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self.buckets: dict[Any, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: Any, now: float) -> float:
        """0 if the request may go, else the seconds until a token is back."""
        rate, burst = self.limit.per_second, self.limit.burst
        tokens, at = self.buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            if len(self.buckets) > self.max_clients:
                self._forget_idle(now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    def _forget_idle(self, now: float) -> None:
        rate, burst = self.limit.per_second, self.limit.burst
        self.buckets = {k: (t, at) for k, (t, at) in self.buckets.items() if t + (now - at) * rate < burst}


_ESCAPES = re.compile(rb"\\.", re.S)
_STRINGS = re.compile(rb'"[^"]*"')
_UNMARKED = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonNesting:
    """How deep a JSON document nests, fed chunk by chunk as it streams. Each chunk is reduced in
    C (escapes dropped, then all but brackets and quotes, then whole strings); only the brackets
    left are counted in Python, so a 1 MB batch of small objects costs a few milliseconds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.pending = b""  # a backslash ending the previous chunk: it escapes this chunk's first byte

    def too_deep(self, chunk: bytes) -> bool:
        data = _ESCAPES.sub(b"", self.pending + chunk)
        self.pending = b"\\" if data.endswith(b"\\") else b""
        marks = _STRINGS.sub(b"", (b'"' if self.in_string else b"") + data.translate(None, _UNMARKED))
        opened = marks.find(b'"')  # a string that goes on into the next chunk
        self.in_string = opened >= 0
        if self.in_string:
            marks = marks[:opened]
        if not marks:
            return False
        levels = list(accumulate(map(_STEP.__getitem__, marks), initial=self.depth))
        self.depth = levels[-1]
        return max(levels) > self.limit


# A service's shape for the guard's refusals under a path prefix: (status, detail) -> (status,
# content type, body).
ErrorShape = Callable[[int, str], tuple[int, bytes, bytes]]


@dataclass
class GuardPolicy:
    max_body_bytes: int
    body_limits: dict[str, int] = field(default_factory=dict)  # path prefix -> bytes (longest prefix wins)
    rate_limits: dict[str, TokenBuckets] = field(default_factory=dict)  # path prefix -> buckets
    exempt_clients: frozenset[str] = frozenset()
    max_json_depth: int = 64
    error_shapes: dict[str, ErrorShape] = field(default_factory=dict)  # path prefix -> shape

    @classmethod
    def from_settings(cls, s: ServiceSettings) -> GuardPolicy:
        limits = {"/r/": Limit(s.rate_limit_redirects_per_second, s.rate_limit_redirects_burst),
                  "/v1/webhooks/": Limit(s.rate_limit_webhooks_per_second, s.rate_limit_webhooks_burst),
                  "/scim/": Limit(s.rate_limit_scim_per_second, s.rate_limit_scim_burst)}
        return cls(max_body_bytes=s.http_max_body_bytes, body_limits=dict(s.http_body_limits),
                   rate_limits={p: TokenBuckets(limit) for p, limit in limits.items() if limit.per_second > 0},
                   exempt_clients=frozenset(s.rate_limit_exempt_clients), max_json_depth=s.http_max_json_depth)

    def error_shape(self, path: str) -> ErrorShape:
        return next((shape for prefix, shape in self.error_shapes.items() if path.startswith(prefix)), _fastapi_shape)

    def body_limit(self, path: str) -> int:
        matches = [p for p in self.body_limits if path.startswith(p)]
        return self.body_limits[max(matches, key=len)] if matches else self.max_body_bytes

    def retry_after(self, scope: Scope, now: float) -> float:
        """0 if the request may go, else the seconds the client should wait."""
        path: str = scope["path"]
        for prefix, buckets in self.rate_limits.items():
            if path.startswith(prefix):
                client = scope.get("client")
                address = client[0] if client else ""
                if address in self.exempt_clients:
                    return 0.0
                return buckets.take(_client_key(prefix, address, scope), now)
        return 0.0


def _client_key(prefix: str, address: str, scope: Scope) -> Any:
    if prefix == "/v1/webhooks/":
        return address, scope["path"]
    if prefix == "/scim/":
        credential = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        return (address, credential) if credential is None else credential
    return address


class BodyTooLarge(Exception):
    pass


class HttpGuard:
    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy
        wait = policy.retry_after(scope, time.monotonic())
        if wait:
            await _refuse(send, scope, policy, 429, "too many requests from this client",
                          [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        if b"%00" in scope.get("query_string", b""):
            await _refuse(send, scope, policy, 422, NUL_REFUSED)
            return
        limit = policy.body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, scope, policy, 413, f"request body larger than {limit} bytes")
            return
        await self._call_guarded(scope, receive, send, limit)

    async def _call_guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        state: dict[str, Any] = {"started": False, "refused": False, "received": 0, "tail": b""}
        content_type = _header(scope, b"content-type")
        json_body = b"json" in content_type
        nesting = None if content_type.startswith((b"multipart/", b"application/x-www-form-urlencoded")) else \
            JsonNesting(self.policy.max_json_depth)

        async def refuse(status: int, detail: str) -> Message:
            # Answer now; the app then sees the client gone and whatever it sends is dropped.
            state["refused"] = True
            await _refuse(send, scope, self.policy, status, detail)
            return {"type": "http.disconnect"}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not state["started"]:
                chunk = message.get("body", b"")
                state["received"] += len(chunk)
                if state["received"] > limit:
                    return await refuse(413, f"request body larger than {limit} bytes")
                if json_body:
                    window = state["tail"] + chunk  # an escape may straddle two chunks
                    if b"\\u0000" in window or b"\x00" in window:
                        return await refuse(422, NUL_REFUSED)
                    state["tail"] = window[-5:]
                if nesting is not None and nesting.too_deep(chunk):
                    return await refuse(422, f"JSON nested deeper than {nesting.limit} levels")
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                if not present >= _SECURITY_HEADER_NAMES:
                    headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["refused"]:  # the app failing on the body it was refused is expected
                raise


NUL_REFUSED = "NUL characters (U+0000) are not accepted in text"


def _header(scope: Scope, wanted: bytes) -> bytes:
    return next((value.lower() for name, value in scope.get("headers", ()) if name == wanted), b"")


def _content_length(scope: Scope) -> int | None:
    try:
        return int(_header(scope, b"content-length")) if _header(scope, b"content-length") else None
    except ValueError:
        return None


def _fastapi_shape(status: int, detail: str) -> tuple[int, bytes, bytes]:
    # A 422 keeps FastAPI's documented validation-error shape, like every other 422.
    shaped: object = [{"loc": ["request"], "msg": detail, "type": "value_error"}] if status == 422 else detail
    return status, b"application/json", json.dumps({"detail": shaped}).encode()


async def _refuse(send: Send, scope: Scope, policy: GuardPolicy, status: int, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    status, content_type, body = policy.error_shape(scope["path"])(status, detail)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
        *(headers or []), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
    metrics.HTTP_REQUESTS.labels(scope.get("method", "GET"), "guard", str(status)).inc()


class GuardedFastAPI(FastAPI):
    """A FastAPI app with the guard around its whole middleware stack, however a service adds to
    it (a middleware added later would otherwise sit outside the guard)."""

    def __init__(self, policy: GuardPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard_policy = policy

    def build_middleware_stack(self) -> ASGIApp:
        return HttpGuard(super().build_middleware_stack(), self.guard_policy)
