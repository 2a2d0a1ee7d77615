"""The one transactional outbox.

A state change and the events it emits are written in one PostgreSQL transaction
(:func:`enqueue`); the :class:`OutboxRelay` publishes them to Kafka afterwards, waits for
Kafka's acknowledgement, then deletes them. A crash between the commit and the publication
only delays it; a crash between the publication and the delete publishes again, which the
consumers' inbox absorbs (same CloudEvents id).

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
from shared.kafka import aiokafka_producer, recover_from, send_keyed
from shared.topics import Topic

log = logging.getLogger(__name__)
COLUMNS = ("topic", "key", "value", "headers", "event_id")


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
    if len(rows) > 20:
        await conn.copy_records_to_table("outbox", records=[(topic.name, *row) for row in rows], columns=COLUMNS)
    elif rows:
        await conn.executemany("INSERT INTO outbox (topic, key, value, headers, event_id) VALUES ($1, $2, $3, $4, $5)",
                               [(topic.name, *row) for row in rows])
    if rows:
        await conn.execute("SELECT pg_notify('portevoix_outbox_' || current_schema(), '')")
    return len(rows)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, broker: KafkaBroker, schema: str, *, batch_size: int = 1000,
                 poll_interval: float = 1.0) -> None:
        self.pool = pool
        self.broker = broker
        self.schema = schema
        self.batch_size = batch_size
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
        """Publish one batch of pending events; return how many were published."""
        if self._published_not_deleted:
            # Kafka acknowledged these, then the database failed before their delete committed
            # (e.g. a PostgreSQL restart): delete them now rather than publish them twice.
            async with self.pool.acquire() as conn:
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", self._published_not_deleted)
            self._published_not_deleted = []
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self.schema}"):
                return 0  # another replica's relay is at work
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size)
            if not rows:
                return 0
            futures = await self._send(rows)
            await asyncio.gather(*futures)
            self._published_not_deleted = [row["id"] for row in rows]
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", self._published_not_deleted)
        self._published_not_deleted = []
        for topic, count in Counter(row["topic"] for row in rows).items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def _send(self, rows: list[asyncpg.Record]) -> list[asyncio.Future[Any]]:
        """Queue the rows on Kafka in their order (per topic, hence per key), batch by batch."""
        producer = aiokafka_producer(self.broker)
        # One JSON document for all the rows' headers: one parse instead of one per row.
        headers = json.loads(f"[{','.join(row['headers'] for row in rows)}]")
        by_topic: dict[str, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}
        for (_, topic, key, value, _), h in zip(rows, headers, strict=True):
            by_topic.setdefault(topic, []).append((key, value, [(k, v.encode()) for k, v in h.items()]))
        futures = []
        for topic, records in by_topic.items():
            futures += await send_keyed(producer, topic, records)
        return futures

    async def _observe_backlog(self) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox")
        metrics.OUTBOX_BACKLOG.set(row["n"])
        metrics.OUTBOX_OLDEST_AGE.set(float(row["age"]))
