"""Tracking against the real broker and database: links learnt from notification.sent, the
redirector's 302 with UTM parameters, the engagement read back from Kafka, and the codes it
must refuse."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from services.tracking.main import TrackingSettings, create_app
from shared.auth import holder_digest
from shared.envelope import CloudEvent, new_event, record_key, to_binary
from shared.events import AmbassadorEnrolled, NotificationSent, TrackedLink
from shared.topics import AMBASSADORS, ENGAGEMENTS, NOTIFICATIONS
from tests.support import IDENTITY_KEY, eventually, header, new_tenant, produce, read_topic, running, settings_for

pytestmark = pytest.mark.integration

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
LINKEDIN_PREVIEW = {
    "User-Agent": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"}


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings_for(TrackingSettings, kafka_bootstrap, database_url))) as client:
        yield client


def record_of(event: CloudEvent) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:  # type: ignore[type-arg]
    record = to_binary(event)
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]


async def enrol(kafka_bootstrap: str, tenant: str, ambassador_id: str, subject: str = "user-1") -> None:
    """Produce an ambassador.enrolled as distribution would: the ambassador held by ``subject``."""
    event = new_event("ambassador.enrolled", source="portevoix/distribution", subject=ambassador_id, tenant=tenant,
                      data=AmbassadorEnrolled(ambassador_id=ambassador_id, subsidiary="FR01", country="FR",
                                              language="fr", holder=holder_digest(IDENTITY_KEY, tenant, subject),
                                              effective_at=datetime.now(UTC)))
    await produce(kafka_bootstrap, AMBASSADORS.name, [record_of(event)])


async def notify(kafka_bootstrap: str, tenant: str, destination: str,
                 campaign: str | None, holder_subject: str = "user-1") -> tuple[str, str, str, str]:
    """Produce an ambassador.enrolled (held by ``holder_subject``) and a notification.sent as
    distribution would; return (content, ambassador, linkedin code, x code)."""
    content_id, ambassador_id = str(uuid.uuid4()), str(uuid.uuid4())
    await enrol(kafka_bootstrap, tenant, ambassador_id, holder_subject)
    codes = [secrets.token_urlsafe(12), secrets.token_urlsafe(12)]
    notification_id = str(uuid.uuid4())
    event = new_event("notification.sent", source="portevoix/distribution", subject=notification_id, tenant=tenant,
                      data=NotificationSent(
                          notification_id=notification_id, content_id=content_id, ambassador_id=ambassador_id,
                          subsidiary="FR01", campaign=campaign, channel="in_app", at=datetime.now(UTC),
                          links=[TrackedLink(code=codes[0], network="linkedin", destination_url=destination),
                                 TrackedLink(code=codes[1], network="x", destination_url=destination)]))
    await produce(kafka_bootstrap, NOTIFICATIONS.name, [record_of(event)])
    return content_id, ambassador_id, codes[0], codes[1]


async def first_click(client: httpx.AsyncClient, code: str) -> httpx.Response:
    """Click once tracking has learnt the link (404 until then; a 404 records nothing)."""
    async def learnt() -> httpx.Response | None:
        response = await client.get(f"/r/{code}", headers=BROWSER)
        return response if response.status_code != 404 else None

    return await eventually(learnt, timeout=60)


async def test_a_click_redirects_with_utm_and_is_recorded(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    content_id, ambassador_id, linkedin, x = await notify(
        kafka_bootstrap, tenant, "https://www.example.com/jobs?team=lyon&ref=a%20b#apply", campaign=None)

    response = await first_click(client, linkedin)
    assert response.status_code == 302, response.text
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https", "www.example.com", "/jobs", "apply")
    assert location.query.startswith("team=lyon&ref=a%20b&")
    assert dict(parse_qsl(location.query)) == {
        "team": "lyon", "ref": "a b", "utm_source": "linkedin", "utm_medium": "employee-advocacy",
        "utm_campaign": content_id, "utm_content": linkedin}  # the link's code, never the person's id
    assert ambassador_id not in response.headers["location"]

    [engagement] = await read_topic(kafka_bootstrap, ENGAGEMENTS.name,
                                    lambda r: header(r, "ce_tenantid") == tenant, settle=1.0)
    assert engagement.key == record_key(tenant, content_id)
    assert header(engagement, "ce_type") == "engagement.recorded"
    assert header(engagement, "ce_subject") == content_id
    data = json.loads(engagement.value)
    assert {k: data[k] for k in ("content_id", "kind", "network", "ambassador_id", "link_code", "human", "unique",
                                 "count")} == {
        "content_id": content_id, "kind": "click", "network": "linkedin", "ambassador_id": ambassador_id,
        "link_code": linkedin, "human": True, "unique": True, "count": 1}

    # The same browser again: counted, not unique. A link-preview robot: unique but not human.
    assert (await client.get(f"/r/{linkedin}", headers=BROWSER)).status_code == 302
    assert (await client.get(f"/r/{linkedin}", headers=LINKEDIN_PREVIEW)).status_code == 302
    on_x = await client.get(f"/r/{x}", headers=BROWSER)
    assert dict(parse_qsl(urlsplit(on_x.headers["location"]).query))["utm_source"] == "x"

    engagements = await read_topic(kafka_bootstrap, ENGAGEMENTS.name,
                                   lambda r: header(r, "ce_tenantid") == tenant, expect=4, settle=1.0)
    seen = [(d["link_code"], d["human"], d["unique"]) for d in (json.loads(r.value) for r in engagements)]
    assert seen == [(linkedin, True, True), (linkedin, True, False), (linkedin, False, True), (x, True, True)]


async def test_the_campaign_names_the_utm_campaign(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    _, _, linkedin, _ = await notify(kafka_bootstrap, new_tenant(), "https://www.example.com/", campaign="spring")
    response = await first_click(client, linkedin)
    assert dict(parse_qsl(urlsplit(response.headers["location"]).query))["utm_campaign"] == "spring"


@pytest.mark.parametrize("path", [
    "/r/unknownCode123",
    "/r//evil.example",
    "/r/%2F%2Fevil.example",
    "/r/https://evil.example/phish",
    "/r/abc",
    "/r/",
    "/r/abcdef%0d%0aLocation:%20https://evil.example",
])
async def test_unknown_and_malformed_codes_get_a_404_page(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "Link not found" in response.text

