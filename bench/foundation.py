"""Foundation benchmark: the shared mechanisms against their raw ceilings, in one run.

1. ``outbox_write``: :func:`shared.outbox.enqueue` of N events in one transaction (COPY) vs a
   plain ``copy_records_to_table`` of the same rows into a plain table.
2. ``outbox_relay``: :meth:`OutboxRelay.relay_once` until the outbox is empty (every event
   acknowledged by Kafka and deleted) vs a plain aiokafka producer with the relay producer's
   settings sending the same records pipelined and awaiting every ack (and, stricter, the same
   producer queueing them in batches per partition, as the relay does: reported beside it).
3. ``consumer``: a :class:`shared.service.Service` whose handler inserts one row per event,
   from ``start()`` until all N effects are in the database, vs a plain aiokafka consumer
   reading the same N records (``getmany`` loop).

Events are ``notification.sent`` CloudEvents (~600 bytes: key + value + headers) of a fresh
tenant on ``distribution.notifications.v1`` (topics come from the registry; auto-create is
off). Everything runs in fresh schemas ``bench_<random>`` (also the benchmark services' names,
hence their inboxes and consumer groups), dropped at the end. Fresh consumer groups are given
today's end of the topic as their start, so they read this run's records only.

Each side is measured ``repeat`` times, interleaved, and the best run is kept (the machine is
small and noisy); every run's time is in the results. Ratios are ``shared throughput / raw
throughput``: 1.0 is the ceiling, 0.25 is four times slower. Diagnostics break the gap down
(row building, decoding, per-round times, hand-rolled consumers doing the same database work)
so that a slow part can be named. A full run publishes (4 x repeat + 1) x N records to the
topic (~160 MB with the defaults).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared import db, outbox, topics
from shared.consumer import Handler
from shared.envelope import CloudEvent, KafkaRecord, new_event, parse, to_binary
from shared.events import NotificationSent
from shared.kafka import aiokafka_producer, create_broker, send_keyed
from shared.outbox import OutboxRelay
from shared.service import Service
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

BENCHMARKS = ("outbox_write", "outbox_relay", "consumer")
MIGRATIONS = Path(__file__).parent / "migrations"
TOPIC = topics.NOTIFICATIONS
EVENT_TYPE = "notification.sent"
SOURCE = "bench/distribution"
POLL_SECONDS = 0.02  # the database is polled this often while a service consumes
TIMEOUT = 120.0  # per consuming run: a stuck run fails instead of hanging

Wire = tuple[bytes, bytes, list[tuple[str, bytes]]]


# --- helpers ---------------------------------------------------------------------------------


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def ratio(shared: float | None, raw: float | None) -> float | None:
    return round(shared / raw, 3) if shared and raw else None


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def measured(seconds: float, n: int, **extra: Any) -> dict[str, Any]:
    return {"seconds": round(seconds, 4), "events_per_second": rate(n, seconds), **extra}


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's time and the median beside it."""
    fastest = dict(min(runs, key=lambda r: r["seconds"]))
    times = [r["seconds"] for r in runs]
    fastest["runs_seconds"] = times
    fastest["median_seconds"] = round(statistics.median(times), 4)
    return fastest


def make_events(tenant: str, n: int) -> list[CloudEvent[Any]]:
    """N distinct notification.sent events, ~600 bytes each as Kafka records (key + value + headers)."""
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    events = []
    for i in range(n):
        notification_id = f"n-{uuid.uuid4().hex[:16]}"
        content_id = f"c-{i % 97:04d}"
        data = {
            "notification_id": notification_id, "content_id": content_id, "ambassador_id": f"amb-{i % 5003:06d}",
            "subsidiary": "fr", "department": "communications", "campaign": "spring-2026", "channel": "email",
            "links": [{"code": uuid.uuid4().hex[:12], "network": "linkedin",
                       "destination_url": f"https://news.example.com/a/{content_id}?utm_source=linkedin"}],
            "reason": None,
            "at": (at + timedelta(seconds=i)).isoformat(),
        }
        events.append(new_event(EVENT_TYPE, source=SOURCE, subject=notification_id, tenant=tenant, data=data))
    NotificationSent.model_validate(events[0].data)  # the payload is a valid contract
    return events


def wire(record: KafkaRecord) -> Wire:
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]


def record_sizes(events: list[CloudEvent[Any]]) -> dict[str, float]:
    sample = [to_binary(e) for e in events]
    key = statistics.mean(len(r.key) for r in sample)
    value = statistics.mean(len(r.value) for r in sample)
    headers = statistics.mean(sum(len(k) + len(v.encode()) for k, v in r.headers.items()) for r in sample)
    return {"key": round(key, 1), "value": round(value, 1), "headers": round(headers, 1),
            "total": round(key + value + headers, 1)}


def producer_config(producer: AIOKafkaProducer) -> dict[str, Any]:
    """The settings of a producer built by shared.kafka.create_broker, read back from it so that
    the raw ceiling uses exactly the same ones."""
    accumulator = producer._message_accumulator
    return {
        "acks": "all" if producer._sender._acks == -1 else producer._sender._acks,
        "enable_idempotence": producer._txn_manager is not None,
        "linger_ms": int(round(accumulator._linger_time * 1000)),
        "max_batch_size": accumulator._batch_size,
        "compression_type": producer._compression_type,
        "max_request_size": producer._max_request_size,
        "request_timeout_ms": producer._request_timeout_ms,
    }


@contextlib.asynccontextmanager
async def raw_producer(bootstrap: str, config: dict[str, Any]) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="portevoix-bench-raw", **config)
    await producer.start()
    try:
        await producer.partitions_for(TOPIC.name)  # metadata outside the timing, as for the relay
        yield producer
    finally:
        await producer.stop()


async def send_pipelined(producer: AIOKafkaProducer, records: list[Wire], chunk: int | None = None) -> None:
    """Send pipelined and await every ack; with ``chunk``, await each chunk's acks before the next."""
    step = chunk or len(records)
    for start in range(0, len(records), step):
        futures = [await producer.send(TOPIC.name, value=v, key=k, headers=h)
                   for k, v, h in records[start:start + step]]
        await asyncio.gather(*futures)


# --- context ---------------------------------------------------------------------------------


class Bench:
    """One run: its settings, repeat count and fresh schemas (dropped at the end)."""

    def __init__(self, kafka_bootstrap: str, database_url: str, n: int, repeat: int) -> None:
        self.kafka_bootstrap = kafka_bootstrap
        self.database_url = database_url
        self.n = n
        self.repeat = repeat
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.settings = ServiceSettings(kafka_bootstrap_servers=kafka_bootstrap, database_url=database_url)
        self.producer: dict[str, Any] = {}
        self._pools: dict[str, asyncpg.Pool] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pools[self.name]

    async def schema(self, name: str) -> asyncpg.Pool:
        """A fresh schema with the mechanism tables and the benchmark's own, and a pool on it."""
        if name not in self._pools:
            self._pools[name] = await db.create_pool(self.database_url, name, min_size=1, max_size=4)
            await db.migrate(self._pools[name], name, MIGRATIONS)
        return self._pools[name]

    async def __aenter__(self) -> Bench:
        await self.schema(self.name)
        broker = create_broker(self.settings, client_id="portevoix-bench-probe")
        await broker.connect()
        try:
            self.producer = producer_config(aiokafka_producer(broker))
        finally:
            await broker.stop()
        return self

    async def __aexit__(self, *_: object) -> None:
        for pool in self._pools.values():
            await pool.close()
        conn = await asyncpg.connect(self.database_url)
        try:
            for name in self._pools:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    @staticmethod
    def new_tenant() -> str:
        return f"t{uuid.uuid4().hex[:12]}"

    async def truncate(self, *tables: str, schema: str | None = None) -> None:
        async with self._pools[schema or self.name].acquire() as conn:
            await conn.execute(f"TRUNCATE {', '.join(tables)}")


# --- 1. outbox write -------------------------------------------------------------------------


async def bench_outbox_write(b: Bench) -> dict[str, Any]:
    events = make_events(b.new_tenant(), b.n)
    started = time.perf_counter()
    rows = [(TOPIC.name, r.key, r.value, json.dumps(r.headers), r.headers["ce_id"])  # what enqueue builds
            for r in (to_binary(e) for e in events)]
    row_build = time.perf_counter() - started

    shared_runs, raw_runs, written = [], [], []
    async with b.pool.acquire() as conn:
        for _ in range(b.repeat):  # interleaved, so drift hits both sides alike
            await b.truncate("outbox", "raw_outbox")
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table("raw_outbox", records=rows, columns=outbox.COLUMNS)
            raw_runs.append(measured(time.perf_counter() - started, b.n))

            started = time.perf_counter()
            async with conn.transaction():
                await outbox.enqueue(conn, TOPIC, events)
            shared_runs.append(measured(time.perf_counter() - started, b.n))
            written.append(await conn.fetchval("SELECT count(*) FROM outbox"))
    await b.truncate("outbox", "raw_outbox")
    shared, raw = best(shared_runs), best(raw_runs)
    return {
        "what": "enqueue of N events in one transaction (COPY) vs plain COPY of the same rows into a plain "
                "table (same columns, no key, default or index), both committed",
        "events": b.n, "repeat": b.repeat, "shared": shared, "raw": raw,
        "ratio": ratio(shared["events_per_second"], raw["events_per_second"]),
        "check": {"rows_written": written, "ok": all(w == b.n for w in written)},
        "diagnostics": {
            "row_build_seconds": round(row_build, 4),
            "row_build_us_per_event": round(row_build / b.n * 1e6, 2),
            "row_build_note": "to_binary + json.dumps(headers) per event: Python work enqueue does before its "
                              "COPY (the raw ceiling gets the rows ready-made)",
            "copy_part_seconds": round(shared["seconds"] - row_build, 4),
        },
    }


# --- 2. outbox relay -------------------------------------------------------------------------


async def bench_outbox_relay(b: Bench) -> dict[str, Any]:
    events = make_events(b.new_tenant(), b.n)
    records = [wire(to_binary(e)) for e in events]
    batch = b.settings.outbox_batch_size
    shared_runs, raw_runs, chunked_runs, keyed_runs, checks = [], [], [], [], []
    for _ in range(b.repeat):
        # Raw ceiling: everything pipelined, then every ack awaited.
        async with raw_producer(b.kafka_bootstrap, b.producer) as producer:
            started = time.perf_counter()
            await send_pipelined(producer, records)
            raw_runs.append(measured(time.perf_counter() - started, b.n))
            # Diagnostic: the same producer, awaiting the acks of each relay-sized batch in turn.
            started = time.perf_counter()
            await send_pipelined(producer, records, chunk=batch)
            chunked_runs.append(measured(time.perf_counter() - started, b.n, batch=batch))
            # A stricter ceiling: the records queued in batches per partition, as the relay does.
            started = time.perf_counter()
            await asyncio.gather(*await send_keyed(producer, TOPIC.name, records))
            keyed_runs.append(measured(time.perf_counter() - started, b.n))

        async with b.pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, TOPIC, events)

        broker = create_broker(b.settings, client_id=f"portevoix-{b.name}")
        await broker.connect()
        try:
            await aiokafka_producer(broker).partitions_for(TOPIC.name)
            relay = OutboxRelay(b.pool, broker, b.name, batch_size=batch,
                                poll_interval=b.settings.outbox_poll_interval_seconds)
            rounds: list[float] = []
            published = 0
            started = time.perf_counter()
            while True:
                round_started = time.perf_counter()
                n = await relay.relay_once()
                if not n:
                    break
                published += n
                rounds.append(time.perf_counter() - round_started)
            seconds = time.perf_counter() - started
        finally:
            await broker.stop()
        left = await b.pool.fetchval("SELECT count(*) FROM outbox")
        checks.append({"published": published, "left_in_outbox": left})
        shared_runs.append(measured(seconds, b.n, rounds=len(rounds), round_seconds={
            "first": round(rounds[0], 4), "median": round(statistics.median(rounds), 4),
            "last": round(rounds[-1], 4), "max": round(max(rounds), 4),
        } if rounds else None))
        await b.truncate("outbox")  # (empty) and resets nothing else: the next run enqueues afresh

    shared, raw = best(shared_runs), best(raw_runs)
    return {
        "what": "relay_once until the outbox is empty (every event acked by Kafka, rows deleted) vs a plain "
                "aiokafka producer with the relay producer's settings sending the same records pipelined, "
                "awaiting all acks",
        "events": b.n, "repeat": b.repeat, "shared": shared, "raw": raw,
        "ratio": ratio(shared["events_per_second"], raw["events_per_second"]),
        "relay_batch_size": batch,
        "producer_settings": b.producer,
        "check": {"runs": checks, "ok": all(c["published"] == b.n and c["left_in_outbox"] == 0 for c in checks)},
        "diagnostics": {
            "raw_awaiting_each_batch": dict(best(chunked_runs), note=f"plain producer awaiting the acks of each "
                                            f"batch of {batch} before sending the next"),
            "raw_keyed_batches": dict(best(keyed_runs), ratio_of_shared=ratio(
                shared["events_per_second"], best(keyed_runs)["events_per_second"]),
                note="plain producer with the records queued in batches per partition (send_batch), as the "
                     "relay queues them: a stricter ceiling"),
        },
    }


# --- 3. idempotent consumer ------------------------------------------------------------------


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        return dict(await consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)]))
    finally:
        await consumer.stop()


async def commit_start(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Set a consumer group's committed offsets (the group has no member at this point)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
    finally:
        await consumer.stop()


def phases(t0: float, t_first: float | None, first_n: int, t_end: float, n: int, **extra: Any) -> dict[str, Any]:
    result = measured(t_end - t0, n, **extra)
    if t_first is not None:
        result["first_after_seconds"] = round(t_first - t0, 4)
        # From the first records (or effects) seen to the last: the rate once running.
        result["steady_events"], result["steady_seconds"] = n - first_n, round(t_end - t_first, 4)
        result["steady_events_per_second"] = rate(n - first_n, t_end - t_first) if n > first_n else None
    return result


async def plain_consumer(bootstrap: str, topic: str, group: str, starts: dict[TopicPartition, int],
                         targets: dict[TopicPartition, int],
                         on_batch: Callable[[list[ConsumerRecord]], Awaitable[None]] | None = None,
                         max_records: int | None = None, keep: list[ConsumerRecord] | None = None,
                         **extra: Any) -> dict[str, Any]:
    """A plain aiokafka consumer of a fresh group, getmany until every partition reached its
    target offset (with ``on_batch``: offsets committed after each call); timed from start()."""
    t0 = time.perf_counter()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        reached = {tp: target <= starts.get(tp, 0) for tp, target in targets.items()}
        count, first, first_n = 0, None, 0
        deadline = time.monotonic() + TIMEOUT
        while not all(reached.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group}: read {count} records in {TIMEOUT:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=max_records)
            fetched = [r for records in batches.values() for r in records]
            if not fetched:
                continue
            if first is None:
                first = time.perf_counter()
            count += len(fetched)
            for tp, records in batches.items():
                if records and records[-1].offset + 1 >= targets.get(tp, 0):
                    reached[tp] = True
            if keep is not None:
                keep.extend(fetched)
            if on_batch is not None:  # like the helper: one call per getmany, then the commit
                await on_batch(fetched)
                await consumer.commit()
            if first is not None and not first_n:
                first_n = count
        t_end = time.perf_counter()
    finally:
        await consumer.stop()
    return phases(t0, first, first_n, t_end, count, records=count, **extra)


async def timed_service(b: Bench, service: Service, done_sql: str, *args: Any) -> dict[str, Any]:
    """Start the service and poll ``done_sql`` until it counts N; timed from start()."""
    watcher = await asyncpg.connect(b.database_url, server_settings={"search_path": service.schema})
    try:
        t0 = time.perf_counter()
        await service.start()
        start_up = time.perf_counter() - t0
        first, first_n = None, 0
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                done = await watcher.fetchval(done_sql, *args)
                now = time.perf_counter()
                if done and first is None:
                    first, first_n = now, done
                if done >= b.n:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service.name}: {done} of {b.n} after {TIMEOUT:.0f}s")
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await service.stop()
    finally:
        await watcher.close()
    return phases(t0, first, first_n, now, b.n, start_up_seconds=round(start_up, 4))


async def claim_ids(conn: asyncpg.Connection, consumer: str, sources: list[str],
                    ids: list[str]) -> list[asyncpg.Record]:
    """The consumer helper's inbox claim, by hand: the (source, id) pairs inserted, those new returned."""
    return await conn.fetch(
        """INSERT INTO inbox (consumer, source, event_id)
           SELECT $1, s, i FROM unnest($2::text[], $3::text[]) AS t(s, i)
           ON CONFLICT DO NOTHING RETURNING event_id""",
        consumer, sources, ids)


def hand_rolled_db_work(pool: asyncpg.Pool, consumer_name: str, *, per_event: bool) -> Callable[
        [list[ConsumerRecord]], Awaitable[None]]:
    """The consumer helper's database work without FastStream or envelope validation: claim the
    ids in the inbox, write the effects, one transaction per getmany batch."""

    async def work(batch: list[ConsumerRecord]) -> None:
        items = []
        for r in batch:
            h = dict(r.headers)
            data = json.loads(r.value)
            items.append((h["ce_source"].decode(), h["ce_id"].decode(), h["ce_tenantid"].decode(),
                          data["notification_id"], data["ambassador_id"]))
        async with pool.acquire() as conn, conn.transaction():
            claimed = {r["event_id"] for r in await claim_ids(conn, consumer_name, [i[0] for i in items],
                                                              [i[1] for i in items])}
            fresh = [i for i in items if i[1] in claimed]
            if per_event:
                for _, _, tenant, notification_id, ambassador_id in fresh:
                    await conn.execute(
                        "INSERT INTO raw_effects (tenant, notification_id, ambassador_id) VALUES ($1, $2, $3)",
                        tenant, notification_id, ambassador_id)
            elif fresh:
                await conn.execute(
                    """INSERT INTO raw_effects (tenant, notification_id, ambassador_id)
                       SELECT * FROM unnest($1::text[], $2::text[], $3::text[])""",
                    [i[2] for i in fresh], [i[3] for i in fresh], [i[4] for i in fresh])

    return work


async def bench_consumer(b: Bench) -> dict[str, Any]:
    tenant = b.new_tenant()
    records = [wire(to_binary(e)) for e in make_events(tenant, b.n)]
    max_records = b.settings.consumer_max_records
    inbox_only_name = f"{b.name}_inbox"  # a second service: its own schema, inbox and groups
    await b.schema(inbox_only_name)

    async def record_effect(conn: asyncpg.Connection, event: CloudEvent[Any]) -> None:
        await conn.execute("INSERT INTO effects (tenant, notification_id, ambassador_id) VALUES ($1, $2, $3)",
                           event.tenantid, event.data.notification_id, event.data.ambassador_id)

    async def no_effect(conn: asyncpg.Connection, event: CloudEvent[Any]) -> None:
        return None

    def service(name: str, handler: Handler) -> Service:
        s = Service(name, b.settings, migrations=MIGRATIONS)
        s.consume(TOPIC, {EVENT_TYPE: handler})
        return s

    # Every consumer group of this run (the services', as their subscribers name them, and the
    # plain ones) starts at today's end of its topic; then the N records are produced.
    plain = {"raw": f"{b.name}_raw", "per_event": f"{b.name}_db1", "batched": f"{b.name}_dbn"}
    # (group, topic) pairs: a subscriber may read several topics (was: a dict keyed by group, which
    # kept only the last topic of each subscriber and left the others' offsets where they were).
    groups = [(group, TOPIC.name) for group in plain.values()]
    for s in (service(b.name, record_effect), service(inbox_only_name, no_effect)):
        for subscriber in s.broker.subscribers:
            groups += [(subscriber.group_id, name) for name in subscriber.topic_names]
    ends = {name: await end_offsets(b.kafka_bootstrap, name) for name in {name for _, name in groups}}
    starts = ends[TOPIC.name]
    async with raw_producer(b.kafka_bootstrap, b.producer) as producer:
        await send_pipelined(producer, records)
    del records
    targets = await end_offsets(b.kafka_bootstrap, TOPIC.name)
    on_topic = sum(targets[tp] - starts.get(tp, 0) for tp in targets)

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("raw", "shared", "inbox_only", "per_event", "batched")}
    checks = []
    kept: list[ConsumerRecord] = []
    for rep in range(b.repeat):
        await b.truncate("effects", "raw_effects", "inbox")
        await b.truncate("inbox", schema=inbox_only_name)
        for group, name in groups:  # one group's topics one after the other
            await commit_start(b.kafka_bootstrap, group, ends[name])

        # Raw ceiling: a plain consumer reading the N records (getmany loop).
        runs["raw"].append(await plain_consumer(b.kafka_bootstrap, TOPIC.name, plain["raw"], starts, targets,
                                                keep=kept if rep == 0 else None))
        # The shared mechanism: a Service whose handler inserts one row per event.
        runs["shared"].append(await timed_service(
            b, service(b.name, record_effect), "SELECT count(*) FROM effects WHERE tenant = $1", tenant))
        # Diagnostics: the same service with a handler that writes nothing (inbox only), and
        # hand-rolled consumers doing the same database work, per event and batched.
        runs["inbox_only"].append(await timed_service(
            b, service(inbox_only_name, no_effect), "SELECT count(*) FROM inbox WHERE consumer = $1", inbox_only_name))
        runs["per_event"].append(await plain_consumer(
            b.kafka_bootstrap, TOPIC.name, plain["per_event"], starts, targets, max_records=max_records,
            on_batch=hand_rolled_db_work(b.pool, plain["per_event"], per_event=True)))
        per_event_effects = await b.pool.fetchval("SELECT count(*) FROM raw_effects")
        await b.truncate("raw_effects")
        runs["batched"].append(await plain_consumer(
            b.kafka_bootstrap, TOPIC.name, plain["batched"], starts, targets, max_records=max_records,
            on_batch=hand_rolled_db_work(b.pool, plain["batched"], per_event=False)))

        inbox_pool = await b.schema(inbox_only_name)
        async with b.pool.acquire() as conn:
            checks.append({
                "raw_read": runs["raw"][-1]["records"],
                "effects": await conn.fetchval("SELECT count(*) FROM effects WHERE tenant = $1", tenant),
                "inbox": await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", b.name),
                "inbox_only_service_inbox": await inbox_pool.fetchval(
                    "SELECT count(*) FROM inbox WHERE consumer = $1", inbox_only_name),
                "hand_rolled_per_event_effects": per_event_effects,
                "hand_rolled_batched_effects": await conn.fetchval("SELECT count(*) FROM raw_effects"),
            })

    started = time.perf_counter()  # diagnostic: what the helper does to each record before its handler
    for r in kept:
        parse(r.value, r.headers, TOPIC.name)
    decode_us = round((time.perf_counter() - started) / max(len(kept), 1) * 1e6, 2)
    del kept

    best_runs = {name: best(r) for name, r in runs.items()}
    shared, raw = best_runs["shared"], best_runs["raw"]
    shared["batch_size"] = max_records
    return {
        "what": "Service with an idempotent consumer whose handler inserts one row per event, from start() until "
                "all N effects are in the database, vs a plain aiokafka consumer of a fresh group reading the same "
                "N records from start() (getmany loop)",
        "events": b.n, "repeat": b.repeat, "shared": shared, "raw": raw,
        "ratio": ratio(shared["events_per_second"], raw["events_per_second"]),
        "steady_ratio": ratio(shared.get("steady_events_per_second"), raw.get("steady_events_per_second")),
        "consumer_max_records": max_records,
        "check": {"records_on_topic": on_topic, "runs": checks,
                  "ok": on_topic == b.n and all(v == b.n for c in checks for v in c.values())},
        "diagnostics": {
            "service_inbox_only": dict(
                best_runs["inbox_only"],
                ratio_to_raw=ratio(best_runs["inbox_only"]["events_per_second"], raw["events_per_second"]),
                note="the same Service with a handler that writes nothing: the helper's own cost "
                     "(FastStream, decoding, inbox claim, commit), timed until N ids are in the inbox"),
            "hand_rolled_per_event_insert": dict(
                best_runs["per_event"], batch_size=max_records,
                note="plain consumer + the same DB work (inbox claim, one INSERT per event, one transaction "
                     "per batch, offsets committed after); no FastStream, no envelope validation"),
            "hand_rolled_batched_insert": dict(
                best_runs["batched"], batch_size=max_records,
                note="as above but one multi-row INSERT (unnest) per batch instead of one per event"),
            "decode_us_per_event": decode_us,
            "decode_note": "envelope.parse per record (as the consumers): envelope + contract validation, CPU only",
        },
    }


# --- run ---------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "outbox_write": bench_outbox_write,
    "outbox_relay": bench_outbox_relay,
    "consumer": bench_consumer,
}


async def run(kafka_bootstrap: str, database_url: str, *, events: int, repeat: int = 3,
              only: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks (all, or ``only`` those) and return their results by name."""
    results: dict[str, Any] = {}
    async with Bench(kafka_bootstrap, database_url, events, repeat) as b:
        for name in only or BENCHMARKS:
            log.warning("bench: %s (%d events, best of %d)...", name, events, repeat)
            started = time.perf_counter()
            result = await RUNNERS[name](b)
            result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            result["wall_seconds"] = round(time.perf_counter() - started, 2)
            result["peak_rss_mib_after"] = peak_rss_mib()
            results[name] = result
            log.warning("bench: %s done in %.1fs, ratio %s", name, result["wall_seconds"], result["ratio"])
        return {"results": results, "schema": b.name, "producer_settings": b.producer,
                "record_bytes": record_sizes(make_events(b.new_tenant(), min(events, 1000)))}
