"""Reporting against the real Kafka and PostgreSQL: events produced by a plain producer, KPIs read
through the API. Each test owns a tenant; the service runs in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.reporting.main import ReportingSettings, create_app
from shared import topics
from shared.envelope import CloudEvent, new_event
from shared.events import (
    AmbassadorEnrolled,
    AmbassadorWithdrawn,
    ContentPublished,
    EngagementKind,
    EngagementRecorded,
    Network,
    NotificationSent,
)
from shared.topics import Topic
from tests.support import eventually, new_tenant, produce, running, settings_for, token
from tests.support import kafka_record as record

pytestmark = pytest.mark.integration
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]
NOW = datetime.now(UTC)
COUNTERS = ("contents_published", "ambassadors_enrolled", "ambassadors_withdrawn", "notified_ambassadors",
            "clicks_total", "clicks_unique_human", "shares", "reactions", "comments", "reshares", "impressions")


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One running service for the module: tenants keep the tests apart, and the consumer group
    joins once instead of once per test."""
    async with running(create_app(settings_for(ReportingSettings, kafka_bootstrap, database_url))) as client:
        yield client


def event(tenant: str, type_: str, subject: str, data: BaseModel) -> CloudEvent[Any]:
    return new_event(type_, source="tests/reporting", subject=subject, tenant=tenant, data=data)


def published(tenant: str, content_id: str, owner: str | None, campaign: str | None = None) -> CloudEvent[Any]:
    return event(tenant, "content.published", content_id, ContentPublished(
        content_id=content_id, revision=1, title=f"Title of {content_id}", url="https://example.com/news",
        language="fr", owner_subsidiary=owner, campaign=campaign, published_at=NOW))


def enrolled(tenant: str, ambassador_id: str, subsidiary: str) -> CloudEvent[Any]:
    return event(tenant, "ambassador.enrolled", ambassador_id, AmbassadorEnrolled(
        ambassador_id=ambassador_id, subsidiary=subsidiary, country="FR", language="fr", effective_at=NOW))


def withdrawn(tenant: str, ambassador_id: str) -> CloudEvent[Any]:
    return event(tenant, "ambassador.withdrawn", ambassador_id, AmbassadorWithdrawn(
        ambassador_id=ambassador_id, reason="opt-out", effective_at=NOW))


def sent(tenant: str, content_id: str, ambassador_id: str, subsidiary: str, campaign: str | None) -> CloudEvent[Any]:
    return event(tenant, "notification.sent", ambassador_id, NotificationSent(
        notification_id=str(uuid.uuid4()), content_id=content_id, ambassador_id=ambassador_id,
        subsidiary=subsidiary, campaign=campaign, channel="email", at=NOW))


def engaged(tenant: str, content_id: str, kind: EngagementKind, count: int = 1, *, human: bool = True,
            unique: bool = True, network: Network = Network.linkedin) -> CloudEvent[Any]:
    return event(tenant, "engagement.recorded", content_id, EngagementRecorded(
        content_id=content_id, kind=kind, network=network, count=count, human=human, unique=unique,
        occurred_at=NOW))


async def send(kafka_bootstrap: str, topic: Topic, *events: CloudEvent[Any]) -> None:
    await produce(kafka_bootstrap, topic.name, [record(e) for e in events])


async def kpis(client: httpx.AsyncClient, headers: dict[str, str], scope_type: str = "tenant",
               scope_id: str | None = None) -> dict[str, int]:
    params = {"scope_type": scope_type, **({"scope_id": scope_id} if scope_id else {})}
    response = await client.get("/v1/kpis", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["kpis"]


async def until(client: httpx.AsyncClient, headers: dict[str, str], kpi: str, value: int,
                scope_type: str = "tenant", scope_id: str | None = None) -> dict[str, int]:
    """Wait until the consumers have caught up to ``kpi`` = ``value``; return every KPI."""
    async def check() -> dict[str, int] | None:
        values = await kpis(client, headers, scope_type, scope_id)
        return values if values[kpi] == value else None
    return await eventually(check)


async def test_events_roll_up_into_every_scope(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    analyst = token(tenant, "analyst")
    # Content first: engagements are attributed to its owner and campaign once it is known.
    await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE,
               published(tenant, "c1", "fr", "spring"), published(tenant, "c2", "de"))
    await until(client, analyst, "contents_published", 2)

    await send(kafka_bootstrap, topics.AMBASSADORS, enrolled(tenant, "a1", "fr"), enrolled(tenant, "a2", "fr"),
               enrolled(tenant, "a3", "de"))
    await send(kafka_bootstrap, topics.AMBASSADORS, withdrawn(tenant, "a2"))
    await send(kafka_bootstrap, topics.NOTIFICATIONS, sent(tenant, "c1", "a1", "fr", "spring"),
               sent(tenant, "c1", "a2", "fr", "spring"), sent(tenant, "c2", "a3", "de", None))
    await send(kafka_bootstrap, topics.ENGAGEMENTS,
               *(engaged(tenant, "c1", EngagementKind.click) for _ in range(3)),
               engaged(tenant, "c1", EngagementKind.click, human=False),
               engaged(tenant, "c1", EngagementKind.click, unique=False, network=Network.x),
               engaged(tenant, "c1", EngagementKind.share, 2),
               engaged(tenant, "c1", EngagementKind.reaction, 5),
               engaged(tenant, "c1", EngagementKind.comment),
               engaged(tenant, "c1", EngagementKind.reshare),
               engaged(tenant, "c2", EngagementKind.click),
               engaged(tenant, "c2", EngagementKind.impression, 100))

    await until(client, analyst, "impressions", 100)
    await until(client, analyst, "ambassadors_withdrawn", 1)
    whole = await until(client, analyst, "notified_ambassadors", 3)
    assert {k: whole[k] for k in COUNTERS} == {
        "contents_published": 2, "ambassadors_enrolled": 3, "ambassadors_withdrawn": 1, "notified_ambassadors": 3,
        "clicks_total": 6, "clicks_unique_human": 4, "shares": 2, "reactions": 5, "comments": 1, "reshares": 1,
        "impressions": 100,
    }
    fr = await kpis(client, analyst, "subsidiary", "fr")
    assert (fr["contents_published"], fr["ambassadors_enrolled"], fr["ambassadors_withdrawn"],
            fr["notified_ambassadors"], fr["clicks_total"], fr["clicks_unique_human"], fr["impressions"]) \
        == (1, 2, 1, 2, 5, 3, 0)
    c1 = await kpis(client, analyst, "content", "c1")
    assert (c1["notified_ambassadors"], c1["clicks_total"], c1["clicks_unique_human"], c1["shares"],
            c1["reactions"]) == (2, 5, 3, 2, 5)
    spring = await kpis(client, analyst, "campaign", "spring")
    assert (spring["contents_published"], spring["notified_ambassadors"], spring["clicks_total"]) == (1, 2, 5)
    linkedin = await kpis(client, analyst, "network", "linkedin")
    x = await kpis(client, analyst, "network", "x")
    assert (linkedin["clicks_total"], x["clicks_total"], linkedin["impressions"]) == (5, 1, 100)

    report = await client.get("/v1/kpis/report", params={"top": 5}, headers=token(tenant, "editor"))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["tenant"] == tenant and body["kpis"] == whole
    assert [(c["content_id"], c["rank"], c["clicks"]) for c in body["top_contents"]] == [("c1", 1, 5), ("c2", 2, 1)]
    assert body["top_contents"][0]["title"] == "Title of c1" and body["top_contents"][0]["owner_subsidiary"] == "fr"


async def test_the_same_record_produced_twice_counts_once(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    analyst = token(tenant, "analyst")
    click = record(engaged(tenant, "c1", EngagementKind.click))
    # Same key as the click: same partition, so each marker is read after the copies before it.
    first_marker, second_marker = (record(engaged(tenant, "c1", EngagementKind.impression, n)) for n in (1, 10))
    await produce(kafka_bootstrap, topics.ENGAGEMENTS.name, [click, click, first_marker])
    await until(client, analyst, "impressions", 1)
    await produce(kafka_bootstrap, topics.ENGAGEMENTS.name, [click, second_marker])  # a later batch, too
    values = await until(client, analyst, "impressions", 11)
    assert (values["clicks_total"], values["clicks_unique_human"]) == (1, 1)
    assert (await kpis(client, analyst, "content", "c1"))["clicks_total"] == 1


async def test_a_tenant_never_reads_another_tenants_numbers(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    owner, other = new_tenant(), new_tenant()
    await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, published(owner, "shared-id", "fr"))
    await send(kafka_bootstrap, topics.ENGAGEMENTS, engaged(owner, "shared-id", EngagementKind.click))
    await until(client, token(owner, "admin"), "clicks_total", 1)

    intruder = token(other, "admin")
    response = await client.get("/v1/kpis", params={"scope_type": "tenant", "scope_id": owner}, headers=intruder)
    assert response.status_code == 200
    assert response.json()["tenant"] == other
    assert all(response.json()["kpis"][k] == 0 for k in COUNTERS)
    for values in (await kpis(client, intruder, "content", "shared-id"), await kpis(client, intruder)):
        assert all(values[k] == 0 for k in COUNTERS)
    report = (await client.get("/v1/kpis/report", headers=intruder)).json()
    assert report["top_contents"] == [] and all(report["kpis"][k] == 0 for k in COUNTERS)
    for board in ("contents", "subsidiaries", "ambassadors"):
        listed = await client.get(f"/v1/kpis/leaderboards/{board}", params={"kpi": "clicks_total"}, headers=intruder)
        assert listed.status_code == 200 and listed.json()["entries"] == []


async def test_subsidiary_token_reads_only_its_own_subsidiary(client: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    group = token(tenant, "analyst")
    await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, published(tenant, "ours", "fr"),
               published(tenant, "theirs", "de"))
    await until(client, group, "contents_published", 2)  # the owners are known before the click
    await send(kafka_bootstrap, topics.ENGAGEMENTS, engaged(tenant, "ours", EngagementKind.click))
    await until(client, group, "clicks_total", 1, "subsidiary", "fr")

    fr = token(tenant, "analyst", subsidiary="fr")
    assert (await kpis(client, fr, "subsidiary", "fr"))["clicks_total"] == 1
    assert (await kpis(client, fr, "content", "ours"))["clicks_total"] == 1
    refused = [("subsidiary", "de"), ("content", "theirs"), ("content", "unknown"), ("tenant", tenant),
               ("tenant", None), ("campaign", "spring"), ("network", "linkedin"), ("department", "de/sales"),
               ("ambassador", "unknown")]
    for scope_type, scope_id in refused:
        params = {"scope_type": scope_type, **({"scope_id": scope_id} if scope_id else {})}
        response = await client.get("/v1/kpis", params=params, headers=fr)
        assert response.status_code == 403, (scope_type, scope_id, response.text)
    assert (await client.get("/v1/kpis/report", headers=fr)).status_code == 403
    assert (await client.get("/v1/kpis/series", params={"scope_type": "subsidiary", "scope_id": "de"},
                             headers=fr)).status_code == 403
    assert (await client.get("/v1/kpis/webhooks", headers=token(tenant, "admin", subsidiary="fr"))).status_code == 403
    board = (await client.get("/v1/kpis/leaderboards/contents", params={"kpi": "clicks_total"}, headers=fr)).json()
    assert [e["id"] for e in board["entries"]] == ["ours"]  # "theirs" is not fr's to see


async def test_bad_requests_are_refused(client: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    assert (await client.get("/v1/kpis")).status_code == 401
    assert (await client.get("/v1/kpis", headers={"Authorization": "Bearer nonsense"})).status_code == 401
    assert (await client.get("/v1/kpis", headers=token(tenant, "ambassador"))).status_code == 403
    analyst = token(tenant, "analyst")
    assert (await client.get("/v1/kpis", params={"scope_type": "galaxy"}, headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis", params={"scope_type": "content"}, headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis/report", params={"top": 0}, headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis", params={"window": "week"}, headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis/series", params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
                             headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis/digest", params={"month": "2026-13"}, headers=analyst)).status_code == 422
    # Instants whose windows would start before the all-time window or end past datetime's years
    # (found by the fuzz suite as 500s).
    for params in ({"window": "all", "at": "0003-08-15T08:14:02Z"}, {"window": "hour", "at": "9999-12-31T23:30:00Z"},
                   {"window": "month", "at": "0001-01-01T00:00:00+05:00"}):
        response = await client.get("/v1/kpis", params=params, headers=analyst)
        assert response.status_code == 422 and "must lie from 1970-01-01" in response.text, (params, response.text)
    assert (await client.get("/v1/kpis/series", params={"from": "1969-12-31T23:00:00Z"},
                             headers=analyst)).status_code == 422
    response = await client.get("/v1/kpis", params={"window": "day", "at": "2026-03-01T23:30:00"}, headers=analyst)
    assert response.status_code == 422 and "time zone offset" in response.text  # naive: the server's zone
    for month in ("0000-01", "0001-01", "9999-12"):
        assert (await client.get("/v1/kpis/digest", params={"month": month}, headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis", params={"window": "month", "at": "1970-01-01T00:00:00Z"},
                             headers=analyst)).status_code == 200
    assert (await client.get("/v1/kpis/leaderboards/planets", headers=analyst)).status_code == 422
    assert (await client.get("/v1/kpis/leaderboards/contents", params={"kpi": "nonsense"},
                             headers=analyst)).status_code == 422
    assert (await client.put("/v1/kpis/media-rates", json={"currency": "EUR", "rates": {}},
                             headers=analyst)).status_code == 403
    assert (await client.put("/v1/kpis/media-rates", json={"currency": "euro", "rates": {}},
                             headers=token(tenant, "admin"))).status_code == 422
    assert (await client.get("/v1/kpis/media-rates", headers=analyst)).status_code == 404
    response = await client.get("/v1/kpis", headers=analyst)
    assert response.status_code == 200
    body = response.json()
    assert (body["tenant"], body["scope_type"], body["scope_id"], body["window"]) == (tenant, "tenant", tenant, "all")
    assert all(body["kpis"][k] == 0 for k in COUNTERS)
    assert "adoption_rate" not in body["kpis"]  # nobody notified: undefined, not 0
