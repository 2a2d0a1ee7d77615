"""The content service's slice: authoring and publication through the outbox, with the
refusals (authentication, roles, tenants, illegal transitions, invalid payloads)."""

from __future__ import annotations

import json

import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import header, new_tenant, promtool_problems, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration

DRAFT = {
    "title": "Our new plant", "summary": "It runs on renewables.", "url": "https://acme.example/news/plant",
    "language": "en", "tags": ["green"], "campaign": "green-2026", "owner_subsidiary": "ACME-FR",
    "audience": {"subsidiaries": ["ACME-FR"], "languages": ["fr", "en"]},
    "share_texts": [{"network": "linkedin", "language": "en", "text": "Proud of our plant!"}],
}


@pytest.fixture
def content_app(kafka_bootstrap, database_url):
    return create_app(settings_for(ContentSettings, kafka_bootstrap, database_url))


async def test_publishing_emits_one_content_published_event_with_what_distribution_needs(content_app, kafka_bootstrap):
    tenant = new_tenant()
    async with running(content_app) as client:
        created = await client.post("/v1/contents", json=DRAFT, headers=token(tenant, "editor", subject="claire"))
        assert created.status_code == 201, created.text
        item = created.json()
        assert item["state"] == "draft" and item["created_by"] == "claire"
        published = await client.post(f"/v1/contents/{item['id']}/publish", headers=token(tenant, "approver"))
        assert published.status_code == 200, published.text
        assert published.json()["state"] == "published"
        again = await client.post(f"/v1/contents/{item['id']}/publish", headers=token(tenant, "approver"))
        assert again.status_code == 409
        assert again.json()["detail"]["state"] == "published"
        assert again.json()["detail"]["allowed"] == ["retired"]
        # Read while the service runs: its outbox relay publishes after the commit.
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                  lambda r: header(r, "ce_tenantid") == tenant, expect=1, settle=1.5)
    assert len(events) == 1
    assert header(events[0], "ce_type") == "content.published"
    assert header(events[0], "ce_subject") == item["id"]
    data = json.loads(events[0].value)
    assert data["content_id"] == item["id"]
    assert data["url"] == DRAFT["url"]
    assert data["audience"]["subsidiaries"] == ["ACME-FR"]
    assert data["share_texts"][0]["text"] == "Proud of our plant!"


async def test_refusals_are_clear_and_change_nothing(content_app):
    tenant, other = new_tenant(), new_tenant()
    async with running(content_app) as client:
        assert (await client.post("/v1/contents", json=DRAFT)).status_code == 401
        bad_token = {"Authorization": "Bearer not.a.jwt"}
        assert (await client.post("/v1/contents", json=DRAFT, headers=bad_token)).status_code == 401
        assert (await client.post("/v1/contents", json=DRAFT, headers=token(tenant, "employee"))).status_code == 403

        invalid = await client.post("/v1/contents", json={**DRAFT, "url": "not a url", "colour": "red"},
                                    headers=token(tenant, "editor"))
        assert invalid.status_code == 422
        fields = {tuple(e["loc"]) for e in invalid.json()["detail"]}
        assert ("body", "url") in fields and ("body", "colour") in fields

        item = (await client.post("/v1/contents", json=DRAFT, headers=token(tenant, "editor"))).json()
        # another tenant neither reads nor publishes it
        assert (await client.get(f"/v1/contents/{item['id']}", headers=token(other, "editor"))).status_code == 404
        assert (await client.post(f"/v1/contents/{item['id']}/publish",
                                  headers=token(other, "approver"))).status_code == 404
        assert (await client.post(f"/v1/contents/{item['id']}/publish",
                                  headers=token(tenant, "editor"))).status_code == 403
        still = await client.get(f"/v1/contents/{item['id']}", headers=token(tenant, "editor"))
        assert still.json()["state"] == "draft"


async def test_health_readiness_and_metrics_pass_promtool(content_app):
    async with running(content_app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok", "kafka": "ok"}
        await client.get("/v1/contents/00000000-0000-0000-0000-000000000000")
        exposition = (await client.get("/metrics")).text
    assert 'portevoix_http_requests_total{method="GET",route="/v1/contents/{content_id}",status="401"}' in exposition
    assert promtool_problems(exposition) is None
