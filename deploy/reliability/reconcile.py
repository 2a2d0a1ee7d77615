"""Reconciliation from outside: plain Kafka (a consumer without a group, from the beginning;
the admin client for committed offsets), plain PostgreSQL (asyncpg) and the public KPI API,
compared with the ledger of accepted inputs.

Counted per phase (the phase an input was accepted in; clicks by the phase's own link codes):
- lost: an accepted input with no event in Kafka (HR event by ce_id, content.published by
  content id, ambassador.enrolled by ambassador id, webhook events by their ids, clicks: fewer
  click events for a link code than clicks accepted on it);
- duplicated: an accepted input in Kafka more than once (the same ce_id twice, or two events
  for one content/ambassador, or more click events for a code than clicks sent), and a
  notification accepted twice by the webhook receiver or the SMTP server (by webhook-id /
  Message-ID).
Checked as a whole: each KPI equals what the accepted inputs imply, consumer lag 0 on every
group of every service, every outbox empty, no delivery pending or failed, and each receiver
got exactly the deliveries distribution recorded as done.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.reliability.load import KPI_OF_KIND, Ledger, headers_of
from deploy.reliability.receivers import SmtpReceiver, WebhookReceiver
from shared import topics

CONSUMED = {  # service → the topics it consumes (groups "<service>.<topic>" and "<service>.<topic>.retry")
    "content": [topics.INTRANET_CONTENT],
    "distribution": [topics.HR_EMPLOYEES, topics.CONTENT_LIFECYCLE],
    "tracking": [topics.NOTIFICATIONS],
    "reporting": [topics.CONTENT_LIFECYCLE, topics.AMBASSADORS, topics.NOTIFICATIONS, topics.ENGAGEMENTS],
}
READ = [topics.HR_EMPLOYEES, topics.CONTENT_LIFECYCLE, topics.AMBASSADORS, topics.NOTIFICATIONS, topics.ENGAGEMENTS]
SCHEMAS = ("content", "distribution", "tracking", "reporting")


@dataclass
class KafkaView:
    """What Kafka holds of one tenant."""

    ids: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # topic → ce_id → copies
    published: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # content id → ce_ids
    enrolled: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # ambassador id → ce_ids
    clicks: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # link code → ce_ids
    employees: set[str] = field(default_factory=set)
    notifications: set[str] = field(default_factory=set)  # notification.sent ce_ids


@dataclass
class Verdict:
    lost: Counter[str] = field(default_factory=Counter)  # phase → inputs
    duplicated: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # what is not (yet) as it must be
    kafka_copies: dict[str, int] = field(default_factory=dict)  # topic → extra records with an id seen before

    @property
    def ok(self) -> bool:
        return not self.problems and not sum(self.lost.values()) and not sum(self.duplicated.values())


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


async def read_kafka(bootstrap: str, tenant: str) -> KafkaView:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    view = KafkaView()
    try:
        partitions = [TopicPartition(t.name, p) for t in READ for p in sorted(consumer.partitions_for_topic(t.name) or
                                                                              await _partitions(consumer, t.name))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp] and _header(record, "ce_tenantid") == tenant:
                        _note(view, record)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return view


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - the public API has no other way
    return consumer.partitions_for_topic(topic) or set()


def _note(view: KafkaView, record: Any) -> None:
    event_id, event_type, subject = _header(record, "ce_id"), _header(record, "ce_type"), _header(record, "ce_subject")
    if event_id is None:  # structured mode: attributes in the value
        envelope = json.loads(record.value)
        event_id, event_type, subject = envelope.get("id"), envelope.get("type"), envelope.get("subject")
    assert event_id is not None
    view.ids[record.topic][event_id] += 1
    if event_type == "hr.employee.upserted":
        view.employees.add(subject or "")
    elif event_type == "content.published":
        view.published[subject or ""].add(event_id)
    elif event_type == "ambassador.enrolled":
        view.enrolled[subject or ""].add(event_id)
    elif event_type == "notification.sent":
        view.notifications.add(event_id)
    elif event_type == "engagement.recorded":
        data = json.loads(record.value)
        if data.get("kind") == "click":
            view.clicks[data.get("link_code") or ""].add(event_id)


def judge_inputs(ledger: Ledger, view: KafkaView, verdict: Verdict) -> None:
    """Each accepted input in Kafka exactly once."""
    def once(phase: str, copies: int, uncertain: bool = False) -> None:
        if copies == 0 and not uncertain:
            verdict.lost[phase] += 1
        elif copies > 1:
            verdict.duplicated[phase] += copies - 1

    hr = view.ids[topics.HR_EMPLOYEES.name]
    for event_id, phase in ledger.hr.items():
        once(phase, hr[event_id])
    for event_id in ledger.hr_uncertain:
        once(ledger.phase, hr[event_id], uncertain=True)
    lifecycle = view.ids[topics.CONTENT_LIFECYCLE.name]
    for content_id, phase in ledger.contents.items():
        once(phase, sum(lifecycle[i] for i in view.published.get(content_id, ())))
    ambassadors = view.ids[topics.AMBASSADORS.name]
    for ambassador_id, phase in ledger.enrolled.items():
        once(phase, sum(ambassadors[i] for i in view.enrolled.get(ambassador_id, ())))
    engagements = view.ids[topics.ENGAGEMENTS.name]
    for event_id, (phase, _, _) in ledger.webhook_events.items():
        once(phase, engagements[event_id])
    for code, phase in ledger.code_phase.items():
        ids = view.clicks.get(code, set())
        copies = sum(engagements[i] for i in ids)
        accepted, uncertain = ledger.clicks[code], ledger.clicks_uncertain[code]
        verdict.lost[phase] += max(0, accepted - len(ids))
        verdict.duplicated[phase] += max(0, len(ids) - accepted - uncertain) + (copies - len(ids))
    verdict.kafka_copies = {topic: copies for topic, ids in view.ids.items()
                            if (copies := sum(n - 1 for n in ids.values() if n > 1))}


async def judge_kpis(ledger: Ledger, view: KafkaView, reporting: httpx.AsyncClient, distribution: httpx.AsyncClient,
                     tenant: str, verdict: Verdict) -> dict[str, Any]:
    """The tenant's KPIs against the inputs; the directory's headcount against the HR events."""
    answer = await reporting.get("/v1/kpis", headers=headers_of(tenant, "rel-analyst", "analyst"))
    if answer.status_code != 200:
        verdict.problems.append(f"KPI API answered {answer.status_code}")
        return {}
    kpis = answer.json()["kpis"]
    expected: dict[str, int] = Counter()
    for _, kind, count in ledger.webhook_events.values():
        expected[KPI_OF_KIND[kind]] += count
    expected["contents_published"] = len(ledger.contents)
    expected["enrolled_ambassadors"] = len(ledger.enrolled)
    expected["clicks_total"] = sum(len(ids) for code, ids in view.clicks.items() if code in ledger.code_phase)
    expected["notifications_sent"] = len(view.notifications)
    for name, value in expected.items():
        if kpis.get(name, 0) != value:
            verdict.problems.append(f"KPI {name} = {kpis.get(name, 0)}, inputs imply {value}")
    low, high = sum(ledger.clicks.values()), sum(ledger.clicks.values()) + sum(ledger.clicks_uncertain.values())
    if not low <= expected["clicks_total"] <= high:
        verdict.problems.append(f"click events {expected['clicks_total']} outside the accepted range [{low}, {high}]")
    counted = await distribution.get("/v1/directory/headcount", params={"at": datetime.now(UTC).isoformat()},
                                     headers=headers_of(tenant, "rel-admin", "admin"))
    if counted.status_code != 200:
        verdict.problems.append(f"headcount answered {counted.status_code}")
    elif counted.json()["headcount"] != len(view.employees):
        verdict.problems.append(f"headcount {counted.json()['headcount']}, HR events imply {len(view.employees)}")
    return {name: kpis.get(name, 0) for name in expected}


async def judge_lag(bootstrap: str, verdict: Verdict) -> int:
    """Committed offset = end offset on every partition of every group of every service."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    total = 0
    try:
        for service, consumed in CONSUMED.items():
            for topic in consumed:
                for name in (topic.name, topic.retry.name):
                    group = f"{service}.{name}"
                    parts = [TopicPartition(name, p) for p in sorted(await _partitions(consumer, name))]
                    ends = await consumer.end_offsets(parts)
                    committed = await admin.list_consumer_group_offsets(group, partitions=parts)
                    lag = sum(ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in parts)
                    if lag:
                        verdict.problems.append(f"group {group}: lag {lag}")
                    total += lag
    finally:
        await consumer.stop()
        await admin.close()
    return total


async def judge_database(database: str, tenant: str, webhooks: WebhookReceiver, smtp: SmtpReceiver,
                         verdict: Verdict) -> dict[str, int]:
    """Outboxes drained, deliveries all done, each receiver holding exactly what was done."""
    conn = await asyncpg.connect(database)
    try:
        for schema in SCHEMAS:
            exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox")
            waiting = await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox') if exists else 0
            if waiting:
                verdict.problems.append(f"{schema} outbox: {waiting} events not published")
        failed_sends = await conn.fetchval("SELECT count(*) FROM distribution.delivery_attempts WHERE tenant = $1",
                                           tenant)
        rows = await conn.fetch("SELECT channel, status, count(*) AS n FROM distribution.deliveries "
                                "WHERE tenant = $1 GROUP BY channel, status", tenant)
    finally:
        await conn.close()
    deliveries = {f"{r['channel']}:{r['status']}": int(r["n"]) for r in rows}
    deliveries["failed_sends"] = int(failed_sends)  # attempts that failed, then retried
    for key, n in deliveries.items():
        if ":" in key and not key.endswith(":done"):
            verdict.problems.append(f"deliveries {key}: {n}")
    for channel, received in (("webhook", len(webhooks.accepted)), ("email", smtp.distinct())):
        done = deliveries.get(f"{channel}:done", 0)
        if received != done:
            verdict.problems.append(f"{channel}: {done} deliveries done, {received} distinct received")
    return deliveries


async def reconcile(ledger: Ledger, bootstrap: str, database: str, reporting: httpx.AsyncClient,
                    distribution: httpx.AsyncClient, tenant: str, webhooks: WebhookReceiver,
                    smtp: SmtpReceiver) -> tuple[Verdict, dict[str, Any]]:
    verdict = Verdict()
    view = await read_kafka(bootstrap, tenant)
    judge_inputs(ledger, view, verdict)
    details: dict[str, Any] = {"kpis": await judge_kpis(ledger, view, reporting, distribution, tenant, verdict)}
    details["lag"] = await judge_lag(bootstrap, verdict)
    details["deliveries"] = await judge_database(database, tenant, webhooks, smtp, verdict)
    details["notification_duplicates"] = webhooks.duplicates() + smtp.duplicates()
    details["kafka_same_id_copies"] = verdict.kafka_copies
    return verdict, details


async def until_reconciled(timeout: float, check: Any, interval: float = 2.0) -> tuple[Verdict, dict[str, Any], bool]:
    """``check()`` until everything that can still converge has (lost inputs may be on their way,
    lag draining); a duplicate never goes away, so it does not hold the wait."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            verdict, details = await check()
        except Exception as error:  # noqa: BLE001 - a service or client still recovering: look again
            verdict, details = Verdict(problems=[f"reconciliation could not run: {error!r}"]), {}
        converged = not verdict.problems and not sum(verdict.lost.values())
        if converged or time.monotonic() > deadline:
            return verdict, details, converged
        await asyncio.sleep(interval)
