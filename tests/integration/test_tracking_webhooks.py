"""Engagement webhooks against the real broker and database, signed with the Standard Webhooks
reference library (not our own signer): per-event validation, replays counted once, forged,
expired and revoked signatures, oversized and malformed batches, secrets kept per tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from services.tracking.main import TrackingSettings, create_app
from shared.envelope import record_key
from shared.topics import ENGAGEMENTS
from tests.integration.test_tracking_slice import notify
from tests.support import eventually, header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(TrackingSettings, kafka_bootstrap, database_url,
                            http_body_limits={"/v1/webhooks/": 64 * 1024}, webhook_max_events=200)
    async with running(create_app(settings)) as client:
        yield client


async def learnt(database_url: str, code: str) -> None:
    """Wait until tracking has learnt a link from distribution's notification, and its ambassador."""
    async def known() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            return bool(await conn.fetchval(
                """SELECT 1 FROM tracking.links l JOIN tracking.ambassadors a
                   ON a.tenant = l.tenant AND a.ambassador_id = l.ambassador_id WHERE l.code = $1""", code))
        finally:
            await conn.close()
    await eventually(known, timeout=60)


async def new_source(client: httpx.AsyncClient, tenant: str) -> tuple[str, str]:
    source = f"src-{uuid.uuid4().hex[:10]}"
    response = await client.post(f"/v1/webhook-sources/{source}/secrets", headers=token(tenant, "admin"))
    assert response.status_code == 201, response.text
    assert response.json()["secret"].startswith("whsec_")
    return source, response.json()["secret"]


def signed(secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    """Headers as any Standard Webhooks sender makes them, with the reference library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
            "content-type": "application/json"}


def event(content_id: str, kind: str = "reaction", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "content_id": content_id, "network": "linkedin", "count": 1,
            "occurred_at": datetime.now(UTC).isoformat(), **extra}


def batch(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


async def tenant_with_content(client: httpx.AsyncClient, kafka_bootstrap: str,
                              database_url: str) -> tuple[str, str, str, str, str, str]:
    """A tenant, one of its contents (learnt from a notification), a webhook source and secret."""
    tenant = new_tenant()
    content_id, ambassador_id, linkedin, _ = await notify(kafka_bootstrap, tenant, "https://example.com/a", None)
    await learnt(database_url, linkedin)
    source, secret = await new_source(client, tenant)
    return tenant, content_id, ambassador_id, linkedin, source, secret


async def engagements_of(kafka_bootstrap: str, tenant: str, expect: int) -> list[Any]:
    return await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                            expect=expect, settle=1.0, timeout=30)


async def test_a_signed_batch_records_the_valid_events_and_lists_the_rejected(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, content_id, ambassador_id, linkedin, source, secret = await tenant_with_content(
        client, kafka_bootstrap, database_url)
    body = batch(
        event(content_id, "reaction", count=3),
        event(content_id, "impression", count=1200),
        event(content_id, "comment", link_code=linkedin),              # ambassador taken from the link
        event(content_id, "shout"),                                     # 3: unknown type
        event(content_id, "reshare", count=0),                          # 4: count below 1
        event("not-a-content-of-this-tenant", "reaction"),              # 5: unknown content
        event(content_id, "click", link_code="ZZZZZZZZZZZZ"),           # 6: unknown link
        event(content_id, "reaction", occurred_at="2026-03-02T09:30:00"),  # 7: no time zone
        "not an object",                                                # 8
        event(content_id, "reshare", network="x", link_code=linkedin),  # 9: the link is on LinkedIn
        event(content_id, "reshare", ambassador_id=ambassador_id),
        event(content_id, "reshare", ambassador_id="made-up-ambassador"),  # 11: nobody enrolled by that id
    )
    response = await client.post(f"/v1/webhooks/{source}", content=body, headers=signed(secret, body))

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 4 and answer["duplicate"] is False
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 11]
    assert "type" in reasons[3] and "count" in reasons[4] and "unknown content" in reasons[5]
    assert "unknown tracked link" in reasons[6] and "time zone" in reasons[7] and "network" in reasons[9]
    assert "unknown ambassador" in reasons[11]

    records = await engagements_of(kafka_bootstrap, tenant, expect=4)
    assert {r.key for r in records} == {record_key(tenant, content_id)}  # keyed by content: kept in order
    data = [json.loads(r.value) for r in records]
    assert [(d["kind"], d["count"], d["ambassador_id"], d["connector"]) for d in data] == [
        ("reaction", 3, None, source), ("impression", 1200, None, source), ("comment", 1, ambassador_id, source),
        ("reshare", 1, ambassador_id, source)]
    assert len({header(r, "ce_id") for r in records}) == 4


async def test_a_replayed_webhook_id_is_acknowledged_and_counted_once(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, content_id, _, _, source, secret = await tenant_with_content(client, kafka_bootstrap, database_url)
    body = batch(event(content_id), event(content_id, "bogus"))
    headers = signed(secret, body)
    first = await client.post(f"/v1/webhooks/{source}", content=body, headers=headers)
    again = await client.post(f"/v1/webhooks/{source}", content=body, headers=headers)
    # The same id re-signed later, as senders do when they retry: still the same delivery.
    resent = await client.post(f"/v1/webhooks/{source}", content=body,
                               headers=signed(secret, body, msg_id=headers["webhook-id"]))

    assert first.status_code == 202 and first.json()["duplicate"] is False
    for replay in (again, resent):
        assert replay.status_code == 202, replay.text
        assert replay.json() == {**first.json(), "duplicate": True}
    assert len(await engagements_of(kafka_bootstrap, tenant, expect=1)) == 1


async def test_forged_expired_and_unsigned_calls_are_refused(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, content_id, _, _, source, secret = await tenant_with_content(client, kafka_bootstrap, database_url)
    body = batch(event(content_id))
    other_secret = Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
    forged = signed(secret, body)
    forged["webhook-signature"] = other_secret.sign(forged["webhook-id"], datetime.now(UTC), body.decode())
    tampered_body = batch(event(content_id, count=1000))
    now = datetime.now(UTC)
    refused = {
        "forged": (body, forged),
        "tampered body": (tampered_body, signed(secret, body)),
        "expired": (body, signed(secret, body, at=now - timedelta(minutes=6))),
        "from the future": (body, signed(secret, body, at=now + timedelta(minutes=6))),
        "unsigned": (body, {"content-type": "application/json"}),
        "garbage signature": (body, {**signed(secret, body), "webhook-signature": "v1,@@@ v2,abc nonsense"}),
    }
    for what, (content, headers) in refused.items():
        response = await client.post(f"/v1/webhooks/{source}", content=content, headers=headers)
        assert response.status_code == 401, (what, response.text)
        assert response.json()["detail"]["reason"] == "signature"
    assert "5-minute" in (await client.post(f"/v1/webhooks/{source}", content=body,
                                            headers=refused["expired"][1])).json()["detail"]["message"]
    unknown = await client.post("/v1/webhooks/no-such-source", content=body, headers=signed(secret, body))
    assert unknown.status_code == 401
    # Within the tolerance, a correct call goes through: the refusals were for what they said.
    fine = await client.post(f"/v1/webhooks/{source}", content=body,
                             headers=signed(secret, body, at=now - timedelta(minutes=4)))
    assert fine.status_code == 202, fine.text
    assert len(await engagements_of(kafka_bootstrap, tenant, expect=1)) == 1


async def test_secrets_rotate_per_source_and_stay_in_their_tenant(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, content_id, _, _, source, old = await tenant_with_content(client, kafka_bootstrap, database_url)
    admin = token(tenant, "admin")
    new = (await client.post(f"/v1/webhook-sources/{source}/secrets", headers=admin)).json()
    body = batch(event(content_id))
    for secret in (old, new["secret"]):  # both active during the rotation
        assert (await client.post(f"/v1/webhooks/{source}", content=body,
                                  headers=signed(secret, body))).status_code == 202

    listed = (await client.get(f"/v1/webhook-sources/{source}/secrets", headers=admin)).json()
    assert len(listed) == 2 and all("secret" not in s for s in listed)
    old_id = next(s["secret_id"] for s in listed if s["secret_id"] != new["secret_id"])
    assert (await client.delete(f"/v1/webhook-sources/{source}/secrets/{old_id}", headers=admin)).status_code == 204
    assert (await client.post(f"/v1/webhooks/{source}", content=body,
                              headers=signed(old, body))).status_code == 401
    assert (await client.post(f"/v1/webhooks/{source}", content=body,
                              headers=signed(new["secret"], body))).status_code == 202

    intruder = token(new_tenant(), "admin")
    assert (await client.post(f"/v1/webhook-sources/{source}/secrets", headers=intruder)).status_code == 409
    assert (await client.get(f"/v1/webhook-sources/{source}/secrets", headers=intruder)).status_code == 404
    assert (await client.delete(f"/v1/webhook-sources/{source}/secrets/{new['secret_id']}",
                                headers=intruder)).status_code == 404
    assert (await client.get(f"/v1/webhook-sources/{source}/secrets",
                             headers=token(tenant, "admin", subsidiary="FR01"))).status_code == 403
    assert (await client.get(f"/v1/webhook-sources/{source}/secrets",
                             headers=token(tenant, "analyst"))).status_code == 403
    for bad in ("Bad..Name", "x", "-dash-first", "a" * 64):  # an invalid name is a bad request, not a missing one
        for method in ("POST", "GET"):
            refused = await client.request(method, f"/v1/webhook-sources/{bad}/secrets", headers=admin)
            assert refused.status_code == 422, (method, bad, refused.text)
            assert "source" in refused.text


async def test_oversized_malformed_and_wholly_invalid_batches_record_nothing(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, content_id, _, _, source, secret = await tenant_with_content(client, kafka_bootstrap, database_url)
    too_many = batch(*[event(content_id) for _ in range(201)])
    too_big = batch(event(content_id, padding="x" * 70_000))
    cases = {
        "too many events": (too_many, 413),
        "too many bytes": (too_big, 413),
        "not JSON": (b"{not json", 400),
        "no events list": (b'{"event": []}', 400),
        "a list, not an object": (b"[]", 400),
        "every event invalid": (batch(event(content_id, "shout"), event("unknown-content")), 422),
    }
    for what, (body, status) in cases.items():
        response = await client.post(f"/v1/webhooks/{source}", content=body, headers=signed(secret, body))
        assert response.status_code == status, (what, response.text)
    invalid = batch(event(content_id, "shout"))
    rejected = await client.post(f"/v1/webhooks/{source}", content=invalid, headers=signed(secret, invalid))
    assert rejected.json()["accepted"] == 0 and rejected.json()["rejected"][0]["index"] == 0

    marker = batch(event(content_id, "impression", count=7))
    assert (await client.post(f"/v1/webhooks/{source}", content=marker,
                              headers=signed(secret, marker))).status_code == 202
    [only] = await engagements_of(kafka_bootstrap, tenant, expect=1)
    assert json.loads(only.value)["count"] == 7
