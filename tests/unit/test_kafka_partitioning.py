"""The relay's keyed batches land where ``send`` would put them: our murmur2 is Kafka's (the
Java client's, and aiokafka's default partitioner's), for keys of every length and content."""

from __future__ import annotations

import os

from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.kafka import murmur2


def test_murmur2_is_kafkas_for_every_key_length() -> None:
    keys = [os.urandom(length) for length in range(80) for _ in range(20)]
    keys += [b"", b"\xff" * 7, "tenant/é".encode(), b"acme/4f1c2d3e-0000-4000-8000-000000000000"]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]
