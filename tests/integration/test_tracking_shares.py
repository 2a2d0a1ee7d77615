"""Share confirmations against the real broker and database: an ambassador proves the share is
theirs from their own session (the link code alone proves nothing); counted once per (content,
ambassador, network, post)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from services.tracking.main import TrackingSettings, create_app
from shared.envelope import new_event, record_key
from shared.events import AmbassadorUpdated, AmbassadorWithdrawn, ProfileChange
from shared.topics import AMBASSADORS, ENGAGEMENTS
from tests.integration.test_tracking_slice import notify, record_of
from tests.integration.test_tracking_webhooks import learnt
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token

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
    employee = token(tenant, "employee")  # user-1, the link's ambassador
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
    # The same X post under its old domain, another handle or the web path: one post.
    for same in ("https://twitter.com/someone/status/1", "https://mobile.twitter.com/i/web/status/1?s=20"):
        assert (await confirm({"link_code": x, "post_url": same})).json()["counted"] is False

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


async def test_only_the_ambassador_the_link_was_sent_to_may_confirm_it(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    """Tracked links are public in posts: another ambassador, or an employee who never enrolled,
    holding the code gets 403 and counts nothing; the owner, from his own session, counts."""
    tenant = new_tenant()
    _, ambassador_id, linkedin, _ = await notify(kafka_bootstrap, tenant, "https://example.com/s", None,
                                                 holder_subject="hr-owner")
    _, other_ambassador, other_link, _ = await notify(kafka_bootstrap, tenant, "https://example.com/s", None,
                                                      holder_subject="hr-other")
    await learnt(database_url, linkedin)
    await learnt(database_url, other_link)
    post = {"link_code": linkedin, "post_url": "https://www.linkedin.com/feed/update/urn:li:activity:9/"}
    for intruder in ("hr-other", "hr-never-enrolled"):
        refused = await client.post("/v1/shares", json=post, headers=token(tenant, "employee", subject=intruder))
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"]["reason"] == "not_owner"
    owner = token(tenant, "employee", subject="hr-owner")
    assert (await client.post("/v1/shares", json=post, headers=owner)).status_code == 201

    await lapse(kafka_bootstrap, database_url, tenant, ambassador_id)  # consent not renewed in time
    lapsed = await client.post("/v1/shares", headers=owner, json={
        "link_code": linkedin, "post_url": "https://www.linkedin.com/feed/update/urn:li:activity:11/"})
    assert (lapsed.status_code, lapsed.json()["detail"]["reason"]) == (403, "not_active")

    await enrol_withdrawn(kafka_bootstrap, database_url, tenant, ambassador_id)
    again = {"link_code": linkedin, "post_url": "https://www.linkedin.com/feed/update/urn:li:activity:10/"}
    gone = await client.post("/v1/shares", json=again, headers=owner)
    assert (gone.status_code, gone.json()["detail"]["reason"]) == (403, "not_active")

    records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=2, settle=1.0)
    assert [json.loads(r.value)["ambassador_id"] for r in records] == [ambassador_id]
    assert other_ambassador != ambassador_id


async def test_a_link_whose_ambassador_is_not_known_yet_answers_retry_later(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    _, ambassador_id, linkedin, _ = await notify(kafka_bootstrap, tenant, "https://example.com/s", None)
    await learnt(database_url, linkedin)
    conn = await asyncpg.connect(database_url)
    try:  # as if ambassadors.v1 lagged behind the notification
        await conn.execute("DELETE FROM tracking.ambassadors WHERE tenant = $1", tenant)
    finally:
        await conn.close()
    early = await client.post("/v1/shares", json={"link_code": linkedin}, headers=token(tenant, "employee"))
    assert early.status_code == 409, early.text
    assert early.headers["retry-after"] and early.json()["detail"]["reason"] == "not_yet_known"


async def enrol_withdrawn(kafka_bootstrap: str, database_url: str, tenant: str, ambassador_id: str) -> None:
    await stopped_counting(kafka_bootstrap, database_url, tenant, ambassador_id, new_event(
        "ambassador.withdrawn", source="portevoix/distribution", subject=ambassador_id, tenant=tenant,
        data=AmbassadorWithdrawn(ambassador_id=ambassador_id, reason="consent_withdrawn",
                                 effective_at=datetime.now(UTC))))


async def lapse(kafka_bootstrap: str, database_url: str, tenant: str, ambassador_id: str) -> None:
    await stopped_counting(kafka_bootstrap, database_url, tenant, ambassador_id, new_event(
        "ambassador.updated", source="portevoix/distribution", subject=ambassador_id, tenant=tenant,
        data=AmbassadorUpdated(ambassador_id=ambassador_id, subsidiary="FR01", country="FR", language="fr",
                               change=ProfileChange.consent_lapsed, effective_at=datetime.now(UTC))))


async def stopped_counting(kafka_bootstrap: str, database_url: str, tenant: str, ambassador_id: str,
                           event: Any) -> None:
    """Produce ``event`` on ambassadors.v1 as distribution would; wait until tracking no longer
    counts that ambassador's shares."""
    await produce(kafka_bootstrap, AMBASSADORS.name, [record_of(event)])

    async def inactive() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval("SELECT NOT active FROM tracking.ambassadors WHERE tenant = $1 "
                                       "AND ambassador_id = $2", tenant, ambassador_id) is True
        finally:
            await conn.close()
    await eventually(inactive, timeout=60)
