"""The relay's keyed batches land where ``send`` would put them: our murmur2 is Kafka's (the
Java client's, and aiokafka's default partitioner's), for keys of every length and content."""

from __future__ import annotations

import os

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.kafka import KeyHashCache, murmur2, murmur2_many


def test_murmur2_is_kafkas_for_every_key_length() -> None:
    keys = [os.urandom(length) for length in range(80) for _ in range(20)]
    keys += [b"", b"\xff" * 7, "tenant/é".encode(), b"acme/4f1c2d3e-0000-4000-8000-000000000000"]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]


def test_murmur2_of_many_keys_at_once_is_kafkas_for_each() -> None:
    """Keys of one length are hashed together in 64-bit lanes: no lane may spill into another,
    whatever the bytes (all-ones keys give the largest intermediate values)."""
    keys = [os.urandom(length) for length in range(80) for _ in range(20)]
    keys += [b"\xff" * length for length in range(40) for _ in range(10)]
    keys += [b"", b"a", "tenant/é".encode()]  # lengths with fewer than 8 keys: one by one
    mixed = keys[::7] + keys  # lengths interleaved: each key's hash at its own place
    assert murmur2_many(mixed) == [aiokafka_murmur2(k) for k in mixed]


def test_the_partitions_of_many_keys_are_those_of_the_default_partitioner() -> None:
    partitions = list(range(6))
    keys = [os.urandom(36) for _ in range(500)] + [b"", b"acme/x"]
    cache = KeyHashCache(max_keys=300)  # the cache refills past its size: same answers
    assert cache.partitions(keys, partitions, partitions) == cache.partitions(keys, partitions, partitions)
    assert cache.partitions(keys[:400], partitions, partitions) == [
        DefaultPartitioner()(k, partitions, partitions) for k in keys[:400]]
    assert cache.partitions([None], partitions, partitions)[0] in partitions  # no key: any partition
