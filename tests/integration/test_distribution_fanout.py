"""The fan-out worker against the real database, driven directly (no service running, a schema of
its own): a published content's fan-out is recorded by the consumer's handler and written page by
page, each page one transaction; a page that fails leaves nothing and is redone; several workers
(replicas) share the slices and still notify each ambassador exactly once; a republication
reaches the newly enrolled only; a retirement meanwhile stops what is left; every event carries
the publication's trace and parses against its contract."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.distribution.handlers.fanout import Fanout, FanoutWorker, Policy
from shared import db
from shared.envelope import CloudEvent, from_kafka, new_event, typed
from shared.events import Audience, ContentPublished, ContentRetired, NotificationSent, ShareText

pytestmark = pytest.mark.integration
SCHEMA = "distribution_fanout_test"
MIGRATIONS = Path(__file__).parents[2] / "services" / "distribution" / "migrations"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await admin.close()
    pool = await db.create_pool(database_url, SCHEMA, min_size=1, max_size=8)
    await db.migrate(pool, SCHEMA, MIGRATIONS)
    try:
        yield pool
    finally:
        await pool.close()


async def enrol(pool: asyncpg.Pool, tenant: str, count: int, subsidiary: str = "FR01") -> set[str]:
    """``count`` current employees, enrolled with a consent in force; their ambassador ids."""
    now = datetime.now(UTC)
    ids = {str(uuid.uuid4()): f"e-{uuid.uuid4().hex[:10]}" for _ in range(count)}
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO employees (tenant, employee_id, email, subsidiary, department, site, country, language,
                   version, effective_at)
               VALUES ($1, $2, $2 || '@acme.example', $3, 'Sales', 'Lyon', 'FR', 'fr-FR', 1, $4)""",
            [(tenant, e, subsidiary, now) for e in ids.values()])
        await conn.executemany(
            """INSERT INTO ambassadors (tenant, ambassador_id, employee_id, consent_text_version, consent_expires_at)
               VALUES ($1, $2, $3, 'v1', $4)""",
            [(tenant, uuid.UUID(a), e, now + timedelta(days=30)) for a, e in ids.items()])
    return set(ids)


def published(tenant: str, content_id: str) -> CloudEvent[Any]:
    data = ContentPublished(
        content_id=content_id, revision=1, title="Plant news", url="https://acme.example/plant", language="fr",
        campaign="plant", audience=Audience(subsidiaries=["FR01"]), published_at=datetime.now(UTC),
        share_texts=[ShareText(network="linkedin", language="fr", text="Fiers !"),
                     ShareText(network="x", language="fr", text="Bravo !")])
    event = new_event("content.published", source="portevoix/content", subject=content_id, tenant=tenant, data=data,
                      traceparent=f"00-{TRACE_ID}-{'1' * 16}-01")
    return typed(event)  # type: ignore[return-value]


async def handle(pool: asyncpg.Pool, handler: Any, event: CloudEvent[Any]) -> None:
    """As the consumer does: the handler inside one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await handler(conn, event)


async def notified(pool: asyncpg.Pool, tenant: str, content_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT ambassador_id::text AS ambassador_id, status, retired_at FROM notifications "
            "WHERE tenant = $1 AND content_id = $2", tenant, content_id)


async def events_of(pool: asyncpg.Pool, tenant: str) -> list[CloudEvent[Any]]:
    """The outbox's events of the tenant, parsed as any consumer parses them (envelope, contract)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT value, headers FROM outbox WHERE headers->>'ce_tenantid' = $1 ORDER BY id",
                                tenant)
    return [typed(from_kafka(r["value"], [(k, v.encode()) for k, v in json.loads(r["headers"]).items()]))
            for r in rows]


async def test_pages_are_written_one_transaction_each_and_a_failed_page_is_redone_without_duplicates(
        pool: asyncpg.Pool) -> None:
    tenant, content_id = f"t{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    audience = await enrol(pool, tenant, 25)
    policy = Policy(weekly_budget=5, digest_hour=8, page_size=10, slices=1, concurrency=1)
    await handle(pool, Fanout(policy).on_content_published, published(tenant, content_id))
    assert await notified(pool, tenant, content_id) == []  # the consumer only records the job

    worker = FanoutWorker(lambda: pool, policy)
    assert await worker.page() == 10  # durable on its own, before the rest is written
    assert len(await notified(pool, tenant, content_id)) == 10

    class Crash(Exception):
        pass

    async def crash(*_: Any) -> None:
        raise Crash

    failing = FanoutWorker(lambda: pool, policy)
    failing._notify = crash  # type: ignore[method-assign]  # dies in the middle of its page
    assert await failing.page() == 0
    assert len(await notified(pool, tenant, content_id)) == 10  # nothing of the failed page, cursor unmoved
    async with pool.acquire() as conn:
        slice_ = await conn.fetchrow("SELECT attempts, last_error, retry_at > now() AS later FROM fanout_slices "
                                     "WHERE tenant = $1", tenant)
        assert (slice_["attempts"], slice_["last_error"], slice_["later"]) == (1, "Crash: ", True)
        assert await FanoutWorker(lambda: pool, policy).page() is None  # not due yet: others go first
        await conn.execute("UPDATE fanout_slices SET retry_at = now() WHERE tenant = $1", tenant)  # time passes

    assert await FanoutWorker(lambda: pool, policy).drain() == 15
    rows = await notified(pool, tenant, content_id)
    assert sorted(r["ambassador_id"] for r in rows) == sorted(audience)
    assert {r["status"] for r in rows} == {"sent"}
    events = await events_of(pool, tenant)
    assert sorted(e.data.ambassador_id for e in events) == sorted(audience)
    assert all(isinstance(e.data, NotificationSent) and e.type == "notification.sent" for e in events)
    assert all([link.network.value for link in e.data.links] == ["linkedin", "x"] for e in events)
    assert len({link.code for e in events for link in e.data.links}) == 50
    assert {e.traceparent.split("-")[1] for e in events if e.traceparent} == {TRACE_ID}
    assert all(e.traceparent for e in events)

    # Republished under a new event id: only the newly enrolled are reached.
    newcomers = await enrol(pool, tenant, 3)
    again = published(tenant, content_id).model_copy(update={"id": str(uuid.uuid4())})
    await handle(pool, Fanout(policy).on_content_published, again)
    assert await FanoutWorker(lambda: pool, policy).drain() == 3
    rows = await notified(pool, tenant, content_id)
    assert sorted(r["ambassador_id"] for r in rows) == sorted(audience | newcomers)


async def test_replicas_share_the_slices_and_notify_each_ambassador_once(pool: asyncpg.Pool) -> None:
    tenant, content_id = f"t{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    audience = await enrol(pool, tenant, 300)
    await enrol(pool, tenant, 20, subsidiary="DE02")  # not in the content's audience
    policy = Policy(weekly_budget=5, digest_hour=8, page_size=7, slices=8, concurrency=3)
    await handle(pool, Fanout(policy).on_content_published, published(tenant, content_id))

    counts = await asyncio.gather(*(FanoutWorker(lambda: pool, policy).drain() for _ in range(3)))
    assert sum(counts) == 300
    rows = await notified(pool, tenant, content_id)
    assert len(rows) == 300 and {r["ambassador_id"] for r in rows} == audience
    assert len(await events_of(pool, tenant)) == 300


async def test_a_retirement_during_the_fanout_stops_what_is_left_and_retires_what_was_written(
        pool: asyncpg.Pool) -> None:
    tenant, content_id = f"t{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    await enrol(pool, tenant, 30)
    policy = Policy(weekly_budget=5, digest_hour=8, page_size=10, slices=1, concurrency=1)
    fanout = Fanout(policy)
    await handle(pool, fanout.on_content_published, published(tenant, content_id))
    worker = FanoutWorker(lambda: pool, policy)
    assert await worker.page() == 10

    retired = typed(new_event("content.retired", source="portevoix/content", subject=content_id, tenant=tenant,
                              data=ContentRetired(content_id=content_id, reason="withdrawn",
                                                  retired_at=datetime.now(UTC))))
    await handle(pool, fanout.on_content_retired, retired)

    assert await worker.drain() == 0  # nothing left to write
    rows = await notified(pool, tenant, content_id)
    assert len(rows) == 10 and all(r["retired_at"] is not None for r in rows)  # out of the feeds
    # A late redelivery of the publication (new id) does not start it again.
    await handle(pool, fanout.on_content_published, published(tenant, content_id).model_copy(
        update={"id": str(uuid.uuid4())}))
    assert await worker.drain() == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM fanout_slices WHERE tenant = $1", tenant) == 0


async def test_fanouts_of_contents_published_together_keep_each_ambassadors_budget(pool: asyncpg.Pool) -> None:
    """Six fan-outs at once, written by three workers (each its own connections, as replicas),
    pages of different contents over the same ambassadors in flight together: each ambassador
    gets the weekly budget's alerts and no more, the rest deferred."""
    tenant = f"t{uuid.uuid4().hex[:12]}"
    audience = await enrol(pool, tenant, 40)
    policy = Policy(weekly_budget=2, digest_hour=8, page_size=3, slices=1, concurrency=2)
    contents = [str(uuid.uuid4()) for _ in range(6)]
    for content_id in contents:
        await handle(pool, Fanout(policy).on_content_published, published(tenant, content_id))

    counts = await asyncio.gather(*(FanoutWorker(lambda: pool, policy).drain() for _ in range(3)))
    assert sum(counts) == 40 * 6
    events = await events_of(pool, tenant)
    per_ambassador = {a: sorted(e.type for e in events if e.data.ambassador_id == a) for a in audience}
    assert set(map(tuple, per_ambassador.values())) == {("notification.deferred",) * 4 + ("notification.sent",) * 2}
