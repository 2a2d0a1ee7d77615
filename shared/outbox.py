"""The one transactional outbox.

A state change and the events it emits are written in one PostgreSQL transaction
(:func:`enqueue`); the :class:`OutboxRelay` publishes them to Kafka afterwards, waits for
Kafka's acknowledgement, then deletes them. A crash between the commit and the publication
only delays it; a crash between the publication and the delete publishes again, which the
consumers' inbox absorbs (same CloudEvents id).

The relay publishes in rounds: a round is built while Kafka acknowledges the previous one,
and handed to Kafka only once that one is entirely acknowledged and its rows deleted (each
delete commits at once). A relay killed at any moment has therefore left at most one round
published but not deleted: after a crash, a consumer may see the events of that one round a
second time, with the same CloudEvents id (at-least-once, bounded to ``batch_size`` events).

``LISTEN/NOTIFY`` only wakes the relay early; it polls too. One relay per schema works at a time
(a session advisory lock held while it relays), which keeps each key's events in order when
several replicas run. A relay that lost the database between Kafka's acknowledgement and its
delete remembers the ids and deletes them first when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from shared import metrics
from shared.envelope import CloudEvent, KafkaRecord, to_binary
from shared.kafka import KeyedBatches, acknowledged, aiokafka_producer, keyed_batches, queue_batches, recover_from
from shared.topics import Topic

log = logging.getLogger(__name__)
COLUMNS = ("topic", "key", "value", "headers", "event_id")


async def _delete(conn: asyncpg.Connection, ids: list[int]) -> None:
    if ids:
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


def _channel(schema: str) -> str:
    return f"portevoix_outbox_{schema}"


async def enqueue(conn: asyncpg.Connection, topic: Topic, events: Iterable[CloudEvent[Any]] | CloudEvent[Any],
                  *, key: bytes | None = None) -> int:
    """Add events to the outbox inside the caller's transaction. Many events go by COPY."""
    if isinstance(events, CloudEvent):
        events = [events]
    return await enqueue_records(conn, topic, [to_binary(event, key) for event in events])


async def enqueue_records(conn: asyncpg.Connection, topic: Topic, records: Iterable[KafkaRecord]) -> int:
    """:func:`enqueue` for records already built (e.g. by ``envelope.binary_record``); the dedup
    id is each record's ``ce_id`` header. One ``pg_notify`` per call, however many records."""
    return await enqueue_encoded(conn, topic, [(r.key, r.value, json.dumps(r.headers), r.headers["ce_id"])
                                               for r in records])


async def enqueue_encoded(conn: asyncpg.Connection, topic: Topic, rows: Sequence[tuple[bytes, bytes, str, str]]) -> int:
    """:func:`enqueue_records` for records whose headers are already a JSON object of strings:
    (key, value, headers JSON, ``ce_id``) rows (producers of many events encode their shared
    headers once)."""
    records = [(topic.name, *row) for row in rows]
    if len(records) > 20:
        await conn.copy_records_to_table("outbox", records=records, columns=COLUMNS)
    elif records:
        await conn.executemany("INSERT INTO outbox (topic, key, value, headers, event_id) VALUES ($1, $2, $3, $4, $5)",
                               records)
    if records:
        await conn.execute("SELECT pg_notify('portevoix_outbox_' || current_schema(), '')")
    return len(rows)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, broker: KafkaBroker, schema: str, *, batch_size: int = 1000,
                 poll_interval: float = 1.0, max_rounds: int = 10) -> None:
        self.pool = pool
        self.broker = broker
        self.schema = schema
        self.batch_size = batch_size
        self.max_rounds = max_rounds
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._published_not_deleted: list[int] = []

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self) -> None:
        """Let the round in flight finish (its rows are either published and deleted, or not)."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_listener()

    async def _listen(self) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await self.pool.acquire()  # held for the relay's life
            await self._listener.add_listener(_channel(self.schema), self._on_notify)

    async def _drop_listener(self) -> None:
        """Give the listening connection back without its listener (it may be broken)."""
        if self._listener is None:
            return
        listener, self._listener = self._listener, None
        with contextlib.suppress(Exception):
            await listener.remove_listener(_channel(self.schema), self._on_notify)
        with contextlib.suppress(Exception):
            await self.pool.release(listener)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._listen()
                published = await self.relay_once()
                backoff = 0.5
                if published >= self.batch_size:
                    continue  # more waiting: no pause
                await self._observe_backlog()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                metrics.OUTBOX_FAILURES.inc()
                await recover_from(self.broker, error)
                log.warning("outbox relay (%s): round failed, retrying in %.1fs: %r", self.schema, backoff, error)
                await self._drop_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def relay_once(self) -> int:
        """Publish what is pending, in at most ``max_rounds`` rounds of ``batch_size``
        events; return how many were published.

        The rounds overlap: while Kafka acknowledges round N, the relay fetches round N+1's rows
        and builds its batches; once every record of round N is acknowledged, its rows are
        deleted (committed), then round N+1 is handed to the producer. Hence:

        - order per key (and per partition) is the outbox's: no record of a later round reaches
          Kafka before every record of the earlier rounds is there (the producer itself keeps
          the order within a round: one request per broker in flight, batches queued in order);
        - when a round fails, nothing after it is queued (its batches were only built): the
          failed round and all after it stay in the outbox and are published again, in order,
          by the next attempt; the rounds before it are already deleted;
        - a crash at any point leaves at most one round in Kafka and in the outbox (the one in
          flight, or the one acknowledged whose delete had not committed): republished once.
        """
        if self._published_not_deleted:
            # Kafka acknowledged these, then the database failed before their delete committed
            # (e.g. a PostgreSQL restart): delete them now rather than publish them twice.
            async with self.pool.acquire() as conn:
                await _delete(conn, self._published_not_deleted)
            self._published_not_deleted = []
        counts: Counter[str] = Counter()
        lock = f"outbox:{self.schema}"
        async with self.pool.acquire() as conn:
            # Session-level, so that each round's delete can commit on its own; it conflicts with
            # the transaction-level lock of earlier relay versions (one lock space), so a rolling
            # update never runs two relays on one schema either.
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
                return 0  # another replica's relay is at work
            try:
                await self._rounds(conn, counts)
            finally:
                with contextlib.suppress(Exception):  # a broken connection has lost the lock already
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)
        for topic, count in counts.items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        return sum(counts.values())

    async def _rounds(self, conn: asyncpg.Connection, counts: Counter[str]) -> None:
        """The overlapped rounds of :meth:`relay_once` (see there). A round acknowledged by Kafka
        stays in :attr:`_published_not_deleted` until its delete has committed."""
        producer = aiokafka_producer(self.broker)
        rows = await self._fetch(conn, after=0)
        flying: list[int] = []  # the ids of the round Kafka is acknowledging
        futures: list[asyncio.Future[Any]] = []
        for round_ in range(self.max_rounds):
            if not rows:
                break
            batches = await self._batches(producer, rows)  # built while the previous round flies
            await self._acknowledged_then_deleted(conn, futures, flying)
            futures = [f for topic, built in batches for f in await queue_batches(producer, topic, built)]
            flying = [row["id"] for row in rows]
            counts.update(row["topic"] for row in rows)
            rows = [] if round_ == self.max_rounds - 1 else await self._fetch(conn, after=flying[-1])
        await self._acknowledged_then_deleted(conn, futures, flying)

    async def _acknowledged_then_deleted(self, conn: asyncpg.Connection, futures: list[asyncio.Future[Any]],
                                         ids: list[int]) -> None:
        await acknowledged(futures)  # raises if any of the round failed: its rows stay
        self._published_not_deleted = ids
        await _delete(conn, ids)
        self._published_not_deleted = []

    async def _fetch(self, conn: asyncpg.Connection, after: int) -> list[asyncpg.Record]:
        return await conn.fetch("SELECT id, topic, key, value, headers FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                                after, self.batch_size)

    async def _batches(self, producer: Any, rows: list[asyncpg.Record]) -> list[tuple[str, KeyedBatches]]:
        """The rows as Kafka batches, per topic and in their order (hence per key), not queued yet."""
        # One JSON document for all the rows' headers: one parse instead of one per row.
        headers = json.loads(f"[{','.join(row['headers'] for row in rows)}]")
        encode = str.encode
        by_topic: dict[str, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}
        for (_, topic, key, value, _), h in zip(rows, headers, strict=True):
            by_topic.setdefault(topic, []).append((key, value, list(zip(h, map(encode, h.values()), strict=True))))
        return [(topic, await keyed_batches(producer, topic, records)) for topic, records in by_topic.items()]

    async def _observe_backlog(self) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox")
        metrics.OUTBOX_BACKLOG.set(row["n"])
        metrics.OUTBOX_OLDEST_AGE.set(float(row["age"]))
