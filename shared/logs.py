"""Structured JSON logs, one object per line, for every service, with the context that lets an
operator follow one item from content to KPI: the tenant, the CloudEvents id being handled and
a W3C trace id. The trace travels in the ``traceparent`` CloudEvents extension (``ce_traceparent``
header) and the ``traceparent`` HTTP header, so every event caused by a request or by another
event carries the same trace id. Log messages carry ids, never personal data or secrets."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("portevoix_traceparent", default=None)
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("portevoix_tenant", default=None)
_event: contextvars.ContextVar[str | None] = contextvars.ContextVar("portevoix_event_id", default=None)
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def current_traceparent() -> str | None:
    """The traceparent for what is being done now: the same trace id, a new span."""
    parent = _trace.get()
    match = TRACEPARENT.match(parent or "")
    return new_traceparent(match.group(1)) if match else None


def trace_id() -> str | None:
    match = TRACEPARENT.match(_trace.get() or "")
    return match.group(1) if match else None


@contextlib.contextmanager
def bound(*, traceparent: str | None = None, tenant: str | None = None, event_id: str | None = None) -> Iterator[None]:
    """Run a block with this context in every log line and every event it creates. An invalid
    or missing traceparent starts a new trace."""
    valid = traceparent if traceparent and TRACEPARENT.match(traceparent) else new_traceparent()
    tokens = [_trace.set(valid), _tenant.set(tenant), _event.set(event_id)]
    try:
        yield
    finally:
        for var, token in zip((_trace, _tenant, _event), tokens, strict=True):
            var.reset(token)


def note_tenant(tenant: str) -> None:
    """Once a request is authenticated, its log lines name the tenant."""
    _tenant.set(tenant)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (("trace_id", trace_id()), ("tenant", _tenant.get()), ("event_id", _event.get())):
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
