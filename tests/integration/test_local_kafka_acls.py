"""Least privilege on Kafka, proven on a local broker in the switchable SASL mode
(PORTEVOIX_LOCAL_KAFKA_SASL=1: SCRAM users made at format time, the KRaft StandardAuthorizer, the
Helm chart's ACLs from files/registry.yaml). This module starts its own broker on free ports: the
suite's shared broker stays plaintext (its test clients do not authenticate yet)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from deploy.local import kafka, kafka_security
from deploy.local.common import cache_dir
from shared.kafka import create_broker
from shared.settings import ServiceSettings
from shared.topics import all_topics

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mock.patch.dict(os.environ, {"PORTEVOIX_LOCAL_KAFKA_SASL": "1"}):
        cfg = kafka.KafkaConfig(port=free_port(), controller_port=free_port(), heap="-Xms128m -Xmx384m",
                                state_dir=Path(tmp_path_factory.mktemp("sasl")) / "kafka", cache_root=cache_dir())
        try:
            bootstrap = kafka.up(cfg, timeout=240)
            kafka.ensure_topics(bootstrap, all_topics())
            yield bootstrap
        finally:
            kafka.down(cfg, quiet=True)


async def send(bootstrap: str, user: str, topic: str, password: str | None = None) -> None:
    settings = {**kafka_security.client_settings(user), "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": kafka_security.MECHANISM, "sasl_plain_username": user,
                "sasl_plain_password": password or kafka_security.password(user)}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000, **settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"t/1")
    finally:
        await producer.stop()


async def test_a_service_writes_its_topics_and_is_refused_anothers(sasl_kafka):
    await send(sasl_kafka, "tracking", "tracking.engagements.v1")
    with pytest.raises(TopicAuthorizationFailedError):
        await send(sasl_kafka, "tracking", "content.lifecycle.v1")


async def test_an_hr_producer_writes_hr_employees_and_nothing_else(sasl_kafka):
    await send(sasl_kafka, "hr-producer", "hr.employees.v1")
    for other in ("content.lifecycle.v1", "ambassadors.v1", "hr.employees.v1.dlq"):
        with pytest.raises(TopicAuthorizationFailedError):
            await send(sasl_kafka, "hr-producer", other)


async def test_a_wrong_password_is_refused(sasl_kafka):
    with pytest.raises(KafkaError):
        await send(sasl_kafka, "tracking", "tracking.engagements.v1", password="guessed")


@pytest.mark.parametrize("service", ["web", "content"])
async def test_services_connect_with_their_own_credentials_from_the_settings(sasl_kafka, service):
    """The settings the Helm chart sets (PORTEVOIX_KAFKA_SECURITY_PROTOCOL, _SASL_*): the broker's
    idempotent producer gets its producer id (the web front writes no topic: IdempotentWrite)."""
    settings = ServiceSettings(kafka_bootstrap_servers=sasl_kafka, kafka_security_protocol="SASL_PLAINTEXT",
                               kafka_sasl_username=service, kafka_sasl_password=kafka_security.password(service))
    broker = create_broker(settings, client_id=f"portevoix-{service}")
    await broker.connect()
    try:
        assert await broker.ping(timeout=5)
        if service == "content":
            await broker.publish(b"{}", "content.lifecycle.v1", key=b"t/1")
    finally:
        await broker.stop()
