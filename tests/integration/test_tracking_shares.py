"""Share confirmations against the real broker and database: an ambassador proves the share is
theirs with a link code they received; counted once per (content, ambassador, network, post)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.tracking.main import TrackingSettings, create_app
from shared.envelope import record_key
from shared.topics import ENGAGEMENTS
from tests.integration.test_tracking_slice import notify
from tests.integration.test_tracking_webhooks import learnt
from tests.support import header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings_for(TrackingSettings, kafka_bootstrap, database_url))) as client:
        yield client


async def test_a_share_is_counted_once_per_content_ambassador_network_and_post(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    content_id, ambassador_id, linkedin, x = await notify(kafka_bootstrap, tenant, "https://example.com/s", None)
    await learnt(database_url, linkedin)
    employee = token(tenant, "employee", subject="hr-123")
    post = "https://www.linkedin.com/feed/update/urn:li:activity:7100/"

    def confirm(body: dict) -> httpx.Response:  # type: ignore[type-arg]
        return client.post("/v1/shares", json=body, headers=employee)  # type: ignore[return-value]

    first = await confirm({"link_code": linkedin, "post_url": post})
    assert first.status_code == 201, first.text
    assert first.json() == {"content_id": content_id, "network": "linkedin", "counted": True}
    # The same post again, written differently (tracking parameters, no www, no trailing slash).
    again = await confirm({"link_code": linkedin,
                           "post_url": "https://linkedin.com/feed/update/urn:li:activity:7100?utm_source=share&trk=x"})
    assert again.status_code == 200 and again.json()["counted"] is False
    assert (await confirm({"link_code": linkedin})).status_code == 201          # no post URL: one more
    assert (await confirm({"link_code": linkedin})).status_code == 200
    assert (await confirm({"link_code": x, "post_url": "https://x.com/someone/status/1"})).status_code == 201

    records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=3, settle=1.0)
    data = [json.loads(r.value) for r in records]
    assert sorted((d["kind"], d["network"], d["ambassador_id"]) for d in data) == [
        ("share", "linkedin", ambassador_id), ("share", "linkedin", ambassador_id), ("share", "x", ambassador_id)]
    assert {r.key for r in records} == {record_key(tenant, content_id)}


async def test_shares_that_cannot_be_the_callers_are_refused(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    _, _, linkedin, _ = await notify(kafka_bootstrap, tenant, "https://example.com/s", None)
    await learnt(database_url, linkedin)
    employee = token(tenant, "employee")
    cases = {
        "another tenant's link": (token(new_tenant(), "employee"), {"link_code": linkedin}, 404),
        "unknown link": (employee, {"link_code": "NoSuchCode123"}, 404),
        "post on another network": (employee, {"link_code": linkedin,
                                               "post_url": "https://evil.example/linkedin.com/p"}, 422),
        "not a URL": (employee, {"link_code": linkedin, "post_url": "javascript:alert(1)"}, 422),
        "unknown field": (employee, {"link_code": linkedin, "ambassador_id": "someone-else"}, 422),
        "not an employee": (token(tenant, "analyst"), {"link_code": linkedin}, 403),
    }
    for what, (headers, body, status) in cases.items():
        response = await client.post("/v1/shares", json=body, headers=headers)
        assert response.status_code == status, (what, response.text)
    assert (await client.post("/v1/shares", json={"link_code": linkedin})).status_code == 401
    records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=1, timeout=3)
    assert records == []
