"""The shared mechanisms against the real broker and database: idempotent consumer, DLQ,
retries, both CloudEvents modes, the outbox across a crash, migrations from two replicas."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared import db, outbox, topics
from shared.envelope import new_event, record_key, to_structured
from shared.events import IntranetContentSubmitted
from shared.outbox import OutboxRelay
from shared.service import Service
from shared.settings import ServiceSettings
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for
from tests.support import kafka_record as binary

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).parent / "mechanisms_migrations"
TOPIC = topics.INTRANET_CONTENT


def submitted(tenant: str, external_id: str, title: str = "Hello") -> tuple:
    event = new_event("intranet.content.submitted", source="intranet/test", subject=external_id, tenant=tenant,
                      data=IntranetContentSubmitted(external_id=external_id, source_system="cms", title=title,
                                                    summary="s", url="https://example.com/a", language="en",
                                                    version=1))
    return event


def structured(event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return record_key(event.tenantid, event.subject), to_structured(event), [
        ("content-type", b"application/cloudevents+json")]


def mechanism_service(kafka_bootstrap: str, database_url: str) -> Service:
    """A service made only of the shared mechanisms, with a handler that records its effects
    and fails on a poison title."""
    name = f"mech_{uuid.uuid4().hex[:8]}"
    service = Service(name, settings_for(ServiceSettings, kafka_bootstrap, database_url),
                      migrations=MIGRATIONS, produces={TOPIC: IntranetContentSubmitted})

    async def record_effect(conn: asyncpg.Connection, event) -> None:
        if event.data.title == "poison":
            raise ValueError("this title always fails")
        await conn.execute("INSERT INTO effects (tenant, external_id, title) VALUES ($1, $2, $3)",
                           event.tenantid, event.data.external_id, event.data.title)

    service.consume(TOPIC, {"intranet.content.submitted": record_effect})
    return service


async def effects(service: Service, tenant: str) -> list[asyncpg.Record]:
    async with service.pool.acquire() as conn:
        return await conn.fetch("SELECT external_id, title FROM effects WHERE tenant = $1 ORDER BY id", tenant)


async def test_duplicate_deliveries_have_one_effect_in_both_cloudevents_modes(kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    first, second = submitted(tenant, "a"), submitted(tenant, "b")
    async with running(service.http_app()):
        # the same event three times (binary, binary, structured) and another one in structured mode
        await produce(kafka_bootstrap, TOPIC.name,
                      [binary(first), binary(first), structured(first), structured(second)])
        rows = await eventually(lambda: _at_least(service, tenant, 2))
        await asyncio.sleep(1.0)  # give a wrongly counted duplicate the time to show
        rows = await effects(service, tenant)
    assert sorted(r["external_id"] for r in rows) == ["a", "b"]  # two keys: two partitions, any order


async def _at_least(service: Service, tenant: str, n: int):
    rows = await effects(service, tenant)
    return rows if len(rows) >= n else None


async def test_malformed_and_unknown_records_go_to_the_dlq_and_the_partition_keeps_flowing(
        kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    key = record_key(tenant, "same-partition")
    unknown = new_event("intranet.content.vanished", source="intranet/test", subject="x", tenant=tenant, data={"a": 1})
    invalid = new_event("intranet.content.submitted", source="intranet/test", subject="y", tenant=tenant,
                        data={"external_id": "y"})  # misses required fields
    good = submitted(tenant, "after-the-poison")
    garbage = b"\xff\x00not json at all"
    async with running(service.http_app()):
        await produce(kafka_bootstrap, TOPIC.name, [
            (key, garbage, [("ce_id", b"g1"), ("content-type", b"application/json")]),
            (key, b'{"no": "headers"}', []),
            (key, *binary(unknown)[1:]),
            (key, *binary(invalid)[1:]),
            (key, b"\x00\x01", [("content-type", b"application/cloudevents+json")]),
            (key, *binary(good)[1:]),
        ])
        rows = await eventually(lambda: _at_least(service, tenant, 1))
    assert [r["external_id"] for r in rows] == ["after-the-poison"]

    # A new consumer group reads the topic from the start: earlier runs' poison is there too.
    mine = lambda r: header(r, "x-portevoix-dlq-consumer") == service.name and r.key == key  # noqa: E731
    dead = await read_topic(kafka_bootstrap, TOPIC.dlq.name, mine, expect=5)
    assert len(dead) == 5
    assert dead[0].value == garbage  # original bytes kept
    assert header(dead[0], "ce_id") == "g1"  # original headers kept
    causes = [header(r, "x-portevoix-dlq-cause") for r in dead]
    assert "data is not valid JSON" in causes[0]
    assert "not a CloudEvent" in causes[1]
    assert "unknown event type 'intranet.content.vanished'" in causes[2]
    assert "invalid data for intranet.content.submitted" in causes[3] and "title" in causes[3]
    assert "structured CloudEvent is not valid JSON" in causes[4]
    assert all(header(r, "x-portevoix-origin").startswith(f"{TOPIC.name}/") for r in dead)


async def test_a_dead_lettered_record_leaves_its_event_id_free_for_its_repaired_version(kafka_bootstrap, database_url):
    """The inbox claims the ids the headers give while the records are decoded: a record that
    then proves invalid must not keep its id, or its repaired version would count as a duplicate."""
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    invalid = new_event("intranet.content.submitted", source="intranet/test", subject="r", tenant=tenant,
                        data={"external_id": "repaired"})  # misses required fields
    repaired = new_event("intranet.content.submitted", source="intranet/test", subject="r", tenant=tenant,
                         id=invalid.id, data=submitted(tenant, "repaired").data)
    mine = lambda r: header(r, "x-portevoix-dlq-consumer") == service.name and header(r, "ce_id") == invalid.id  # noqa: E731
    async with running(service.http_app()):
        await produce(kafka_bootstrap, TOPIC.name, [binary(invalid)])
        assert len(await read_topic(kafka_bootstrap, TOPIC.dlq.name, mine, expect=1)) == 1
        await produce(kafka_bootstrap, TOPIC.name, [binary(repaired)])
        rows = await eventually(lambda: _at_least(service, tenant, 1))
        async with service.pool.acquire() as conn:
            claimed = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", invalid.id)
    assert [r["external_id"] for r in rows] == ["repaired"]
    assert claimed == 1  # the repaired event's claim


async def test_a_failing_handler_is_retried_then_dead_lettered_without_blocking_others(kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    poison, good = submitted(tenant, "p", title="poison"), submitted(tenant, "ok")
    key = record_key(tenant, "one-key")
    async with running(service.http_app()):
        await produce(kafka_bootstrap, TOPIC.name, [(key, *binary(poison)[1:]), (key, *binary(good)[1:])])
        rows = await eventually(lambda: _at_least(service, tenant, 1))
        assert [r["external_id"] for r in rows] == ["ok"]  # not held up behind the poison message
        mine = lambda r: header(r, "ce_id") == poison.id  # noqa: E731
        retries = await read_topic(kafka_bootstrap, TOPIC.retry.name, mine, expect=2)
        dead = await read_topic(kafka_bootstrap, TOPIC.dlq.name, mine, expect=1, timeout=30)
    assert [header(r, "x-portevoix-attempt") for r in retries] == ["1", "2"]
    assert len(dead) == 1
    assert header(dead[0], "x-portevoix-dlq-attempts") == "3"
    assert "ValueError: this title always fails" in header(dead[0], "x-portevoix-dlq-cause")
    assert dead[0].value == binary(poison)[1]


CRASHING_WRITER = textwrap.dedent("""
    import asyncio, os, signal, sys
    import asyncpg
    from shared import outbox, topics
    from shared.envelope import new_event

    async def main(dsn, schema, tenant):
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        async with conn.transaction():
            await outbox.enqueue(conn, topics.CONTENT_LIFECYCLE, new_event(
                "content.retired", source="test/crash", subject="c1", tenant=tenant,
                data={"content_id": "c1", "reason": "withdrawn", "retired_at": "2026-01-01T00:00:00Z"}))
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # dies after the commit, before any relay ran

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_outbox_event_committed_before_a_crash_is_published_exactly_once_after_restart(
        kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    pool = await db.create_pool(database_url, service.schema)
    await db.migrate(pool, service.schema, MIGRATIONS)
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, database_url, service.schema, tenant],
                             capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert crashed.returncode == -9, crashed.stderr
    assert "committed" in crashed.stdout
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1

    async with running(service.http_app()):  # the restarted service's relay
        await eventually(lambda: _outbox_empty(pool))
    await pool.close()
    mine = lambda r: header(r, "ce_tenantid") == tenant  # noqa: E731
    published = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name, mine, expect=1, settle=2.0)
    assert len(published) == 1
    assert header(published[0], "ce_type") == "content.retired"
    assert published[0].key == record_key(tenant, "c1")


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def published_then_delete_failed(service: Service, database_url: str, event) -> tuple[asyncpg.Pool, OutboxRelay]:
    """An outbox row for ``event``, and a relay whose first round publishes it to Kafka (acked)
    and then fails to delete it, as if the database went away at that moment."""
    pool = await db.create_pool(database_url, service.schema)
    await db.migrate(pool, service.schema, MIGRATIONS)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, TOPIC, event)
    await service.broker.connect()
    relay = OutboxRelay(pool, service.broker, service.schema)
    original_execute = asyncpg.Connection.execute

    async def fail_on_delete(self, query, *args, **kwargs):
        if query.startswith("DELETE FROM outbox"):
            raise ConnectionResetError("gone before deleting")
        return await original_execute(self, query, *args, **kwargs)

    asyncpg.Connection.execute = fail_on_delete
    try:
        with pytest.raises(ConnectionResetError):
            await relay.relay_once()
    finally:
        asyncpg.Connection.execute = original_execute
    return pool, relay


async def test_a_relay_crash_after_publishing_republishes_and_the_inbox_absorbs_it(kafka_bootstrap, database_url):
    """At-least-once on the wire, exactly-once in effect: the consumer dedups the second copy."""
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    event = submitted(tenant, "twice")
    pool, _ = await published_then_delete_failed(service, database_url, event)  # then the relay dies
    await service.broker.stop()
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1

    async with running(service.http_app()):  # restart: relay publishes again, consumer handles both copies
        await eventually(lambda: _outbox_empty(pool))
        await eventually(lambda: _at_least(service, tenant, 1))
        await asyncio.sleep(1.5)
        rows = await effects(service, tenant)
    await pool.close()
    copies = await read_topic(kafka_bootstrap, TOPIC.name, lambda r: header(r, "ce_id") == event.id, expect=2)
    assert len(copies) == 2
    assert [r["external_id"] for r in rows] == ["twice"]


async def test_migrations_are_recorded_and_safe_from_two_replicas_at_once(database_url):
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    pools = [await db.create_pool(database_url, schema) for _ in range(2)]
    try:
        results = await asyncio.gather(*(db.migrate(p, schema, MIGRATIONS) for p in pools))
        assert sorted(len(r) for r in results) == [0, 3]  # one replica applied all three, the other none
        assert await db.migrate(pools[0], schema, MIGRATIONS) == []
        recorded = await pools[0].fetch(f"SELECT component, version FROM {schema}.schema_migrations ORDER BY 1, 2")
        assert [tuple(r) for r in recorded] == [("service", 1), ("shared", 1), ("shared", 2)]
    finally:
        for pool in pools:
            await pool.close()


async def test_a_relay_that_loses_the_database_after_publishing_does_not_publish_again(kafka_bootstrap, database_url):
    """A PostgreSQL restart between Kafka's acknowledgement and the delete: the same relay
    deletes the rows it already published instead of sending them a second time."""
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    event = submitted(tenant, "once")
    pool, relay = await published_then_delete_failed(service, database_url, event)  # the same relay goes on
    assert await relay.relay_once() == 0  # the database is back: the published row is deleted, not re-sent
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    await service.broker.stop()
    await pool.close()
    copies = await read_topic(kafka_bootstrap, TOPIC.name, lambda r: header(r, "ce_id") == event.id,
                              expect=1, settle=1.5)
    assert len(copies) == 1


async def relay_of(service: Service, database_url: str, events: list) -> tuple[asyncpg.Pool, OutboxRelay]:
    """``events`` in the outbox (one transaction) and a relay of 3 events a round, 10 rounds a
    call: the rounds overlap (one is built while the previous one is acknowledged)."""
    pool = await db.create_pool(database_url, service.schema)
    await db.migrate(pool, service.schema, MIGRATIONS)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, TOPIC, events)
    await service.broker.connect()
    return pool, OutboxRelay(pool, service.broker, service.schema, batch_size=3, max_rounds=10)


async def published_ids(kafka_bootstrap: str, service: Service, pool: asyncpg.Pool, tenant: str, n: int) -> list[str]:
    """Once the relay is stopped: the ids of the tenant's events on the topic, in their order."""
    await service.broker.stop()
    await pool.close()
    published = await read_topic(kafka_bootstrap, TOPIC.name, lambda r: header(r, "ce_tenantid") == tenant,
                                 expect=n, settle=1.5)
    return [header(r, "ce_id") for r in published]


async def test_overlapped_relay_rounds_keep_the_order_of_one_key(kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    events = [submitted(tenant, "same-entity", title=f"v{n}") for n in range(14)]  # one key: one partition
    pool, relay = await relay_of(service, database_url, events)
    assert await relay.relay_once() == 14  # five rounds, the last one short
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await published_ids(kafka_bootstrap, service, pool, tenant, len(events)) == [e.id for e in events]


async def test_a_failed_relay_round_queues_nothing_after_it_and_is_published_again_in_order(
        kafka_bootstrap, database_url, monkeypatch):
    """Round 2 of 5 is not acknowledged: round 3 (already built) is never handed to Kafka, round
    1 (acknowledged) was deleted at once and is not sent again, and the next attempt publishes
    rounds 2 to 5 in order: each event reaches Kafka once, in the outbox's order."""
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    events = [submitted(tenant, "same-entity", title=f"v{n}") for n in range(14)]
    pool, relay = await relay_of(service, database_url, events)
    real_queue, calls = outbox.queue_batches, []

    async def second_round_not_acknowledged(producer, topic, batches):
        calls.append(len(batches))
        if len(calls) < 2:
            return await real_queue(producer, topic, batches)
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(ConnectionResetError("Kafka went away"))
        return [failed]

    monkeypatch.setattr(outbox, "queue_batches", second_round_not_acknowledged)
    with pytest.raises(ConnectionResetError):
        await relay.relay_once()
    assert len(calls) == 2  # round 3 was built, never queued
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 11  # round 1's delete committed on its ack
    monkeypatch.setattr(outbox, "queue_batches", real_queue)
    assert await relay.relay_once() == 11  # rounds 2 to 5; round 1 not sent again
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await published_ids(kafka_bootstrap, service, pool, tenant, len(events)) == [e.id for e in events]
