"""Reporting's background jobs (run while the service is started): the KPI stream flusher,
the outbound webhook deliverer and the business gauges."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from services.reporting import domain, repository
from shared import metrics, outbox, topics
from shared.envelope import CloudEvent, new_event
from shared.events import KpiChanged

log = logging.getLogger(__name__)
SOURCE = "portevoix/reporting"


# --- the KPI stream ------------------------------------------------------------------------------


async def flush_kpi_stream(pool: asyncpg.Pool, min_interval_seconds: float, batch: int = 1000) -> int:
    """Emit ``kpi.changed`` for the keys whose values changed since their last emission and that
    were not emitted within the interval; the events go through the outbox, in the transaction
    that records them as emitted (exactly one emission per change, never more often than the
    interval per key). Webhook deliveries of the change and of milestones are queued alike.

    A round is a handful of set-based statements whatever the number of keys, plus the
    directory figures (history tables) of the keys that carry them, read key by key; consumers
    go on marking keys dirty meanwhile (a key changed again stays dirty for the next round)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.take_flusher_turn(conn):
            return 0
        keys = await repository.due_keys(conn, min_interval_seconds, batch)
        if not keys:
            return 0
        counted = await repository.counted_of_keys(conn, keys)
        rates_by_tenant = {t: await repository.media_rates(conn, t) for t in {k["tenant"] for k in keys}}
        now = datetime.now(UTC)
        changed: list[tuple[asyncpg.Record, dict[str, float], dict[str, float]]] = []
        for key in keys:
            ident = tuple(key[c] for c in repository.KEY_COLUMNS)
            values = domain.stream_values(counted.get(ident, {}), rates_by_tenant[key["tenant"]],
                                          await _directory(conn, key, now))
            before = json.loads(key["emitted"]) if key["emitted"] else {}
            if values != before:
                changed.append((key, values, before))
        events = [_kpi_event(key, values, now) for key, values, _ in changed]
        # The record key is the default one, "<tenant>/<subject>": the stream key.
        await outbox.enqueue(conn, topics.KPIS, events)
        await _queue_webhooks(conn, changed, events, now)
        await repository.record_emissions(conn, keys, [(key, values) for key, values, _ in changed])
    return len(changed)


async def _directory(conn: asyncpg.Connection, key: asyncpg.Record, now: datetime) -> domain.DirectoryFigures:
    if not domain.streams_directory(key["scope_type"]):
        return domain.DirectoryFigures()
    return await repository.directory_figures(conn, key["tenant"], domain.ScopeType(key["scope_type"]), key["scope_id"],
                                              domain.Window(key["time_window"]), key["window_start"], now)


def _kpi_event(key: asyncpg.Record, values: dict[str, float], now: datetime) -> CloudEvent[Any]:
    window = key["time_window"]
    data = KpiChanged(scope_type=key["scope_type"], scope_id=key["scope_id"], window=window,
                      window_start=None if window == domain.Window.all else key["window_start"],
                      values=values, computed_at=now)
    subject = domain.stream_subject(key["scope_type"], key["scope_id"], window, key["window_start"])
    return new_event("kpi.changed", source=SOURCE, subject=subject, tenant=key["tenant"], data=data)


async def _queue_webhooks(conn: asyncpg.Connection, changed: list[tuple[asyncpg.Record, dict[str, float],
                          dict[str, float]]], events: list[CloudEvent[Any]], now: datetime) -> None:
    """The deliveries of the changes and milestones, for the tenants that subscribed any."""
    subscribed = await repository.subscribed_tenants(conn, {key["tenant"] for key, _, _ in changed})
    if not subscribed:
        return
    payloads: list[tuple[str, str, dict[str, Any]]] = []
    for (key, values, before), event in zip(changed, events, strict=True):
        tenant, window = key["tenant"], key["time_window"]
        if tenant not in subscribed:
            continue
        stream_key = domain.stream_key(tenant, key["scope_type"], key["scope_id"], window, key["window_start"])
        payloads.append((tenant, "kpi.changed", {"type": "kpi.changed", "tenant": tenant, "key": stream_key,
                                                 **event.data}))
        if domain.is_milestone_key(key["scope_type"], window):
            payloads += [(tenant, "kpi.milestone", {
                "type": "kpi.milestone", "tenant": tenant, "key": stream_key, "scope_type": key["scope_type"],
                "scope_id": key["scope_id"], "window": window, "window_start": None, "kpi": kpi,
                "threshold": threshold, "value": values[kpi], "computed_at": now.isoformat()})
                for kpi, threshold in domain.milestones_crossed(before, values)]
    await repository.enqueue_deliveries(conn, payloads)


async def run_kpi_stream(pool: asyncpg.Pool, min_interval_seconds: float, tick_seconds: float) -> None:
    while True:
        try:
            while await flush_kpi_stream(pool, min_interval_seconds):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next tick retries; nothing is lost (the keys stay dirty)
            log.warning("KPI stream flush failed: %r", error)
        await asyncio.sleep(tick_seconds)


# --- outbound webhooks (Standard Webhooks) --------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` with the secret's base64 key."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def deliver_due(pool: asyncpg.Pool, client: httpx.AsyncClient, retry_delays: list[float],
                      pause_after: int = 20, batch: int = 50) -> int:
    """One round: POST each due delivery of an active subscription, signed; a 2xx is delivered,
    anything else is retried after the next delay, and failed once the delays are spent
    (replayable through the API). A subscription whose attempts failed ``pause_after`` times in
    a row is paused: its deliveries wait until an admin resumes it."""
    async with pool.acquire() as conn, conn.transaction():
        due = await repository.due_deliveries(conn, batch)
        results = await asyncio.gather(*(_post(client, d) for d in due))
        for delivery, error in zip(due, results, strict=True):
            attempt = delivery["attempts"]  # attempts before this one
            retry = retry_delays[attempt] if error and attempt < len(retry_delays) else None
            await repository.delivery_outcome(conn, delivery["id"], delivered=error is None, error=error,
                                              retry_in_seconds=retry)
            if await repository.subscription_outcome(conn, delivery["subscription_id"], error, pause_after):
                log.warning("webhook subscription %s paused after %d failed attempts in a row",
                            delivery["subscription_id"], pause_after)
                metrics.WEBHOOK_AUTO_PAUSED.inc()
            metrics.WEBHOOK_DELIVERIES.labels("delivered" if error is None else
                                              ("retried" if retry is not None else "failed")).inc()
    return len(due)


async def _post(client: httpx.AsyncClient, delivery: asyncpg.Record) -> str | None:
    """None when delivered, else why not."""
    body = delivery["payload"].encode()
    message_id = f"msg_{delivery['id'].hex}"  # the same on every retry and replay: receivers dedupe on it
    timestamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": signature(delivery["secret"], message_id, timestamp, body)}
    try:
        response = await client.post(delivery["url"], content=body, headers=headers)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"[:500]
    return None if response.is_success else f"HTTP {response.status_code}"


async def run_webhooks(pool: asyncpg.Pool, retry_delays: list[float], tick_seconds: float,
                       timeout_seconds: float, pause_after: int) -> None:
    async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
        while True:
            try:
                while await deliver_due(pool, client, retry_delays, pause_after):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("webhook delivery round failed: %r", error)
            await asyncio.sleep(tick_seconds)


# --- business gauges -------------------------------------------------------------------------------


async def refresh_gauges(pool: asyncpg.Pool, tenants_limit: int, subsidiaries_limit: int) -> None:
    """Every counted all-time KPI per tenant and subsidiary, for the largest ones only (bounded
    cardinality: never per ambassador or content)."""
    async with pool.acquire() as conn:
        rows = await repository.gauge_figures(conn, tenants_limit, subsidiaries_limit, domain.COUNTED)
    metrics.BUSINESS_KPI.clear()
    for r in rows:
        subsidiary = "" if r["scope_type"] == "tenant" else r["scope_id"]
        metrics.BUSINESS_KPI.labels(r["tenant"], subsidiary, r["kpi"]).set(r["value"])


async def run_gauges(pool: asyncpg.Pool, tenants_limit: int, subsidiaries_limit: int, tick_seconds: float) -> None:
    while True:
        try:
            await refresh_gauges(pool, tenants_limit, subsidiaries_limit)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("gauge refresh failed: %r", error)
        await asyncio.sleep(tick_seconds)

