"""Kafka connection: one FastStream broker per service, its producer safe by default
(``acks=all``, idempotent), and direct publishing for HTTP ingestion (2xx only once Kafka has
acknowledged; a broker that does not answer in time is reported as unavailable)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, OutOfOrderSequenceNumber
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared import metrics
from shared.envelope import CloudEvent, KafkaRecord, to_binary
from shared.settings import ServiceSettings
from shared.topics import Topic

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge in time: answer 503 with Retry-After (the client retries)."""


def create_broker(settings: ServiceSettings, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=256 * 1024,
        compression_type=settings.kafka_compression_type,
        partitioner=KeyHashCache(),
        request_timeout_ms=int(settings.kafka_send_timeout_seconds * 1000) + 1000,
        security=kafka_security(settings),
        # FastStream logs every message at this level: keep it below the service's INFO.
        log_level=logging.DEBUG,
    )


SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The client side of the settings' security protocol: TLS (against ``kafka_ssl_cafile`` or the
    system's CAs) and/or SASL with this service's user; None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise ValueError(f"PORTEVOIX_KAFKA_SECURITY_PROTOCOL={protocol} needs PORTEVOIX_KAFKA_SASL_USERNAME and "
                         "PORTEVOIX_KAFKA_SASL_PASSWORD")
    return SASL[settings.kafka_sasl_mechanism](settings.kafka_sasl_username,
                                               settings.kafka_sasl_password.get_secret_value(),
                                               ssl_context=context, use_ssl=context is not None)


class KeyHashCache:
    """aiokafka's default partitioner (murmur2 of the key, as the Java client: the same
    partition for the same key), with our faster :func:`murmur2` and the hash of the keys seen
    lately remembered. Our keys repeat (one entity's events share one) and aiokafka's pure-Python
    murmur2 cost more per record than the rest of the producer's own work (profile in
    bench/results/tracking.md)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self.hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)
        hashed = self.hashes.get(key)
        if hashed is None:
            if len(self.hashes) >= self.max_keys:
                self.hashes.clear()  # simpler than an LRU; refilled at one murmur2 per key
            hashed = self.hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]

    def partitions(self, keys: Sequence[bytes | None], all_partitions: list[int], available: list[int]) -> list[int]:
        """The partition of each key, as calls one by one would pick them; the keys not seen
        lately are hashed together (:func:`murmur2_many`)."""
        unknown = [key for key in keys if key is not None and key not in self.hashes]
        if len(self.hashes) + len(unknown) > self.max_keys:
            self.hashes.clear()  # as one by one: simpler than an LRU
            unknown = [key for key in keys if key is not None]
        self.hashes.update(zip(unknown, (h & 0x7FFFFFFF for h in murmur2_many(unknown)), strict=True))
        count = len(all_partitions)
        return [self(key, all_partitions, available) if key is None else all_partitions[self.hashes[key] % count]
                for key in keys]


def declare_publishers(broker: KafkaBroker, topics: Iterable[Topic], models: dict[str, Any]) -> dict[str, Any]:
    """One publisher object per produced topic: they document the topic in AsyncAPI."""
    return {
        topic.name: broker.publisher(topic.name, title=topic.name, description=topic.description,
                                     schema=models.get(topic.name))
        for topic in topics
    }


def aiokafka_producer(broker: KafkaBroker) -> AIOKafkaProducer:
    """The broker's underlying aiokafka producer, for pipelined sends of raw bytes and headers
    (FastStream's publish awaits each message and would re-encode headers as text)."""
    return broker.config.producer._producer.producer  # type: ignore[attr-defined]


async def recover_from(broker: KafkaBroker, error: BaseException) -> None:
    """Replace the broker's producer after a failed send if it cannot recover by itself.

    aiokafka's idempotent producer stays out of sequence after ``OutOfOrderSequenceNumber``,
    which a broker restart can cause (aio-libs/aiokafka#1017): every later batch to that
    partition fails the same way, and on some paths its sender task ends for good, until the
    process restarts. A new producer gets a new producer id and starts again from sequence 0 (a
    record sent twice meanwhile keeps its CloudEvents id: consumers dedup it)."""
    async with broker.__dict__.setdefault("_portevoix_recovery", asyncio.Lock()):
        current = aiokafka_producer(broker)
        sender = current._sender.sender_task
        dead = sender is not None and sender.done()
        if not dead and not isinstance(error, OutOfOrderSequenceNumber):
            return
        log.warning("Kafka producer unusable (%r): starting a new one", error)
        fresh = AIOKafkaProducer(**broker._connection_kwargs)  # the same settings as the broker's own
        wrapper = broker.config.producer
        try:
            await asyncio.wait_for(wrapper.connect(  # type: ignore[attr-defined]
                fresh, serializer=wrapper.serializer, codec=wrapper.codec), 10)  # type: ignore[attr-defined]
        except (TimeoutError, OSError, KafkaError) as failure:
            log.warning("Kafka producer could not be replaced yet: %r", failure)
            with contextlib.suppress(Exception):
                await fresh.stop()
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(current.stop(), 10)


Headers = list[tuple[str, bytes]]
_M = 0x5BD1E995  # murmur2's mixing constant


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 of a record key (what the Java client and aiokafka's default partitioner
    compute), a few times faster than aiokafka's byte-by-byte version: the 4-byte words are
    read in one call. A keyed produce spends much of its time here."""
    length = len(key)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", key):
        k = (k * _M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    tail = length & 3
    if tail:
        end = length & ~3
        if tail == 3:
            h ^= key[end + 2] << 16
        if tail >= 2:
            h ^= key[end + 1] << 8
        h = ((h ^ key[end]) * _M) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """:func:`murmur2` of many keys, computed for all the keys of one length together: each key
    is a 64-bit lane of one big integer, and murmur2's 32-bit steps (multiply, shift, xor, each
    lane masked to 32 bits before the next multiply, so that no lane spills into the next) run
    once for all the lanes. Several times faster than one :func:`murmur2` per key for the
    hundreds of keys of a produce batch; the unit tests compare it with aiokafka's murmur2."""
    hashes = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for n, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(n)
    for length, indexes in by_length.items():
        group = [keys[n] for n in indexes]
        computed = _murmur2_lanes(group, length) if len(group) >= 8 else [murmur2(key) for key in group]
        for n, hashed in zip(indexes, computed, strict=True):
            hashes[n] = hashed
    return hashes


def _murmur2_lanes(keys: list[bytes], length: int) -> list[int]:
    count = len(keys)
    data = b"".join(keys)  # key n's byte i is at n * length + i

    def lanes(offset: int, width: int) -> int:
        """The ``width`` bytes at ``offset`` of every key (little-endian), one per 64-bit lane."""
        packed = bytearray(8 * count)
        for i in range(width):
            packed[i::8] = data[offset + i::length]
        return int.from_bytes(packed, "little")

    mask = int.from_bytes(b"\xff\xff\xff\xff\0\0\0\0" * count, "little")
    h = (0x9747B28C ^ length) * int.from_bytes(b"\1\0\0\0\0\0\0\0" * count, "little")
    for offset in range(0, length & ~3, 4):
        k = (lanes(offset, 4) * _M) & mask
        k = (((k ^ (k >> 24)) & mask) * _M) & mask
        h = ((h * _M) & mask) ^ k
    tail, end = length & 3, length & ~3
    if tail == 3:
        h ^= lanes(end + 2, 1) << 16
    if tail >= 2:
        h ^= lanes(end + 1, 1) << 8
    if tail:
        h = ((h ^ lanes(end, 1)) * _M) & mask
    h = (((h ^ (h >> 13)) & mask) * _M) & mask
    h = (h ^ (h >> 15)) & mask
    return list(struct.unpack(f"<{count}Q", h.to_bytes(8 * count, "little")))


async def send_keyed(producer: AIOKafkaProducer, topic: str,
                     records: Sequence[tuple[bytes, bytes, Headers]]) -> list[asyncio.Future[Any]]:
    """Queue (key, value, headers) records on the partitions their keys pick, as ``send`` would,
    but a whole batch at a time (``send`` costs a future and an accumulator round per record);
    return the batches' futures (each resolves when Kafka acknowledged its batch).

    Order is kept: each partition's records go in the given order, in batches queued in order,
    and the idempotent producer keeps one request per broker in flight."""
    return await queue_batches(producer, topic, await keyed_batches(producer, topic, records))


KeyedBatches = list[tuple[int, Any]]  # (partition, aiokafka BatchBuilder), in queueing order


async def keyed_batches(producer: AIOKafkaProducer, topic: str,
                        records: Sequence[tuple[bytes, bytes, Headers]]) -> KeyedBatches:
    """The batches :func:`send_keyed` queues, built but not queued yet (a caller may build the
    next ones while Kafka acknowledges the previous ones, and queue them only then)."""
    await producer.partitions_for(topic)  # the metadata, fetched once
    partitions = list(producer.client.cluster.partitions_for_topic(topic))  # as ``send`` lists them
    available = list(producer.client.cluster.available_partitions_for_topic(topic))
    partitioner = producer._partitioner  # the producer's own (the broker's: KeyHashCache, all keys at once)
    if isinstance(partitioner, KeyHashCache):
        chosen = partitioner.partitions([record[0] for record in records], partitions, available)
    else:
        chosen = [partitioner(record[0], partitions, available) for record in records]
    by_partition: dict[int, list[tuple[bytes, bytes, Headers]]] = {}
    for partition, record in zip(chosen, records, strict=True):
        by_partition.setdefault(partition, []).append(record)
    batches: KeyedBatches = []
    for partition, queued in by_partition.items():
        batch = producer.create_batch()
        for key, value, headers in queued:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                batches.append((partition, batch))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise MessageSizeTooLargeError(f"a record of {len(value)} bytes exceeds the batch size")
        batches.append((partition, batch))
    return batches


async def queue_batches(producer: AIOKafkaProducer, topic: str, batches: KeyedBatches) -> list[asyncio.Future[Any]]:
    """Hand built batches to the producer in their order; return their futures (acks)."""
    return [await producer.send_batch(batch, topic, partition=partition) for partition, batch in batches]


async def send_records(broker: KafkaBroker, topic: str, records: Iterable[KafkaRecord]) -> int:
    """Send records pipelined (not one await each) and wait until Kafka acknowledged them all."""
    producer = aiokafka_producer(broker)
    futures = [
        await producer.send(topic, value=r.value, key=r.key, headers=[(k, v.encode()) for k, v in r.headers.items()])
        for r in records
    ]
    await acknowledged(futures)
    metrics.EVENTS_PRODUCED.labels(topic).inc(len(futures))
    return len(futures)


async def acknowledged(futures: list[asyncio.Future[Any]]) -> None:
    """Wait until Kafka acknowledged every send or batch of ``futures``; raise the first failure."""
    try:
        for future in futures:  # in order: each wait ends with a whole produce batch, not one record (gather)
            await future
    except BaseException:
        for future in futures:  # the others' failures are this one's: not worth a log line each
            future.add_done_callback(_retrieve_exception)
        raise


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def publish_now(broker: KafkaBroker, topic: Topic, events: Iterable[CloudEvent[Any]], *,
                      key: bytes | None = None, timeout: float = 5.0) -> int:
    """Publish events and wait for Kafka's acknowledgement, or raise :class:`KafkaUnavailable`
    (the records may still be delivered later from the producer's buffer: consumers dedup by id)."""
    return await publish_records(broker, topic, [to_binary(e, key) for e in events], timeout=timeout)


async def publish_records(broker: KafkaBroker, topic: Topic, records: list[KafkaRecord], *,
                          timeout: float = 5.0) -> int:
    """:func:`publish_now` for records already built (e.g. by ``envelope.binary_record``)."""
    try:
        return await asyncio.wait_for(send_records(broker, topic.name, records), timeout)
    except (TimeoutError, OSError, KafkaError) as error:
        await recover_from(broker, error)
        raise KafkaUnavailable(f"Kafka did not acknowledge within {timeout:.0f}s: {error!r}") from error
