"""The whole chain on the real broker and database, the four services running together:
content → content.lifecycle.v1 → distribution → distribution.notifications.v1 → tracking →
tracking.engagements.v1 → reporting, counted exactly once even when a message is delivered twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from shared import metrics, topics
from shared.envelope import new_event, to_binary
from shared.events import EmployeeUpserted
from tests.support import (
    eventually,
    header,
    new_tenant,
    produce,
    promtool_problems,
    read_topic,
    running,
    settings_for,
    token,
)

pytestmark = pytest.mark.integration
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}


def employee(tenant: str, employee_id: str, subsidiary: str):
    event = new_event("hr.employee.upserted", source="hr/test", subject=employee_id, tenant=tenant,
                      data=EmployeeUpserted(employee_id=employee_id, email=f"{employee_id}@acme.example",
                                            given_name="Ann", family_name="Lee", subsidiary=subsidiary,
                                            department="Sales", site="HQ", country="FR", language="fr-FR",
                                            effective_at=datetime.now(UTC), version=1))
    record = to_binary(event)
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]


def duplicates_seen_by_reporting() -> float:
    return metrics.EVENTS_CONSUMED.labels(topics.ENGAGEMENTS.name, "reporting", "duplicate")._value.get()


async def test_published_content_reaches_the_right_ambassadors_and_each_click_counts_once(
        kafka_bootstrap, database_url):
    tenant = new_tenant()
    s = lambda cls: settings_for(cls, kafka_bootstrap, database_url)  # noqa: E731
    async with contextlib.AsyncExitStack() as stack:
        content = await stack.enter_async_context(running(content_app(s(ContentSettings))))
        distribution = await stack.enter_async_context(running(distribution_app(s(DistributionSettings))))
        tracking = await stack.enter_async_context(running(tracking_app(s(TrackingSettings))))
        reporting = await stack.enter_async_context(running(reporting_app(s(ReportingSettings))))

        await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [
            employee(tenant, "E1", "SUB-A"), employee(tenant, "E2", "SUB-A"), employee(tenant, "E3", "SUB-B")])

        async def enrolled(employee_id: str) -> bool:
            r = await distribution.post("/v1/me/enrolment", headers=token(tenant, "employee", subject=employee_id),
                                        json={"consent_text_version": "v1", "networks": {"linkedin": 800}})
            return r.status_code in (200, 201)

        for employee_id in ("E1", "E3"):  # E2 does not volunteer
            await eventually(lambda e=employee_id: enrolled(e))

        draft = {"title": "Plant news", "url": "https://acme.example/plant?lang=fr", "language": "fr",
                 "audience": {"subsidiaries": ["SUB-A"]},
                 "share_texts": [{"network": "linkedin", "language": "fr", "text": "Fiers de notre usine !"}]}
        item = (await content.post("/v1/contents", json=draft, headers=token(tenant, "editor"))).json()
        # Four eyes: the approver is not the editor who wrote it.
        trace_id = uuid.uuid4().hex  # the caller's W3C trace: it must follow the item downstream
        published = await content.post(f"/v1/contents/{item['id']}/publish", headers={
            **token(tenant, "approver", subject="approver-1"), "traceparent": f"00-{trace_id}-{'1' * 16}-01"})
        assert published.status_code == 200

        async def feed_of(employee_id: str) -> list:
            r = await distribution.get("/v1/me/feed", headers=token(tenant, "employee", subject=employee_id))
            return r.json()["items"] if r.status_code == 200 else []

        items = await eventually(lambda: feed_of("E1"))
        assert [i["content_id"] for i in items] == [item["id"]]
        assert items[0]["share_texts"][0]["text"] == "Fiers de notre usine !"
        path = urlsplit(items[0]["links"][0]["tracked_url"]).path

        async def redirect():
            r = await tracking.get(path, headers=BROWSER)
            return r if r.status_code == 302 else None  # 404 until tracking has the link

        clicked = await eventually(redirect)
        location = clicked.headers["location"]
        assert location.startswith("https://acme.example/plant?lang=fr&")
        assert "utm_medium=employee-advocacy" in location and "utm_source=linkedin" in location

        async def kpis() -> dict:
            r = await reporting.get("/v1/kpis", params={"scope_type": "tenant", "scope_id": tenant},
                                    headers=token(tenant, "analyst"))
            return r.json()["kpis"]

        counted = await eventually(
            lambda: _when(kpis, lambda k: k["clicks_total"] == 1 and k["notified_ambassadors"] == 1))
        assert counted["contents_published"] == 1
        assert counted["ambassadors_enrolled"] == 2
        assert await feed_of("E3") == []  # SUB-B is outside the audience

        # The click event delivered a second time: reporting sees it, and counts it once.
        engagement = (await read_topic(kafka_bootstrap, topics.ENGAGEMENTS.name,
                                       lambda r: header(r, "ce_tenantid") == tenant))[0]
        before = duplicates_seen_by_reporting()
        await produce(kafka_bootstrap, topics.ENGAGEMENTS.name,
                      [(engagement.key, engagement.value, list(engagement.headers))])
        await eventually(lambda: _when(lambda: asyncio.sleep(0, duplicates_seen_by_reporting()), lambda d: d > before))
        assert (await kpis())["clicks_total"] == 1

        # The trace id of the publication request is on the events it caused, across services.
        mine = lambda r: header(r, "ce_tenantid") == tenant  # noqa: E731
        lifecycle = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name, mine)
        notified = await read_topic(kafka_bootstrap, topics.NOTIFICATIONS.name, mine)
        for event in (lifecycle[0], notified[0]):
            assert header(event, "ce_traceparent").split("-")[1] == trace_id

        for client in (content, distribution, tracking, reporting):
            exposition = (await client.get("/metrics")).text
            assert "portevoix_events_consumed_total" in exposition
            assert promtool_problems(exposition) is None


async def _when(fetch, condition):
    value = await fetch()
    return value if condition(value) else None
