"""The one transactional outbox.

A state change and the events it emits are written in one PostgreSQL transaction
(:func:`enqueue`); the :class:`OutboxRelay` publishes them to Kafka afterwards, waits for
Kafka's acknowledgement, then deletes them. A crash between the commit and the publication
only delays it; a crash between the publication and the delete publishes again, which the
consumers' inbox absorbs (same CloudEvents id).

The relay publishes in rounds, a few per transaction, overlapped: a round is built while Kafka
acknowledges the previous one and handed to Kafka only once that one is entirely acknowledged
(:meth:`OutboxRelay.relay_once` says why order and the outbox's guarantees hold).

The relay polls with ``FOR UPDATE SKIP LOCKED``; ``LISTEN/NOTIFY`` only wakes it early. One
relay per schema works at a time (a transaction-scoped advisory lock), which keeps each key's
events in order when several replicas run. A relay that lost the database between Kafka's
acknowledgement and its delete remembers the ids and deletes them first when it is back, so only
a relay that dies at that very moment publishes twice.
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
                 poll_interval: float = 1.0, rounds_per_transaction: int = 10) -> None:
        self.pool = pool
        self.broker = broker
        self.schema = schema
        self.batch_size = batch_size
        self.rounds_per_transaction = rounds_per_transaction
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
        """Publish what is pending, in rounds of ``batch_size`` events within one transaction
        (at most ``rounds_per_transaction``); return how many were published.

        The rounds overlap: while Kafka acknowledges round N, the relay deletes round N-1's rows,
        fetches round N+1's and builds its batches; round N+1 is handed to the producer only once
        every record of round N is acknowledged. Hence:

        - order per key (and per partition) is the outbox's: no record of a later round reaches
          Kafka before every record of the earlier rounds is there (the producer itself keeps
          the order within a round: one request per broker in flight, batches queued in order);
        - when a round fails, nothing after it is queued (its batches were only built) and the
          transaction rolls back: the failed round and all after it stay in the outbox and are
          published again, in order, by the next attempt. The rounds acknowledged before it are
          remembered and deleted first (:attr:`_published_not_deleted`), not sent again;
        - the advisory lock and the row locks are those of the one transaction, as before: one
          relay per schema, a crash only republishes (the deletes commit with the transaction).
        """
        if self._published_not_deleted:
            # Kafka acknowledged these, then the database failed before their delete committed
            # (e.g. a PostgreSQL restart): delete them now rather than publish them twice.
            async with self.pool.acquire() as conn:
                await _delete(conn, self._published_not_deleted)
            self._published_not_deleted = []
        counts: Counter[str] = Counter()
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self.schema}"):
                return 0  # another replica's relay is at work
            await self._rounds(conn, counts)
        self._published_not_deleted = []  # committed: their deletes with it
        for topic, count in counts.items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        return sum(counts.values())

    async def _rounds(self, conn: asyncpg.Connection, counts: Counter[str]) -> None:
        """The overlapped rounds of :meth:`relay_once` (see there), on its transaction. Each
        round acknowledged by Kafka joins :attr:`_published_not_deleted` until the commit."""
        producer = aiokafka_producer(self.broker)
        rows = await self._fetch(conn, after=0)
        flying: list[int] = []  # the ids of the round Kafka is acknowledging
        futures: list[asyncio.Future[Any]] = []
        for round_ in range(self.rounds_per_transaction):
            if not rows:
                break
            batches = await self._batches(producer, rows)  # built while the previous round flies
            await acknowledged(futures)  # the previous round: raises if any of it failed
            self._published_not_deleted += flying
            futures = [f for topic, built in batches for f in await queue_batches(producer, topic, built)]
            await _delete(conn, flying)  # the previous round, while this one flies
            flying = [row["id"] for row in rows]
            counts.update(row["topic"] for row in rows)
            rows = [] if round_ == self.rounds_per_transaction - 1 else await self._fetch(conn, after=flying[-1])
        await acknowledged(futures)
        self._published_not_deleted += flying
        await _delete(conn, flying)

    async def _fetch(self, conn: asyncpg.Connection, after: int) -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
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
