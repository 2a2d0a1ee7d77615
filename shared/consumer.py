"""The one idempotent-consumer helper, with bounded retries and the dead-letter queue.

A batch of records is processed in one PostgreSQL transaction: the processed event ids go to
the ``inbox`` table in the same transaction as the handlers' effects, so a redelivered event
finds its id there and has no second effect. Kafka offsets are committed only after that
transaction (FastStream ``AckPolicy.MANUAL``; see DESIGN.md for why the other policies lose
or loop on messages).

What can go wrong, and where it goes:
- the record is not a valid event (bytes, envelope, unknown type, data): the DLQ at once;
- a batch handler rejects an event (valid, but its facts refuse it, e.g. an engagement dated
  before its content existed): the DLQ at once, with the handler's cause, and no effect;
- a handler raises: the batch is redone one event per transaction, and each failing event is
  sent to ``<topic>.retry`` with a growing delay, then to ``<topic>.dlq`` after the last try;
- the database or the broker is unreachable: nothing is acknowledged, the batch is rewound
  and read again after a pause, so nothing is skipped while the infrastructure is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared import logs, metrics
from shared.envelope import CloudEvent, EnvelopeError, parse
from shared.kafka import aiokafka_producer
from shared.topics import Topic

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, CloudEvent[Any]], Awaitable[None]]
# Events a batch handler refuses, each with its cause: they had no effect, and go to the DLQ.
Rejections = list[tuple[CloudEvent[Any], str]]
# Receives every fresh event of a batch (already claimed in the inbox, in the order read), in
# the batch's transaction: lets a service add its effects in a few set-based statements.
BatchHandler = Callable[[asyncpg.Connection, list[CloudEvent[Any]]], Awaitable[Rejections | None]]

H_GROUP = "x-portevoix-retry-consumer"
H_ATTEMPT = "x-portevoix-attempt"
H_NOT_BEFORE = "x-portevoix-not-before"
H_ERROR = "x-portevoix-error"
H_ORIGIN = "x-portevoix-origin"  # topic/partition/offset where the record was first read
# What a dead letter carries besides the original bytes and headers (documented in AsyncAPI).
DLQ_HEADERS = {
    "x-portevoix-dlq-cause": "Why the record was parked: the validation error or the handler's last exception",
    "x-portevoix-dlq-consumer": "The consumer group that parked it (each group parks its own copy)",
    "x-portevoix-dlq-attempts": "How many times it was tried (1: not retryable, e.g. invalid)",
    "x-portevoix-dlq-at": "When it was parked (ISO 8601)",
}
OUR_HEADERS = (H_GROUP, H_ATTEMPT, H_NOT_BEFORE, H_ERROR, H_ORIGIN)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.TransactionRollbackError,  # deadlocks and serialization failures: redo the batch
)


@dataclasses.dataclass
class Decoded:
    record: ConsumerRecord
    event: CloudEvent[Any] | None = None
    error: str | None = None  # permanent: the DLQ

    @property
    def attempt(self) -> int:
        return int(_header(self.record, H_ATTEMPT) or 0)


@dataclasses.dataclass
class Outcome:
    """What became of a batch's runnable events."""

    new: int = 0
    duplicates: int = 0
    failed: list[tuple[Decoded, str]] = dataclasses.field(default_factory=list)  # retried, then the DLQ
    rejected: list[tuple[Decoded, str]] = dataclasses.field(default_factory=list)  # the DLQ at once


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


class EventConsumer:
    """Consumes one topic for one consumer group, calling one handler per event type, or, with
    ``batch_handler``, one call per batch with the fresh events of the ``batch_types``.

    Types that belong on the topic but have no handler here are acknowledged and skipped;
    types the registry does not know are poison (the DLQ). A failing batch handler is retried
    like a failing per-event handler: the batch is redone one event (a list of one) at a time.
    """

    def __init__(self, *, name: str, topic: Topic, handlers: Mapping[str, Handler], pool: Callable[[], asyncpg.Pool],
                 broker: KafkaBroker, retry_delays: list[float], max_records: int = 500,
                 max_poll_interval_ms: int = 300_000, batch_handler: BatchHandler | None = None,
                 batch_types: Collection[str] = ()) -> None:
        if batch_handler is not None and handlers:
            raise ValueError("give per-event handlers or a batch handler, not both")
        self.name = name
        self.topic = topic
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.types = frozenset(self.handlers) | frozenset(batch_types if batch_handler else ())
        self._pool = pool  # resolved late: the pool is created at start-up, after wiring
        self.broker = broker
        self.retry_delays = retry_delays
        self._backoff = 0.5
        # A consumer group per topic: groups shared by several subscribers rebalance once per
        # subscriber joining (seconds each, every topic paused meanwhile).
        for topic_name in (topic.name, topic.retry.name):
            group = f"{name}.{topic_name}"
            listener = LagOnAssignment(name)
            subscriber = broker.subscriber(
                topic_name, group_id=group, batch=True, max_records=max_records,
                ack_policy=AckPolicy.MANUAL, auto_offset_reset="earliest",
                max_poll_interval_ms=max_poll_interval_ms, parser=_parse_batch, decoder=_raw_values,
                title=f"{topic_name}:{group}",
                description=f"{name} consumes {topic_name} ({', '.join(sorted(self.types))})",
                listener=listener,
            )
            listener.subscriber = subscriber
            subscriber(self._on_batch)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    async def _on_batch(self, body: list[bytes], msg: KafkaMessage) -> None:
        records: tuple[ConsumerRecord, ...] = msg.raw_message
        topic = records[0].topic if records else self.topic.name
        started = time.perf_counter()
        try:
            await self.process(records)
        except INFRASTRUCTURE_ERRORS as error:
            metrics.CONSUMER_INFRA_FAILURES.labels(topic, self.name).inc()
            log.warning("%s: infrastructure failure on %s, batch rewound: %r", self.name, topic, error)
            await msg.nack()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 30.0)
            return
        except Exception:  # a bug in this helper: never skip records silently
            log.exception("%s: unexpected failure on %s, batch rewound", self.name, topic)
            await msg.nack()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 30.0)
            return
        self._backoff = 0.5
        await msg.ack()
        metrics.CONSUMER_BATCH_SECONDS.labels(topic, self.name).observe(time.perf_counter() - started)
        _observe_lag(msg, records, self.name)

    async def process(self, records: tuple[ConsumerRecord, ...]) -> None:
        """Process a batch; returns once every record has an outcome that is durable."""
        mine = [r for r in records if self._is_mine(r)]
        await self._wait_until_due(mine)
        decoded: list[Decoded] = []
        try:
            outcome = await self._run_in_one_transaction(mine, decoded)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:  # some handler failed: find which, one event per transaction
            if len(decoded) < len(mine):
                raise  # not a handler: the batch was not even decoded (a bug here), it is rewound
            outcome = await self._run_one_by_one(self._runnable(decoded))
        poison = [d for d in decoded if d.error]
        runnable = outcome.new + outcome.duplicates + len(outcome.failed) + len(outcome.rejected)
        topic = self.topic.name
        if ignored := len(decoded) - len(poison) - runnable:
            metrics.EVENTS_CONSUMED.labels(topic, self.name, "ignored").inc(ignored)
        if runnable:
            metrics.EVENTS_CONSUMED.labels(topic, self.name, "processed").inc(outcome.new)
            metrics.EVENTS_CONSUMED.labels(topic, self.name, "duplicate").inc(outcome.duplicates)

        sends = [self._dead_letter(d, d.error or "") for d in poison]
        sends += [self._dead_letter(d, cause) for d, cause in outcome.rejected]
        for item, error in outcome.failed:
            if item.attempt < len(self.retry_delays):
                sends.append(self._retry(item, error))
            else:
                sends.append(self._dead_letter(item, error))
        if sends:
            await asyncio.gather(*sends)

    def _runnable(self, decoded: list[Decoded]) -> list[Decoded]:
        return [d for d in decoded if d.event is not None and d.event.type in self.types]

    def _is_mine(self, record: ConsumerRecord) -> bool:
        # The retry topic is shared by every consumer group of the topic.
        return not record.topic.endswith(".retry") or _header(record, H_GROUP) == self.name

    def _decode(self, record: ConsumerRecord) -> Decoded:
        headers = [(k, v) for k, v in record.headers or () if k not in OUR_HEADERS]
        try:
            return Decoded(record, event=parse(record.value, headers, self.topic.name))
        except EnvelopeError as error:
            return Decoded(record, error=str(error))

    async def _wait_until_due(self, records: list[ConsumerRecord]) -> None:
        not_before = max((float(_header(r, H_NOT_BEFORE) or 0) for r in records), default=0)
        delay = not_before - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _run_in_one_transaction(self, records: list[ConsumerRecord], decoded: list[Decoded]) -> Outcome:
        """Decode the records (into ``decoded``) and run the fresh events' handlers, in one
        transaction with their inbox claim. The ids the records' headers give are claimed while
        the records are decoded: PostgreSQL inserts them as Python parses, the batch's two
        largest costs overlapping. What decoding finds decides (see :meth:`_settle_claims`)."""
        keys = _claimable_keys(records, self.types)
        if not keys:  # nothing to claim ahead: decode first, and no transaction if nothing is to run
            decoded += [self._decode(r) for r in records]
            if not self._runnable(decoded):
                return Outcome()
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await self._claim_while_decoding(conn, keys, records, decoded) if keys else set()
            runnable = self._runnable(decoded)
            fresh = await self._settle_claims(conn, runnable, keys, claimed)
            rejected = await self._apply(conn, fresh)
        return Outcome(len(fresh) - len(rejected), len(runnable) - len(fresh), rejected=rejected)

    async def _claim_while_decoding(self, conn: asyncpg.Connection, keys: list[tuple[str, str]],
                                    records: list[ConsumerRecord], decoded: list[Decoded]) -> set[tuple[str, str]]:
        claim = asyncio.ensure_future(self._insert_keys(conn, keys))
        try:
            await asyncio.sleep(0)  # the claim is sent before the decoding starts
            decoded += [self._decode(r) for r in records]
        finally:
            claimed = await claim  # the connection is free again whatever happened
        return claimed

    async def _apply(self, conn: asyncpg.Connection, items: list[Decoded]) -> list[tuple[Decoded, str]]:
        """Run the handlers; return the events a batch handler rejected, their inbox claims given
        back (the DLQ copy is sent after the commit: a crash before it reads them again)."""
        events: list[CloudEvent[Any]] = [item.event for item in items]  # type: ignore[misc]
        if self.batch_handler is not None:
            if not events:
                return []
            by_event = {id(item.event): item for item in items}
            rejected = [(by_event[id(event)], cause) for event, cause in await self.batch_handler(conn, events) or ()]
            await self._release(conn, [item.event.dedup_key for item, _ in rejected])  # type: ignore[union-attr]
            return rejected
        for event in events:
            # Log lines and the events this handler creates carry the event's trace and tenant.
            with logs.bound(traceparent=event.traceparent, tenant=event.tenantid, event_id=event.id):
                await self.handlers[event.type](conn, event)
        return []

    async def _run_one_by_one(self, items: list[Decoded]) -> Outcome:
        outcome = Outcome()
        for item in items:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    if not await self._claim(conn, [item]):
                        outcome.duplicates += 1
                        continue
                    rejected = await self._apply(conn, [item])
                outcome.rejected += rejected
                outcome.new += 1 - len(rejected)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as error:
                log.warning("%s: %s %s failed: %r", self.name, item.event.type, item.event.id, error)  # type: ignore[union-attr]
                outcome.failed.append((item, f"{type(error).__name__}: {error}"))
        return outcome

    async def _claim(self, conn: asyncpg.Connection, items: list[Decoded]) -> list[Decoded]:
        """Record the events' ids in the inbox; return those not processed before, in order."""
        return await self._settle_claims(conn, items, [], set())

    async def _settle_claims(self, conn: asyncpg.Connection, items: list[Decoded], early: list[tuple[str, str]],
                             claimed: set[tuple[str, str]]) -> list[Decoded]:
        """The items not processed before, in order, given the ids ``early`` already tried from
        the headers (``claimed``: those that were new). The items' ids not tried yet are claimed
        now; ids claimed early whose record turned out not to be an event to run (e.g. poison,
        its id must stay free for when it comes back repaired) are given back."""
        by_key: dict[tuple[str, str], Decoded] = {}
        for item in items:
            by_key.setdefault(item.event.dedup_key, item)  # type: ignore[union-attr]
        tried = set(early)
        late = [key for key in by_key if key not in tried]
        if late:
            claimed = claimed | await self._insert_keys(conn, late)
        await self._release(conn, [key for key in claimed if key not in by_key])
        return [item for key, item in by_key.items() if key in claimed]

    async def _release(self, conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> None:
        """Give inbox claims back: those events count as never processed."""
        if keys:
            await conn.execute(
                """DELETE FROM inbox WHERE consumer = $1 AND (source, event_id) IN
                   (SELECT * FROM unnest($2::text[], $3::text[]))""",
                self.name, [k[0] for k in keys], [k[1] for k in keys])

    async def _insert_keys(self, conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Insert the (source, id) keys in the inbox; return those that were not there."""
        rows = await conn.fetch(
            """INSERT INTO inbox (consumer, source, event_id)
               SELECT $1, s, i FROM unnest($2::text[], $3::text[]) AS t(s, i)
               ON CONFLICT DO NOTHING RETURNING source, event_id""",
            self.name, [k[0] for k in keys], [k[1] for k in keys])
        return {(r["source"], r["event_id"]) for r in rows}

    async def _retry(self, item: Decoded, error: str) -> None:
        attempt = item.attempt + 1
        not_before = time.time() + self.retry_delays[attempt - 1]
        await self._send(self.topic.retry.name, item, {
            H_GROUP: self.name, H_ATTEMPT: str(attempt), H_NOT_BEFORE: f"{not_before:.3f}", H_ERROR: error[:1000],
        })
        metrics.EVENTS_CONSUMED.labels(self.topic.name, self.name, "retried").inc()

    async def _dead_letter(self, item: Decoded, cause: str) -> None:
        log.warning("%s: record %s dead-lettered: %s", self.name, _origin(item.record), cause)
        cause_, consumer, attempts, at = DLQ_HEADERS
        await self._send(self.topic.dlq.name, item, {
            cause_: cause[:2000], consumer: self.name, attempts: str(item.attempt + 1),
            at: datetime.now(UTC).isoformat(),
        })
        metrics.EVENTS_CONSUMED.labels(self.topic.name, self.name, "dead_lettered").inc()

    async def _send(self, topic: str, item: Decoded, extra: dict[str, str]) -> None:
        """Forward the record's original bytes and headers, plus ours, and wait for Kafka's ack."""
        record = item.record
        headers = [(k, v) for k, v in record.headers or () if k not in OUR_HEADERS]
        headers.append((H_ORIGIN, (_header(record, H_ORIGIN) or _origin(record)).encode()))
        headers += [(k, v.encode()) for k, v in extra.items()]
        await (await aiokafka_producer(self.broker).send(topic, value=record.value, key=record.key, headers=headers))


_KEY_HEADERS = frozenset(("ce_type", "ce_source", "ce_id"))


def _claimable_keys(records: list[ConsumerRecord], types: frozenset[str]) -> list[tuple[str, str]]:
    """The distinct (source, id) keys of the records whose CloudEvents headers (binary content
    mode) name a type we run: what their events' ``dedup_key`` will be once decoded."""
    keys: dict[tuple[str, str], None] = {}
    for record in records:
        h = {name: value for name, value in record.headers or () if name in _KEY_HEADERS}
        if len(h) == 3 and h["ce_type"].decode(errors="replace") in types:
            keys[(h["ce_source"].decode(errors="replace"), h["ce_id"].decode(errors="replace"))] = None
    return list(keys)


def _origin(record: ConsumerRecord) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


class LagOnAssignment(ConsumerRebalanceListener):
    """Publishes the lag of every partition as soon as it is assigned (the committed offset's
    distance to the end), not only once a batch arrives from it: after a restart, a partition
    with nothing new has a series (0) too, so a lag panel or alert sees 0 rather than nothing.
    A revoked partition's series is removed (another replica reports it)."""

    def __init__(self, consumer_name: str) -> None:
        self.name = consumer_name
        self.subscriber: Any = None  # set once the subscriber exists; its aiokafka consumer once started
        self._task: asyncio.Task[None] | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(tp.topic, self.name, str(tp.partition))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is not None and assigned:  # offsets are asked outside the rebalance: it never waits on them
            self._task = asyncio.create_task(self._publish(consumer, sorted(assigned)))

    async def _publish(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(partitions), 10)
            starts = await asyncio.wait_for(consumer.beginning_offsets(partitions), 10)
            for tp in partitions:
                committed = await asyncio.wait_for(consumer.committed(tp), 10)
                position = starts[tp] if committed is None else committed
                metrics.CONSUMER_LAG.labels(tp.topic, self.name, str(tp.partition)).set(max(ends[tp] - position, 0))
        except Exception as error:  # the next batch of each partition publishes it anyway
            log.warning("%s: lag of %s not published on assignment: %r", self.name, partitions, error)


def _observe_lag(msg: Any, records: tuple[ConsumerRecord, ...], consumer: str) -> None:
    last: dict[TopicPartition, int] = {}
    for r in records:
        last[TopicPartition(r.topic, r.partition)] = r.offset
    for tp, offset in last.items():
        highwater = msg.consumer.highwater(tp)
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(tp.topic, consumer, str(tp.partition)).set(max(highwater - offset - 1, 0))


async def _parse_batch(records: tuple[ConsumerRecord, ...], original: Callable[..., Awaitable[Any]]) -> Any:
    """FastStream's parser decodes every header as UTF-8 and would fail the whole batch on one
    bad header; hand it sanitised copies, and keep the original records for the DLQ."""
    message = await original(tuple(_sanitised(r) for r in records))
    message.raw_message = records
    return message


def _sanitised(record: ConsumerRecord) -> ConsumerRecord:
    try:
        for _, value in record.headers or ():
            value.decode()
        return record
    except (UnicodeDecodeError, AttributeError):
        return dataclasses.replace(record, headers=tuple(
            (k, v.decode(errors="replace").encode() if isinstance(v, bytes) else b"") for k, v in record.headers))


async def _raw_values(message: Any) -> list[bytes]:
    """Leave the values as bytes: parsing is the envelope's job, with errors to the DLQ."""
    return [r.value or b"" for r in message.raw_message]
