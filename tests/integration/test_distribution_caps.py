"""Fatigue caps under concurrency, against the real broker and database, with two replicas of
distribution running at once (each with several fan-out pages in flight and its own delivery
worker): six contents published together, as the scheduler does when several fall due, give
each ambassador exactly his daily cap (or the weekly budget) of ``notification.sent`` and defer
the rest; when the budget frees, the deferred alerts that the two replicas' delivery workers race
to send still stop at the cap. Counted on the events in Kafka, and in the SMTP server's mailbox."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller

from services.distribution.main import DistributionSettings, create_app
from shared.topics import CONTENT_LIFECYCLE, NOTIFICATIONS
from tests.integration.test_distribution_delivery import (
    Mailbox,
    content_event,
    free_port,
    hire_and_enrol,
    record_of,
)
from tests.support import header, new_tenant, produce, read_topic, running, settings_for

pytestmark = pytest.mark.integration
CONTENTS = 6
ALERTS_PER_WEEK = 3


@dataclass
class Replicas:
    client: httpx.AsyncClient  # the first replica's API (both share the database and the consumer groups)
    mailbox: Mailbox


@pytest.fixture(scope="module")
async def replicas(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Replicas]:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    # One slice per content and small pages: the pages in flight at once are pages of different
    # contents over the same ambassadors, the case where the caps used to break.
    settings = settings_for(
        DistributionSettings, kafka_bootstrap, database_url, smtp_port=smtp.port, alerts_per_week=ALERTS_PER_WEEK,
        fanout_slices=1, fanout_page_size=3, fanout_concurrency=3, fanout_poll_interval_seconds=0.05,
        delivery_poll_interval_seconds=0.05, delivery_timeout_seconds=10.0)
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(running(create_app(settings)))
            await stack.enter_async_context(running(create_app(settings)))
            yield Replicas(client, mailbox)
    finally:
        smtp.stop()


async def publish_at_once(kafka: str, tenant: str) -> list[str]:
    contents = [str(uuid.uuid4()) for _ in range(CONTENTS)]
    await produce(kafka, CONTENT_LIFECYCLE.name, [record_of(content_event(tenant, c)) for c in contents])
    return contents


async def outcomes(kafka: str, tenant: str, expect: int, settle: float = 3.0) -> dict[str, Counter[str]]:
    """Per ambassador, how many events of each type (sent, deferred) the tenant has in Kafka."""
    records = await read_topic(kafka, NOTIFICATIONS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=expect, settle=settle, timeout=60)
    found: dict[str, Counter[str]] = {}
    for record in records:
        data = json.loads(record.value)
        kind = str(header(record, "ce_type"))
        found.setdefault(data["ambassador_id"], Counter())[kind if kind == "notification.sent" else
                                                           f"{kind}:{data['reason']}"] += 1
    return found


async def statuses(database_url: str, tenant: str) -> Counter[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT status FROM distribution.notifications WHERE tenant = $1", tenant)
    finally:
        await conn.close()
    return Counter(r["status"] for r in rows)


async def test_six_contents_at_once_give_each_ambassador_his_daily_cap_across_two_replicas(
        replicas: Replicas, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    capped = {"max_per_day": 2}
    people = {f"feed{n}": capped for n in range(8)} | {f"mail{n}": {**capped, "channels": ["email"]} for n in range(8)}
    ids = await hire_and_enrol(replicas, kafka_bootstrap, tenant, people)

    await publish_at_once(kafka_bootstrap, tenant)
    found = await outcomes(kafka_bootstrap, tenant, expect=len(ids) * CONTENTS)
    expected = Counter({"notification.sent": 2, "notification.deferred:daily_cap": CONTENTS - 2})
    assert {employee: found.get(a) for employee, a in ids.items()} == {employee: expected for employee in ids}
    assert all(len(replicas.mailbox.to(f"mail{n}@acme.example")) == 2 for n in range(8))

    # A day later (the alerts sent are moved back 25 hours): the daily cap frees two slots, the
    # weekly budget (3) only one. Both replicas' delivery workers now race for the deferred alerts.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("""UPDATE distribution.notifications SET sent_at = sent_at - interval '25 hours',
                                     budget_at = budget_at - interval '25 hours'
                              WHERE tenant = $1 AND status = 'sent'""", tenant)
        await conn.execute("UPDATE distribution.deliveries SET due_at = now() WHERE tenant = $1 AND status = 'pending'",
                           tenant)
    finally:
        await conn.close()
    found = await outcomes(kafka_bootstrap, tenant, expect=len(ids) * (CONTENTS + 1))
    expected = Counter({"notification.sent": ALERTS_PER_WEEK, "notification.deferred:daily_cap": CONTENTS - 2})
    assert {employee: found.get(a) for employee, a in ids.items()} == {employee: expected for employee in ids}
    assert all(len(replicas.mailbox.to(f"mail{n}@acme.example")) == ALERTS_PER_WEEK for n in range(8))
    assert await statuses(database_url, tenant) == Counter({"sent": len(ids) * ALERTS_PER_WEEK,
                                                           "deferred": len(ids) * (CONTENTS - ALERTS_PER_WEEK)})


async def test_six_contents_at_once_stop_at_the_weekly_budget_across_two_replicas(
        replicas: Replicas, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    people = {f"feed{n}": {} for n in range(8)} | {f"weekly{n}": {"channels": ["email"]} for n in range(8)}
    ids = await hire_and_enrol(replicas, kafka_bootstrap, tenant, people)

    await publish_at_once(kafka_bootstrap, tenant)
    found = await outcomes(kafka_bootstrap, tenant, expect=len(ids) * CONTENTS)
    expected = Counter({"notification.sent": ALERTS_PER_WEEK,
                        "notification.deferred:weekly_budget": CONTENTS - ALERTS_PER_WEEK})
    assert {employee: found.get(a) for employee, a in ids.items()} == {employee: expected for employee in ids}
    assert all(len(replicas.mailbox.to(f"weekly{n}@acme.example")) == ALERTS_PER_WEEK for n in range(8))
