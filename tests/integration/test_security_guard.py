"""The HTTP guard (shared/http_guard.py) on the real services, in-process: per-client rate limits
on the public endpoints (429 with Retry-After), body size limits (413 before the body is read),
security headers; the content webhook's clock skew and replays; and no secret, token or e-mail
address in any log record while the services are used with them."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.content import webhooks as content_webhooks
from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from shared.envelope import to_binary
from shared.topics import HR_EMPLOYEES
from tests.integration.test_distribution_slice import upserted
from tests.support import JWT_SECRET, header, new_tenant, produce, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration

# Small limits so a test reaches them in a few requests; loopback (the test client) not exempt.
GUARD = {"rate_limit_exempt_clients": [], "rate_limit_redirects_per_second": 1, "rate_limit_redirects_burst": 5,
         "rate_limit_webhooks_per_second": 1, "rate_limit_webhooks_burst": 3,
         "rate_limit_scim_per_second": 1, "rate_limit_scim_burst": 4,
         "http_max_body_bytes": 64 * 1024, "http_body_limits": {"/v1/me/": 4096}}


def client_at(app: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    """Another client address on the same app (the limits are per client)."""
    transport = httpx.ASGITransport(app=app._transport.app, client=(address, 40000))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://service")


@pytest.fixture(scope="module")
async def tracking(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(tracking_app(settings_for(TrackingSettings, kafka_bootstrap, database_url, **GUARD))) as c:
        yield c


@pytest.fixture(scope="module")
async def distribution(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(DistributionSettings, kafka_bootstrap, database_url, **GUARD)
    async with running(distribution_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
async def content(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(content_app(settings_for(ContentSettings, kafka_bootstrap, database_url, **GUARD))) as c:
        yield c


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    if response.request.method != "HEAD":
        assert response.json()["detail"] == "too many requests from this client"


async def test_the_redirector_limits_each_client_address_and_not_the_others(tracking: httpx.AsyncClient) -> None:
    async with client_at(tracking, "203.0.113.7") as one, client_at(tracking, "203.0.113.8") as other:
        answers = [(await one.get("/r/nosuchcode")).status_code for _ in range(5)]
        assert answers == [404] * 5  # the burst passes (unknown code: 404)
        assert_limited(await one.get("/r/nosuchcode"))
        assert_limited(await one.head("/r/nosuchcode"))
        assert (await other.get("/r/nosuchcode")).status_code == 404  # another client has its own bucket
        # Authenticated APIs are not rate limited here.
        for _ in range(10):
            assert (await one.get("/v1/webhook-sources/x/secrets")).status_code == 401


async def test_webhooks_are_limited_per_client_and_path(tracking: httpx.AsyncClient,
                                                        content: httpx.AsyncClient) -> None:
    for app, path in ((tracking, "/v1/webhooks/src-a"), (content, f"/v1/webhooks/intranet/{new_tenant()}/pr")):
        async with client_at(app, "198.51.100.1") as caller:
            answers = [(await caller.post(path, content=b"{}")).status_code for _ in range(3)]
            assert answers == [401] * 3  # unsigned: refused, but counted
            assert_limited(await caller.post(path, content=b"{}"))
            assert (await caller.post(path + "-other", content=b"{}")).status_code == 401


async def test_scim_is_limited_per_credential(distribution: httpx.AsyncClient) -> None:
    async with client_at(distribution, "192.0.2.10") as caller:
        first = {"Authorization": "Bearer first-made-up-credential"}
        assert [(await caller.get("/scim/v2/Users", headers=first)).status_code for _ in range(4)] == [401] * 4
        limited = await caller.get("/scim/v2/Users", headers=first)
        assert_limited(limited)  # and as a SCIM error, like every answer under /scim/
        assert limited.headers["content-type"] == "application/scim+json"
        assert limited.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "429",
                                  "detail": "too many requests from this client"}
        second = {"Authorization": "Bearer second-made-up-credential"}
        assert (await caller.get("/scim/v2/Users", headers=second)).status_code == 401


async def test_nobody_is_exempt_by_default_since_a_sidecar_proxy_makes_every_client_loopback() -> None:
    defaults = TrackingSettings()
    assert defaults.rate_limit_exempt_clients == []
    assert defaults.rate_limit_redirects_per_second == 50 and defaults.rate_limit_redirects_burst == 200


async def test_oversized_bodies_are_refused_with_413_before_being_read(distribution: httpx.AsyncClient,
                                                                       content: httpx.AsyncClient) -> None:
    headers = token(new_tenant(), "editor", "admin")
    big = json.dumps({"title": "x" * (70 * 1024)}).encode()
    declared = await content.post("/v1/contents", content=big, headers={**headers, "content-type": "application/json"})
    assert declared.status_code == 413 and "65536" in declared.json()["detail"]

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(80):
            yield b"x" * 1024
    chunked = await content.post("/v1/contents", content=streamed(), headers=headers)
    assert chunked.status_code == 413
    # A path prefix with its own, smaller limit.
    me = token(new_tenant(), "employee")
    small = await distribution.put("/v1/me/preferences", content=b" " * 5000,
                                   headers={**me, "content-type": "application/json"})
    assert small.status_code == 413 and "4096" in small.json()["detail"]
    # Under the limits, the same routes answer as usual (here: a validation error, not a 413).
    assert (await distribution.put("/v1/me/preferences", json={"nonsense": True}, headers=me)).status_code == 422


async def test_security_headers_are_on_every_answer(tracking: httpx.AsyncClient, content: httpx.AsyncClient) -> None:
    for response in (await tracking.get("/healthz"), await content.get("/v1/contents"),
                     await client_at(tracking, "203.0.113.99").get("/r/unknown")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def content_signed(secret: str, body: bytes, at: int, webhook_id: str | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    return {"webhook-id": webhook_id, "webhook-timestamp": str(at), "content-type": "application/json",
            "webhook-signature": content_webhooks.sign(secret, webhook_id, at, body)}


async def test_content_webhooks_refuse_clock_skew_both_ways_and_a_replayed_id_with_another_body(
        content: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    secret = (await content.post("/v1/admin/sources/pr-tool/webhook-secret",
                                 headers=token(tenant, "admin"))).json()["secret"]
    url = f"/v1/webhooks/intranet/{tenant}/pr-tool"
    item = {"external_id": "SKEW-1", "source_system": "pr-tool", "title": "t", "summary": "s",
            "url": "https://acme.example/x", "language": "en", "subsidiary": "SUB-A", "version": 1}
    body = json.dumps(item).encode()
    now = int(time.time())
    async with client_at(content, "192.0.2.50") as caller:
        stale = content_signed(secret, body, now + 400)
        assert (await caller.post(url, content=body, headers=stale)).status_code == 401
        stale = content_signed(secret, body, now - 400)
        assert (await caller.post(url, content=body, headers=stale)).status_code == 401
    async with client_at(content, "192.0.2.51") as caller:
        first = content_signed(secret, body, now, "msg_fixed")
        assert (await caller.post(url, content=body, headers=first)).status_code == 202
        altered = json.dumps({**item, "title": "altered"}).encode()
        # Same id, other body, old signature: a forgery.
        assert (await caller.post(url, content=altered, headers=first)).status_code == 401


async def test_no_secret_token_or_email_address_reaches_the_logs(
        distribution: httpx.AsyncClient, tracking: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
        kafka_bootstrap: str) -> None:
    # Everything at DEBUG, as PORTEVOIX_LOG_LEVEL=DEBUG runs it: logs.configure_logging keeps the
    # Kafka client at WARNING whatever the level (its DEBUG lines show the records' bytes).
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="aiokafka")
    tenant = new_tenant()
    admin = token(tenant, "admin")
    email = f"private.person.{uuid.uuid4().hex[:6]}@example.com"
    async with client_at(distribution, "192.0.2.77") as caller:
        issued = (await caller.post("/v1/admin/scim-tokens", headers=admin, json={"description": "IdP"})).json()
        scim = {"Authorization": f"Bearer {issued['token']}", "Content-Type": "application/scim+json"}
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "externalId": "p-1",
                "active": True, "emails": [{"value": email, "primary": True}]}
        assert (await caller.post("/scim/v2/Users", headers=scim, json=user)).status_code == 201
        assert (await caller.post("/scim/v2/Users", headers=scim, json=user)).status_code == 409
        await caller.get("/scim/v2/Users", headers=scim, params={"filter": f'userName eq "{email}"'})
        await caller.get("/scim/v2/Users", headers={"Authorization": "Bearer wrong-" + issued["token"]})
    source = f"logs-{uuid.uuid4().hex[:8]}"
    created = await tracking.post(f"/v1/webhook-sources/{source}/secrets", headers=admin)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    await client_at(tracking, "192.0.2.78").post(f"/v1/webhooks/{source}", content=b"{}",
                                                 headers={"webhook-signature": "v1," + secret})
    # A dead-lettered HR record carrying the e-mail: the consumer logs the cause, never the data.
    record = to_binary(upserted(tenant, "logs-1", 1))
    data = {**json.loads(record.value), "email": email, "country": "not a country"}
    headers = [(k, v.encode()) for k, v in record.headers.items()]
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [(record.key, json.dumps(data).encode(), headers)])
    await read_topic(kafka_bootstrap, HR_EMPLOYEES.dlq.name, lambda r: header(r, "ce_id") == record.headers["ce_id"])
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)
    sensitive = [issued["token"], secret, secret.removeprefix("whsec_"), email, JWT_SECRET,
                 admin["Authorization"].removeprefix("Bearer ")]
    for record in caplog.records:
        text = record.getMessage() + str(record.args) + (str(record.exc_info) if record.exc_info else "")
        found = [s[:12] + "…" for s in sensitive if s in text]
        assert not found, f"{record.name}: {found} in {text[:200]}"


async def test_nul_characters_are_refused_with_422_before_reaching_the_database(content: httpx.AsyncClient) -> None:
    headers = token(new_tenant(), "editor")
    body = {"title": "bad\u0000title", "url": "https://acme.example/x", "language": "en"}
    refused = await content.post("/v1/contents", json=body, headers=headers)
    assert refused.status_code == 422 and "NUL" in refused.json()["detail"][0]["msg"]
    assert (await content.get("/v1/contents?state=%00", headers=headers)).status_code == 422
    fine = await content.post("/v1/contents", json={**body, "title": "good title"}, headers=headers)
    assert fine.status_code == 201


async def test_the_guard_refuses_in_scim_error_bodies_under_scim(distribution: httpx.AsyncClient) -> None:
    issued = await distribution.post("/v1/admin/scim-tokens", headers=token(new_tenant(), "admin"),
                                     json={"description": "guard"})
    headers = {"Authorization": f"Bearer {issued.json()['token']}", "content-type": "application/scim+json"}
    for body, status, scim_type, detail in ((b" " * 70_000, 413, None, "65536"),
                                            (b"[" * 1000 + b"]" * 1000, 400, "invalidSyntax", "nested"),
                                            (b'{"userName": "a\\u0000b"}', 400, "invalidSyntax", "NUL")):
        refused = await distribution.post("/scim/v2/Users", content=body, headers=headers)
        assert refused.status_code == status and refused.headers["content-type"] == "application/scim+json"
        answer = refused.json()
        assert answer["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and answer["status"] == str(status)
        assert answer.get("scimType") == scim_type and detail in answer["detail"], answer
