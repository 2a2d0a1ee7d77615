"""Every consumed topic fed malformed, oversized, wrong-version (unknown type) and tenant-less
events, with the four services running in-process: each bad record lands in the topic's DLQ with
its cause, once per consumer group, and no consumer stops (every group commits past them, and a
valid record behind them is processed). Then the DLQ replay command (deploy.dlq): a record
dead-lettered while its cause held is processed once replayed, and replaying it twice has one
effect (the inbox)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from deploy import dlq
from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from shared import topics
from shared.envelope import to_binary
from tests.integration.test_distribution_slice import upserted
from tests.support import eventually, header, new_tenant, read_topic, running, settings_for

pytestmark = pytest.mark.integration

# Each consumed topic and the consumer groups reading it.
CONSUMED = {
    topics.HR_EMPLOYEES.name: ["distribution"],
    topics.INTRANET_CONTENT.name: ["content"],
    topics.CONTENT_LIFECYCLE.name: ["distribution", "reporting"],
    topics.AMBASSADORS.name: ["tracking", "reporting"],
    topics.NOTIFICATIONS.name: ["tracking", "reporting"],
    topics.ENGAGEMENTS.name: ["reporting"],
}


@pytest.fixture(scope="module")
async def services(kafka_bootstrap: str, database_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    fast = {"retry_delays_seconds": [0.1]}
    async with running(content_app(settings_for(ContentSettings, kafka_bootstrap, database_url, **fast))) as c, \
            running(distribution_app(settings_for(DistributionSettings, kafka_bootstrap, database_url, **fast))) as d, \
            running(tracking_app(settings_for(TrackingSettings, kafka_bootstrap, database_url, **fast))) as t, \
            running(reporting_app(settings_for(ReportingSettings, kafka_bootstrap, database_url, **fast))) as r:
        yield {"content": c, "distribution": d, "tracking": t, "reporting": r}


def ce(tenant: str | None, event_type: str, marker: str, data: bytes) -> list[tuple[str, bytes]]:
    headers = {"ce_specversion": "1.0", "ce_id": f"{marker}-{uuid.uuid4().hex[:6]}", "ce_source": "test/dlq",
               "ce_type": event_type, "ce_time": datetime.now(UTC).isoformat(), "ce_subject": marker,
               "content-type": "application/json", "x-test-marker": marker}
    if tenant:
        headers["ce_tenantid"] = tenant
    return [(k, v.encode()) for k, v in headers.items()]


def bad_records(tenant: str, topic: str) -> dict[str, tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """kind -> (key, value, headers); the marker header names the kind, to find it in the DLQ."""
    run = uuid.uuid4().hex[:8]
    known_type = next(t for t, (tp, _) in __import__("shared.events", fromlist=["EVENT_TYPES"]).EVENT_TYPES.items()
                      if tp.name == topic)
    key = f"{tenant}/bad".encode()
    return {
        "malformed": (key, b"{not json", ce(tenant, known_type, f"malformed-{run}", b"")),
        "not a cloudevent": (key, b'{"a": 1}', [("x-test-marker", f"notce-{run}".encode())]),
        "oversized": (key, json.dumps({"blob": "x" * 600_000}).encode(),
                      ce(tenant, known_type, f"oversized-{run}", b"")),
        "unknown type": (key, b"{}", ce(tenant, "com.example.v99.unknown", f"unknowntype-{run}", b"")),
        "no tenant": (key, b"{}", ce(None, known_type, f"notenant-{run}", b"")),
        "invalid data": (key, b'{"nonsense": true}', ce(tenant, known_type, f"invalid-{run}", b"")),
    }


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


async def test_bad_records_of_every_topic_land_in_its_dlq_with_their_cause_and_nothing_stops(
        services: dict[str, httpx.AsyncClient], kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=2_000_000)
    await producer.start()
    sent: dict[str, dict[str, tuple[int, int, str]]] = {}
    try:
        for topic in CONSUMED:
            sent[topic] = {}
            for kind, (key, value, headers) in bad_records(tenant, topic).items():
                meta = await producer.send_and_wait(topic, value=value, key=key, headers=headers)
                marker = dict(headers)["x-test-marker"].decode()
                sent[topic][kind] = (meta.partition, meta.offset, marker)
        # A valid HR event behind the bad ones, on the same partition (same key): it must go through.
        valid = to_binary(upserted(tenant, "bad/ok-1", 1))
        hr = await producer.send_and_wait(topics.HR_EMPLOYEES.name, value=valid.value, key=f"{tenant}/bad".encode(),
                                          headers=[(k, v.encode()) for k, v in valid.headers.items()])
    finally:
        await producer.stop()

    for topic, groups in CONSUMED.items():
        markers = {marker for _, _, marker in sent[topic].values()}
        expected = len(markers) * len(groups)
        letters = await read_topic(kafka_bootstrap, f"{topic}.dlq", lambda r, markers=markers: header(
            r, "x-test-marker") in markers, expect=expected, timeout=60)
        seen = {(header(r, "x-test-marker"), header(r, "x-portevoix-dlq-consumer")) for r in letters}
        assert seen == {(m, g) for m in markers for g in groups}, (topic, seen)
        assert len(letters) == expected, f"{topic}: each bad record dead-lettered once per group"
        for letter in letters:
            assert header(letter, "x-portevoix-dlq-cause"), "the cause travels with the dead letter"
            assert header(letter, "x-portevoix-origin").startswith(topic + "/")
        causes = {header(r, "x-test-marker").split("-")[0]: header(r, "x-portevoix-dlq-cause") for r in letters}
        assert "not valid JSON" in causes["malformed"] and "unknown event type" in causes["unknowntype"]
        assert "tenantid" in causes["notenant"] and "not a CloudEvent" in causes["notce"]
        # No consumer stuck: every group has committed past every bad record.
        for group in groups:
            await eventually(lambda group=group, topic=topic: _past_bad_records(
                kafka_bootstrap, f"{group}.{topic}", topic, sent[topic].values()), timeout=60)

    async def employee_stored() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM distribution.employees WHERE tenant = $1 "
                                            "AND employee_id = 'bad/ok-1'", tenant))
        finally:
            await conn.close()
    await eventually(employee_stored, timeout=60)
    assert hr.offset > sent[topics.HR_EMPLOYEES.name]["malformed"][1]


async def test_a_replayed_dead_letter_is_processed_and_a_second_replay_has_no_effect(
        services: dict[str, httpx.AsyncClient], kafka_bootstrap: str, database_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    tenant = new_tenant()
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    # A valid event dead-lettered while a cause held (e.g. an outage outlasting the retries): as
    # the consumer writes it, original bytes and headers plus ours.
    record = to_binary(upserted(tenant, "replay-1", 1))
    ours = [("x-portevoix-dlq-cause", b"database unavailable"), ("x-portevoix-dlq-consumer", b"distribution"),
            ("x-portevoix-dlq-attempts", b"3"), ("x-portevoix-dlq-at", datetime.now(UTC).isoformat().encode()),
            ("x-portevoix-origin", b"hr.employees.v1/0/1")]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(f"{topics.HR_EMPLOYEES.name}.dlq", value=record.value, key=record.key,
                                     headers=[(k, v.encode()) for k, v in record.headers.items()] + ours)
    finally:
        await producer.stop()
    args = ["--topic", topics.HR_EMPLOYEES.name, "--consumer", "distribution", "--bootstrap", kafka_bootstrap]

    assert await dlq.run(dlq.parser().parse_args(["list", *args])) == 0
    assert record.headers["ce_id"] in capsys.readouterr().out
    await dlq.run(dlq.parser().parse_args(["replay", *args, "--dry-run"]))
    assert "would replay" in capsys.readouterr().out

    async def rows() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM distribution.employees WHERE tenant = $1", tenant))
        finally:
            await conn.close()
    await asyncio.sleep(0.5)
    assert await rows() == 0, "a dry run sends nothing"

    mine = [*args, "--since", since[:19]]  # only what was dead-lettered from this test on
    for _ in range(2):
        await dlq.run(dlq.parser().parse_args(["replay", *mine]))
        out = capsys.readouterr().out
        assert f"id={record.headers['ce_id']}" in out and "-> hr.employees.v1/" in out
    replayed = await read_topic(kafka_bootstrap, topics.HR_EMPLOYEES.name,
                                lambda r: header(r, "ce_id") == record.headers["ce_id"], expect=2, timeout=30)
    assert len(replayed) == 2
    assert all(not k.startswith("x-portevoix-") for r in replayed for k, _ in r.headers)
    await eventually(rows, timeout=60)
    conn = await asyncpg.connect(database_url)
    try:
        await eventually(lambda: _inbox_has(conn, record.headers["ce_id"]), timeout=30)
        assert await conn.fetchval("SELECT count(*) FROM distribution.inbox WHERE event_id = $1",
                                   record.headers["ce_id"]) == 1
        history = await conn.fetchval("SELECT count(*) FROM distribution.employee_history WHERE tenant = $1", tenant)
    finally:
        await conn.close()
    assert await rows() == 1 and history <= 1, "two replays, one effect"


async def _inbox_has(conn: asyncpg.Connection, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM distribution.inbox WHERE event_id = $1", event_id))


async def _past_bad_records(kafka_bootstrap: str, group: str, topic: str,
                            bad: Iterable[tuple[int, int, str]]) -> bool:
    """Has ``group`` committed past every bad record of ``topic``?"""
    offsets = await committed(kafka_bootstrap, group, topic)
    return all(offsets.get(p, 0) > o for p, o, _ in bad)
