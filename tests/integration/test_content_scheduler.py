"""The scheduler inside the content service: publishes and retires on time, catches up after
downtime (state is in the rows, not in memory), and publishes each item once with two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import eventually, header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration

DRAFT = {"title": "Scheduled", "url": "https://acme.example/s", "language": "en",
         "share_texts": [{"network": "linkedin", "language": "en", "text": "Look!"}]}


def app(kafka_bootstrap, database_url, interval: float):
    return create_app(settings_for(ContentSettings, kafka_bootstrap, database_url, scheduler_interval_seconds=interval))


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def approved(client, tenant: str, **fields) -> str:
    item = (await client.post("/v1/contents", json={**DRAFT, **fields}, headers=token(tenant, "editor"))).json()
    await client.post(f"/v1/contents/{item['id']}/submit", headers=token(tenant, "editor"))
    answer = await client.post(f"/v1/contents/{item['id']}/approve", headers=token(tenant, "approver", subject="ap"))
    assert answer.json()["state"] == "approved", answer.text
    return item["id"]


async def schedule(client, tenant: str, content_id: str, publish_in: float, expire_in: float | None = None) -> None:
    body = {"publish_at": at(publish_in)} | ({"expire_at": at(expire_in)} if expire_in is not None else {})
    answer = await client.post(f"/v1/contents/{content_id}/schedule", json=body,
                               headers=token(tenant, "approver", subject="ap"))
    assert answer.json()["state"] == "scheduled", answer.text


async def state_of(client, tenant: str, content_id: str) -> str:
    return (await client.get(f"/v1/contents/{content_id}", headers=token(tenant, "editor"))).json()["state"]


async def test_publishes_then_retires_on_time_and_refuses_illegal_schedules(kafka_bootstrap, database_url):
    tenant = new_tenant()
    async with running(app(kafka_bootstrap, database_url, 0.2)) as client:
        content_id = await approved(client, tenant)
        draft = (await client.post("/v1/contents", json=DRAFT, headers=token(tenant, "editor"))).json()
        refused = await client.post(f"/v1/contents/{draft['id']}/schedule", json={"publish_at": at(60)},
                                    headers=token(tenant, "approver"))
        assert refused.status_code == 409 and refused.json()["detail"]["state"] == "draft"
        backwards = await client.post(f"/v1/contents/{content_id}/schedule",
                                      json={"publish_at": at(60), "expire_at": at(30)},
                                      headers=token(tenant, "approver"))
        assert backwards.status_code == 422

        await schedule(client, tenant, content_id, publish_in=0.5, expire_in=1.5)
        await eventually(lambda: _is(state_of(client, tenant, content_id), "retired"))
        trail = (await client.get(f"/v1/contents/{content_id}/audit", headers=token(tenant, "editor"))).json()
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                  lambda r: header(r, "ce_tenantid") == tenant, expect=2, settle=1.0)
    assert [(t["action"], t["actor"]) for t in trail["transitions"][-2:]] == [("publish", "scheduler"),
                                                                               ("expire", "scheduler")]
    assert [header(e, "ce_type") for e in events] == ["content.published", "content.retired"]
    assert json.loads(events[1].value)["reason"] == "expired"


async def test_catches_up_after_downtime_and_never_publishes_what_expired_meanwhile(kafka_bootstrap, database_url):
    tenant = new_tenant()
    # A first run whose scheduler ticks only at start: it does nothing, then the service stops.
    async with running(app(kafka_bootstrap, database_url, 3600)) as client:
        due = await approved(client, tenant)
        expired_meanwhile = await approved(client, tenant)
        later = await approved(client, tenant)
        await schedule(client, tenant, due, publish_in=0.3)
        await schedule(client, tenant, expired_meanwhile, publish_in=0.3, expire_in=0.6)
        await schedule(client, tenant, later, publish_in=3600)
    await asyncio.sleep(1.0)  # downtime: both due dates pass while nothing runs

    async with running(app(kafka_bootstrap, database_url, 0.2)) as client:
        await eventually(lambda: _is(state_of(client, tenant, due), "published"))
        await eventually(lambda: _is(state_of(client, tenant, expired_meanwhile), "retired"))
        assert await state_of(client, tenant, later) == "scheduled"
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                  lambda r: header(r, "ce_tenantid") == tenant, expect=1, settle=1.5)
    assert [(header(e, "ce_type"), header(e, "ce_subject")) for e in events] == [("content.published", due)]


async def test_two_replicas_publish_each_item_exactly_once(kafka_bootstrap, database_url):
    tenant = new_tenant()
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(running(app(kafka_bootstrap, database_url, 0.05)))
        await stack.enter_async_context(running(app(kafka_bootstrap, database_url, 0.05)))
        ids = [await approved(first, tenant) for _ in range(20)]
        for content_id in ids:
            await schedule(first, tenant, content_id, publish_in=1.0)

        async def all_published() -> bool:
            return all([await state_of(first, tenant, i) == "published" for i in ids])

        await eventually(all_published)
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                  lambda r: header(r, "ce_tenantid") == tenant, expect=20, settle=2.0)
        trails = [(await first.get(f"/v1/contents/{i}/audit", headers=token(tenant, "editor"))).json() for i in ids]
    assert Counter(header(e, "ce_subject") for e in events) == Counter({i: 1 for i in ids})
    assert all(sum(t["to_state"] == "published" for t in trail["transitions"]) == 1 for trail in trails)


async def test_a_charter_changed_since_approval_holds_the_scheduled_item_back(kafka_bootstrap, database_url):
    tenant = new_tenant()
    async with running(app(kafka_bootstrap, database_url, 0.2)) as client:
        content_id = await approved(client, tenant)
        await client.put("/v1/admin/charter", json={"forbidden_terms": ["look"]}, headers=token(tenant, "admin"))
        await schedule(client, tenant, content_id, publish_in=0.3)
        await eventually(lambda: _is(state_of(client, tenant, content_id), "approved"))
        trail = (await client.get(f"/v1/contents/{content_id}/audit", headers=token(tenant, "editor"))).json()
    held = trail["transitions"][-1]
    assert held["actor"] == "scheduler" and held["reason"] == "brand charter violations at publication"
    assert held["detail"]["violations"][0]["rule"] == "forbidden_terms"


async def _is(value, expected) -> bool:
    return await value == expected
