"""Ingestion from intranets and PR tools: intranet.content.v1 in both CloudEvents modes and the
signed webhook. One item per external id whatever the duplicates and the arrival order,
auto-approval where the tenant trusts the source, embargoes, and the refusals (DLQ, 401, 413, 422)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.content import webhooks
from services.content.main import ContentSettings, create_app
from shared import topics
from shared.envelope import new_event, to_binary, to_structured
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration


@pytest.fixture
def content_app(kafka_bootstrap, database_url):
    return create_app(settings_for(ContentSettings, kafka_bootstrap, database_url, scheduler_interval_seconds=0.2))


def submitted(external_id: str, version: int, title: str = "From the intranet", **more) -> dict:
    return {"external_id": external_id, "source_system": "intranet", "title": title, "summary": "News",
            "url": "https://acme.example/intra/1", "language": "fr", "subsidiary": "SUB-A", "tags": ["news"],
            "suggested_texts": {"linkedin": "À lire !", "x": "À lire"}, "version": version, **more}


def record(tenant: str, data: dict, *, structured: bool = False, event_id: str | None = None,
           type: str = "intranet.content.submitted"):
    event = new_event(type, source="intranet/test", subject=data.get("external_id", "x"), tenant=tenant, data=data,
                      id=event_id)
    if structured:
        # the same key as binary mode: one external id's events stay in order on one partition
        return to_binary(event).key, to_structured(event), [("content-type", b"application/cloudevents+json")]
    binary = to_binary(event)
    return binary.key, binary.value, [(k, v.encode()) for k, v in binary.headers.items()]


async def items_of(client, tenant: str) -> list[dict]:
    return (await client.get("/v1/contents", headers=token(tenant, "editor"))).json()["items"]


async def test_one_item_per_external_id_whatever_duplicates_and_order(content_app, kafka_bootstrap):
    tenant = new_tenant()
    async with running(content_app) as client:
        first = record(tenant, submitted("N-1", 1), event_id="e1")
        await produce(kafka_bootstrap, topics.INTRANET_CONTENT.name, [
            first, first,  # the same event delivered twice
            record(tenant, submitted("N-1", 3, "Third"), structured=True),
            record(tenant, submitted("N-1", 2, "Second, late")),  # older than what we hold: ignored
            record(tenant, submitted("N-1", 3, "Third again")),  # same version: ignored
            record(tenant, submitted("N-2", 1, embargo_until=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
                   structured=True),
        ])

        async def settled():
            items = await items_of(client, tenant)
            return items if len(items) == 2 and {i["external_version"] for i in items} == {1, 3} else None

        items = {i["external_id"]: i for i in await eventually(settled)}
        # v2 and the second v3 came after v3 on the same partition: both ignored
        await eventually(lambda: _last_title(client, tenant, items["N-1"]["id"], "Third"))
        await asyncio.sleep(0.5)
        assert await _last_title(client, tenant, items["N-1"]["id"], "Third")
        n1 = (await client.get(f"/v1/contents/{items['N-1']['id']}", headers=token(tenant, "editor"))).json()
        assert n1["state"] == "draft" and n1["external_version"] == 3 and n1["source_system"] == "intranet"
        assert n1["owner_subsidiary"] == "SUB-A" and n1["audience"]["subsidiaries"] == ["SUB-A"]
        assert {t["network"] for t in n1["share_texts"]} == {"linkedin", "x"}

        # An embargoed item cannot be published before its embargo, whoever asks.
        n2 = items["N-2"]
        held = await client.post(f"/v1/contents/{n2['id']}/publish", headers=token(tenant, "approver", "admin"))
        assert held.status_code == 409 and "embargo" in held.json()["detail"]["message"]


async def _last_title(client, tenant: str, content_id: str, title: str) -> bool:
    item = (await client.get(f"/v1/contents/{content_id}", headers=token(tenant, "editor"))).json()
    return item["title"] == title


async def test_auto_approval_where_the_tenant_allows_it_and_embargo_holds_the_schedule(content_app, kafka_bootstrap):
    tenant = new_tenant()
    admin = token(tenant, "admin")
    async with running(content_app) as client:
        assert (await client.put("/v1/admin/sources/intranet", json={"auto_approve": True},
                                 headers=token(tenant, "approver"))).status_code == 403
        assert (await client.put("/v1/admin/sources/intranet", json={"auto_approve": True},
                                 headers=admin)).json()["auto_approve"] is True
        await client.put("/v1/admin/charter", json={"forbidden_terms": ["Rivalcorp"]}, headers=admin)
        embargo = datetime.now(UTC) + timedelta(seconds=1.5)
        await produce(kafka_bootstrap, topics.INTRANET_CONTENT.name, [
            record(tenant, submitted("OK-1", 1, embargo_until=embargo.isoformat())),
            record(tenant, submitted("BAD-1", 1, "Rivalcorp is worse")),
            record(tenant, {**submitted("OTHER-1", 1), "source_system": "pr-tool"}),
        ])
        items = {i["external_id"]: i for i in await eventually(
            lambda: _when(items_of(client, tenant), lambda x: len(x) == 3))}
        assert items["OK-1"]["state"] == "approved"
        assert items["BAD-1"]["state"] == "draft"  # the charter has something against it
        assert items["OTHER-1"]["state"] == "draft"  # the tenant does not trust that source
        trail = (await client.get(f"/v1/contents/{items['OK-1']['id']}/audit", headers=admin)).json()["transitions"]
        assert (trail[-1]["action"], trail[-1]["actor"]) == ("auto_approve", "source:intranet")

        # Scheduled for now, yet held until the embargo: published at or after it.
        ok = items["OK-1"]["id"]
        await client.post(f"/v1/contents/{ok}/schedule", json={"publish_at": datetime.now(UTC).isoformat()},
                          headers=token(tenant, "approver"))
        published = await eventually(lambda: _when(
            client.get(f"/v1/contents/{ok}", headers=admin), lambda r: r.json()["state"] == "published"))
        assert datetime.fromisoformat(published.json()["published_at"]) >= embargo


async def test_unknown_types_and_invalid_data_go_to_the_dlq_and_the_partition_keeps_flowing(
        content_app, kafka_bootstrap):
    tenant = new_tenant()
    async with running(content_app) as client:
        await produce(kafka_bootstrap, topics.INTRANET_CONTENT.name, [
            record(tenant, submitted("V2-1", 1), type="intranet.content.submitted.v2"),
            record(tenant, {**submitted("BAD-URL", 1), "url": "not a url"}),
            record(tenant, submitted("FINE-1", 1)),
        ])
        await eventually(lambda: _when(items_of(client, tenant), lambda x: len(x) == 1))
        dead = await read_topic(kafka_bootstrap, topics.INTRANET_CONTENT.dlq.name,
                                lambda r: tenant.encode() in (r.value or b"") or header(r, "ce_tenantid") == tenant,
                                expect=2)
    causes = sorted(header(d, "x-portevoix-dlq-cause") or "" for d in dead)
    assert "invalid data for intranet.content.submitted: url" in causes[0]
    assert "unknown event type 'intranet.content.submitted.v2'" in causes[1]


def signed(secret: str, body: bytes, webhook_id: str | None = None, timestamp: int | None = None) -> dict:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or int(time.time())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(secret, webhook_id, timestamp, body), "content-type": "application/json"}


async def test_signed_webhook_becomes_a_draft_once_and_refuses_what_is_not_authentic(content_app):
    tenant = new_tenant()
    url = f"/v1/webhooks/intranet/{tenant}/pr-tool"
    async with running(content_app) as client:
        body = json.dumps({**submitted("PR-1", 1), "source_system": "pr-tool"}).encode()
        assert (await client.post(url, content=body, headers=signed("whsec_" + "QUJD" * 8, body))).status_code == 401
        secret = (await client.post("/v1/admin/sources/pr-tool/webhook-secret",
                                    headers=token(tenant, "admin"))).json()["secret"]
        assert secret.startswith("whsec_")
        sources = (await client.get("/v1/admin/sources", headers=token(tenant, "admin"))).json()
        assert sources == [{"source_system": "pr-tool", "auto_approve": False, "has_webhook_secret": True}]

        headers = signed(secret, body)
        accepted = await client.post(url, content=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        assert (await client.post(url, content=body, headers=headers)).status_code == 202  # a replay

        refusals = [
            (body, signed(secret, body + b" "), 401),  # signed another body
            (body, signed(secret, body, timestamp=int(time.time()) - 301), 401),  # too old
            (body, {k: v for k, v in headers.items() if k != "webhook-signature"}, 401),
            (body, signed(webhooks.new_secret(), body), 401),
        ]
        for payload, sent, status in refusals:
            assert (await client.post(url, content=payload, headers=sent)).status_code == status
        other_tenant = await client.post(f"/v1/webhooks/intranet/{new_tenant()}/pr-tool", content=body, headers=headers)
        assert other_tenant.status_code == 401

        invalid = json.dumps({**submitted("PR-2", 1), "source_system": "pr-tool", "url": "nope"}).encode()
        answer = await client.post(url, content=invalid, headers=signed(secret, invalid))
        assert answer.status_code == 422 and ["body", "url"] in [e["loc"] for e in answer.json()["detail"]]
        spoofed = json.dumps(submitted("PR-3", 1)).encode()  # claims another source
        answer = await client.post(url, content=spoofed, headers=signed(secret, spoofed))
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "source_system"]
        huge = json.dumps({**submitted("PR-4", 1), "source_system": "pr-tool", "summary": "x" * 300_000}).encode()
        assert (await client.post(url, content=huge, headers=signed(secret, huge))).status_code == 413

        await eventually(lambda: _when(items_of(client, tenant), lambda x: len(x) >= 1))
        await asyncio.sleep(1.0)  # time for a wrongly duplicated item (the replay) to show up
        items = await items_of(client, tenant)
    assert [(i["external_id"], i["source_system"], i["state"]) for i in items] == [("PR-1", "pr-tool", "draft")]


async def _when(fetch, condition):
    value = await fetch
    return value if condition(value) else None
