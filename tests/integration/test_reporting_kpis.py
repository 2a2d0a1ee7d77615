"""Reporting's KPIs against the real Kafka and PostgreSQL, on a small hand-computed dataset:
every KPI definition, windows and scopes, arrival out of order, duplicates, a batch that fails
once mid-way, replay into an empty schema, the KPI stream, leaderboards, CSV, the digest and
outbound webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from services.reporting import handlers, jobs
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
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token
from tests.support import kafka_record as record

pytestmark = pytest.mark.integration
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(tenant: str, type_: str, subject: str, data: BaseModel) -> CloudEvent[Any]:
    return new_event(type_, source="tests/reporting-kpis", subject=subject, tenant=tenant, data=data)


class Dataset:
    """May and June 2025 of one tenant. Ambassadors: a1 (fr/mkt, named, linkedin 1000, x 200),
    a2 (fr/sales, linkedin 500, withdrawn 06-20), a3 (de/mkt, named, linkedin 300, enrolled
    06-10), a4 (de/mkt, enrolled 06-15, never shares). Contents: c0 (fr, 05-15), c1 (fr, spring,
    06-01 08:00), c2 (de, 06-02 10:00)."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        t = tenant

        def ambassador(aid: str, sub: str, dep: str, audience: dict[Network, int], name: str | None,
                       when: str) -> CloudEvent[Any]:
            return event(t, "ambassador.enrolled", aid, AmbassadorEnrolled(
                ambassador_id=aid, subsidiary=sub, department=dep, country="FR", language="fr",
                network_audience=audience, named_in_leaderboards=name is not None, display_name=name,
                effective_at=at(when)))

        def content(cid: str, owner: str, campaign: str | None, when: str) -> CloudEvent[Any]:
            return event(t, "content.published", cid, ContentPublished(
                content_id=cid, revision=1, title=f"Title {cid}", url="https://example.com/n", language="fr",
                owner_subsidiary=owner, campaign=campaign, published_at=at(when)))

        def sent(cid: str, aid: str, sub: str, dep: str, campaign: str | None, when: str) -> CloudEvent[Any]:
            return event(t, "notification.sent", aid, NotificationSent(
                notification_id=str(uuid.uuid4()), content_id=cid, ambassador_id=aid, subsidiary=sub, department=dep,
                campaign=campaign, channel="email", at=at(when)))

        def engaged(cid: str, aid: str | None, kind: EngagementKind, when: str, count: int = 1,
                    network: Network = Network.linkedin, human: bool = True, unique: bool = True) -> CloudEvent[Any]:
            return event(t, "engagement.recorded", cid, EngagementRecorded(
                content_id=cid, ambassador_id=aid, kind=kind, network=network, count=count, human=human,
                unique=unique, occurred_at=at(when)))

        li, x = Network.linkedin, Network.x
        self.ambassadors = [
            ambassador("a1", "fr", "mkt", {li: 1000, x: 200}, "Ada L.", "2025-05-01T00:00:00"),
            ambassador("a2", "fr", "sales", {li: 500}, None, "2025-05-01T00:00:00"),
            ambassador("a3", "de", "mkt", {li: 300}, "Cy", "2025-06-10T00:00:00"),
            ambassador("a4", "de", "mkt", {li: 50}, None, "2025-06-15T00:00:00"),
            event(t, "ambassador.withdrawn", "a2", AmbassadorWithdrawn(
                ambassador_id="a2", reason="opt-out", effective_at=at("2025-06-20T00:00:00"))),
        ]
        self.contents = [content("c0", "fr", None, "2025-05-15T00:00:00"),
                         content("c1", "fr", "spring", "2025-06-01T08:00:00"),
                         content("c2", "de", None, "2025-06-02T10:00:00")]
        self.notifications = [
            sent("c0", "a2", "fr", "sales", None, "2025-05-16T09:00:00"),
            sent("c1", "a1", "fr", "mkt", "spring", "2025-06-01T09:00:00"),
            sent("c1", "a2", "fr", "sales", "spring", "2025-06-01T09:00:00"),
            sent("c2", "a3", "de", "mkt", None, "2025-06-02T11:00:00"),
            sent("c2", "a1", "fr", "mkt", None, "2025-06-02T11:00:00"),
        ]
        S, C = EngagementKind.share, EngagementKind.click
        self.engagements = [
            engaged("c0", "a2", S, "2025-05-20T00:00:00"),
            engaged("c1", "a1", S, "2025-06-01T10:00:00"),
            engaged("c1", "a1", S, "2025-06-01T11:00:00", network=x),
            engaged("c2", "a3", S, "2025-06-02T13:00:00"),
            engaged("c1", "a1", S, "2025-06-03T09:00:00"),
            *(engaged("c1", "a1", C, f"2025-06-01T1{i}:30:00") for i in range(3)),
            engaged("c1", "a1", C, "2025-06-01T12:00:00", human=False),
            engaged("c2", "a3", C, "2025-06-02T14:00:00", unique=False),
            engaged("c1", "a1", EngagementKind.impression, "2025-06-01T12:00:00", count=1000),
            engaged("c2", "a3", EngagementKind.impression, "2025-06-02T15:00:00", count=500),
            engaged("c1", "a1", EngagementKind.reaction, "2025-06-01T13:00:00", count=10),
            engaged("c2", "a3", EngagementKind.comment, "2025-06-02T16:00:00", count=2),
            engaged("c1", "a1", EngagementKind.reshare, "2025-06-01T14:00:00"),
        ]


JUNE = "2025-06-15T00:00:00Z"
MAY = "2025-05-15T00:00:00Z"
# Hand-computed from the dataset's docstring (see each comment).
JUNE_TENANT = {
    "contents_published": 2, "notifications_sent": 4,
    "notified_ambassadors": 3,  # a1, a2, a3
    "shares": 4, "sharing_ambassadors": 2,  # a1, a3
    "adoption_rate": 0.666667,
    "potential_reach": 1500,  # a1|linkedin 1000 + a1|x 200 + a3|linkedin 300 (a1's second linkedin share: once)
    "clicks_total": 5, "clicks_unique_human": 3, "reactions": 10, "comments": 2, "reshares": 1,
    "impressions": 1500, "engagements": 18, "engagement_rate": 0.012,
    "earned_media_value": 25.0,  # linkedin: 1500 x 10 / 1000 + 5 clicks x 2; x: nothing
    "enrolled_ambassadors": 3,  # at 07-01: a1, a3, a4 (a2 withdrawn 06-20)
    "active_ambassadors": 2,  # shared in the 30 days before 07-01: a1, a3
    "activation_rate": 0.666667,
    "median_time_to_first_share_seconds": 9000.0,  # c1 2 h, c2 3 h
    "ambassadors_enrolled": 2, "ambassadors_withdrawn": 1,
}
MAY_TENANT = {
    "contents_published": 1, "notified_ambassadors": 1, "shares": 1, "sharing_ambassadors": 1,
    "adoption_rate": 1.0, "potential_reach": 500,
    "enrolled_ambassadors": 2,  # at 06-01: a1, a2 (not today's a1, a3, a4)
    "active_ambassadors": 1, "activation_rate": 0.5,
    "median_time_to_first_share_seconds": 432000.0,  # c0: 5 days
}


def settings(kafka_bootstrap: str, database_url: str, **extra: Any) -> ReportingSettings:
    return settings_for(ReportingSettings, kafka_bootstrap, database_url, kpi_stream_min_interval_seconds=0.2,
                        kpi_stream_tick_seconds=0.1, webhook_tick_seconds=0.1,
                        webhook_retry_delays_seconds=[0.2, 0.2, 0.2], consumer_max_records=20, **extra)


async def send(kafka_bootstrap: str, topic: Topic, events: list[CloudEvent[Any]]) -> None:
    await produce(kafka_bootstrap, topic.name, [record(e) for e in events])


async def get(client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json() if "json" in response.headers["content-type"] else response.text


async def kpis(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    return (await get(client, "/v1/kpis", headers, **params))["kpis"]


async def settled(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Wait until every event of the dataset is counted (the last figures each topic moves)."""
    async def check() -> bool:
        june = await kpis(client, headers, window="month", at=JUNE)
        may = await kpis(client, headers, window="month", at=MAY)
        return (june.get("potential_reach") == 1500 and june["notifications_sent"] == 4
                and june["ambassadors_withdrawn"] == 1 and june.get("ambassadors_enrolled") == 2
                and june["contents_published"] == 2
                and june["impressions"] == 1500 and june["comments"] == 2 and may["potential_reach"] == 500)
    await eventually(check, timeout=60)


def subset(values: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in expected}


@contextlib.asynccontextmanager
async def fails_once_on(event_id: str) -> AsyncIterator[list[str]]:
    """Wrap the engagement handler: the first batch holding ``event_id`` does its work, then
    raises (a crash mid-batch); the consumer must roll it back and redo it."""
    real = handlers.on_engagements
    raised: list[str] = []

    async def flaky(conn: asyncpg.Connection, events: list[CloudEvent[Any]]) -> None:
        await real(conn, events)
        if not raised and any(e.id == event_id for e in events):
            raised.append(event_id)
            raise RuntimeError("crash mid-batch")

    handlers.on_engagements = flaky  # type: ignore[assignment]
    try:
        yield raised
    finally:
        handlers.on_engagements = real  # type: ignore[assignment]


async def test_every_kpi_on_hand_computed_data_whatever_the_order_duplicates_and_crashes(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    data = Dataset(tenant)
    admin, analyst = token(tenant, "admin"), token(tenant, "analyst")
    replay_schema = f"reporting_replay_{uuid.uuid4().hex[:8]}"
    name = f"reporting_kpis_{uuid.uuid4().hex[:8]}"  # a fresh schema and groups: the test owns them
    async with fails_once_on(data.engagements[5].id) as raised, \
            running(create_app(settings(kafka_bootstrap, database_url), name=name)) as client:
        response = await client.put("/v1/kpis/media-rates", headers=admin, json={
            "currency": "EUR", "rates": {"linkedin": {"cpm": 10, "cpc": 2}, "x": {"cpm": 5, "cpc": 1}}})
        assert response.status_code == 200, response.text
        # The worst order: engagements before the contents and ambassadors they are attributed
        # to; and some records twice, in the same and in later batches.
        await send(kafka_bootstrap, topics.ENGAGEMENTS, data.engagements + data.engagements[:4])
        await send(kafka_bootstrap, topics.NOTIFICATIONS, data.notifications + data.notifications[1:2])
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, data.contents)
        await send(kafka_bootstrap, topics.AMBASSADORS, data.ambassadors)
        await send(kafka_bootstrap, topics.ENGAGEMENTS, data.engagements[3:6])
        await settled(client, analyst)
        assert raised, "the crash mid-batch happened"

        june = await kpis(client, analyst, window="month", at=JUNE)
        assert subset(june, JUNE_TENANT) == JUNE_TENANT
        may = await kpis(client, analyst, window="month", at=MAY)
        assert subset(may, MAY_TENANT) == MAY_TENANT
        whole = await kpis(client, analyst)
        assert (whole["shares"], whole["potential_reach"], whole["notified_ambassadors"]) == (5, 1500 + 500, 3)

        # Scopes: subsidiary (the sharer's), department, campaign, content, network, ambassador.
        scope = {"window": "month", "at": JUNE}
        fr = await kpis(client, analyst, scope_type="subsidiary", scope_id="fr", **scope)
        assert subset(fr, {"shares": 3, "sharing_ambassadors": 1, "notified_ambassadors": 2, "potential_reach": 1200,
                           "clicks_total": 4, "enrolled_ambassadors": 1, "contents_published": 1}) == \
            {"shares": 3, "sharing_ambassadors": 1, "notified_ambassadors": 2, "potential_reach": 1200,
             "clicks_total": 4, "enrolled_ambassadors": 1, "contents_published": 1}
        de_mkt = await kpis(client, analyst, scope_type="department", scope_id="de/mkt", **scope)
        assert (de_mkt["shares"], de_mkt["potential_reach"], de_mkt["enrolled_ambassadors"]) == (1, 300, 2)
        spring = await kpis(client, analyst, scope_type="campaign", scope_id="spring", **scope)
        assert (spring["shares"], spring["clicks_total"], spring["notified_ambassadors"]) == (3, 4, 2)
        c1 = await kpis(client, analyst, scope_type="content", scope_id="c1", **scope)
        assert (c1["notified_ambassadors"], c1["median_time_to_first_share_seconds"]) == (2, 7200.0)
        x = await kpis(client, analyst, scope_type="network", scope_id="x", **scope)
        assert (x["shares"], x["potential_reach"], x["earned_media_value"]) == (1, 200, 0.0)
        a1 = await kpis(client, analyst, scope_type="ambassador", scope_id="a1", **scope)
        assert (a1["shares"], a1["potential_reach"], a1["clicks_unique_human"]) == (3, 1200, 3)
        hour = await kpis(client, analyst, window="hour", at="2025-06-01T10:15:00Z")
        assert (hour["shares"], hour["clicks_total"]) == (1, 1)
        day = await kpis(client, analyst, window="day", at="2025-06-02T23:00:00Z")
        assert (day["shares"], day["clicks_total"], day["comments"]) == (1, 1, 2)

        # Time series, and its CSV.
        series = await get(client, "/v1/kpis/series", analyst, window="day", **{
            "from": "2025-06-01T00:00:00Z", "to": "2025-06-03T00:00:00Z"})
        assert [p["kpis"]["shares"] for p in series["points"]] == [2, 1, 1]
        assert (series["truncated"], series["windows_in_range"]) == (False, 3)
        # A range longer than the limit: its newest windows, flagged (was: the oldest, silently).
        cut = await get(client, "/v1/kpis/series", analyst, window="day", limit=3, **{
            "from": "2025-01-01T00:00:00Z", "to": "2025-06-03T00:00:00Z"})
        assert [p["window_start"][:10] for p in cut["points"]] == ["2025-06-01", "2025-06-02", "2025-06-03"]
        assert [p["kpis"]["shares"] for p in cut["points"]] == [2, 1, 1]
        assert (cut["truncated"], cut["windows_in_range"]) == (True, 154)
        days = {"from": "2025-06-01T00:00:00Z", "to": "2025-06-03T00:00:00Z"}
        rows = list(csv.DictReader(io.StringIO(await get(client, "/v1/kpis/series", analyst, window="day", format="csv",
                                                         **days))))
        assert [(r["window_start"][:10], r["shares"], r["clicks_total"]) for r in rows] == [
            ("2025-06-01", "2", "4"), ("2025-06-02", "1", "1"), ("2025-06-03", "1", "0")]

        # Leaderboards: only named ambassadors, by the name they chose to publish, never by id;
        # ties share a rank; CSV.
        board = await get(client, "/v1/kpis/leaderboards/ambassadors", analyst, kpi="shares", window="month", at=JUNE)
        assert [(e["rank"], e["id"], e["name"], e["value"]) for e in board["entries"]] == [
            (1, None, "Ada L.", 3), (2, None, "Cy", 1)]
        may_board = await get(client, "/v1/kpis/leaderboards/ambassadors", analyst, kpi="shares", window="month",
                              at=MAY)
        assert may_board["entries"] == []  # a2 shared, but never chose to be named
        board_csv = await get(client, "/v1/kpis/leaderboards/ambassadors", analyst, kpi="shares", window="month",
                              at=JUNE, format="csv")
        assert list(csv.reader(io.StringIO(board_csv))) == [["rank", "label", "value"], ["1", "Ada L.", "3"],
                                                              ["2", "Cy", "1"]]
        tie = await get(client, "/v1/kpis/leaderboards/subsidiaries", analyst, kpi="sharing_ambassadors",
                        window="month", at=JUNE)
        assert [(e["rank"], e["id"], e["value"]) for e in tie["entries"]] == [(1, "de", 1), (1, "fr", 1)]
        cut = await get(client, "/v1/kpis/leaderboards/subsidiaries", analyst, kpi="sharing_ambassadors",
                        window="month", at=JUNE, top=1)
        assert len(cut["entries"]) == 2  # a tie at the cut is kept whole
        posts = await get(client, "/v1/kpis/leaderboards/contents", analyst, kpi="engagements", window="month", at=JUNE,
                          format="csv")
        assert list(csv.reader(io.StringIO(posts))) == [["rank", "id", "value", "title"], ["1", "c1", "15", "Title c1"],
                                                          ["2", "c2", "3", "Title c2"]]

        # The monthly digest, JSON and HTML.
        digest = await get(client, "/v1/kpis/digest", analyst, month="2025-06")
        by_kpi = {k["kpi"]: k for k in digest["kpis"]}
        assert (by_kpi["shares"]["value"], by_kpi["shares"]["previous"], by_kpi["shares"]["change"]) == (4, 1, 3.0)
        assert by_kpi["potential_reach"]["kind"] == "estimated" and by_kpi["shares"]["kind"] == "measured"
        assert [p["id"] for p in digest["best_posts"]] == ["c1", "c2"]
        assert [(a["id"], a["label"]) for a in digest["best_ambassadors"]] == [(None, "Ada L."), (None, "Cy")]
        page = await get(client, "/v1/kpis/digest", analyst, month="2025-06", format="html")
        assert "<html" in page and "Title c1" in page and "#1 Ada L. —" in page
        assert "a1" not in page.split("Best ambassadors")[1]
        may_page = await get(client, "/v1/kpis/digest", analyst, month="2025-05", format="html")
        assert "No named ambassador" in may_page and "a2" not in may_page.split("Best ambassadors")[1]

        # Definitions: one per KPI served, versioned, measured vs estimated.
        definitions = await get(client, "/v1/kpis/definitions", analyst)
        names = {d["name"]: d["kind"] for d in definitions["definitions"]}
        assert definitions["version"] == "1" and set(JUNE_TENANT) <= set(names)
        assert (names["potential_reach"], names["earned_media_value"], names["shares"]) == \
            ("estimated", "estimated", "measured")

        # The KPI stream: the tenant's all-time key carries the latest values.
        stream_key = f"{tenant}/tenant/{tenant}/all/all".encode()
        async def every_emission() -> list[Any]:  # the whole topic (read for 4 s), not the first match
            return await read_topic(kafka_bootstrap, topics.KPIS.name, lambda r: r.key == stream_key,
                                    expect=10**9, timeout=4)

        async def latest() -> dict[str, float] | None:
            found = await every_emission()
            values = json.loads(found[-1].value)["values"] if found else None
            return values if values and values.get("potential_reach") == 2000 else None
        values = await eventually(latest, timeout=40)
        assert (values["shares"], values["notified_ambassadors"], values["earned_media_value"]) == (5, 3, 25.0)
        found = await every_emission()
        assert header(found[-1], "ce_type") == "kpi.changed"
        emitted = [json.loads(r.value)["values"] for r in found]
        assert all(a != b for a, b in zip(emitted, emitted[1:], strict=False))

    # Replay: the same topics from the start, into an empty schema, give identical rollups.
    query = """SELECT scope_type, scope_id, time_window, window_start, kpi, value FROM {}.rollups
               WHERE tenant = $1 ORDER BY 1, 2, 3, 4, 5"""
    conn = await asyncpg.connect(database_url)
    try:
        async with running(create_app(settings(kafka_bootstrap, database_url), name=replay_schema)) as replay:
            await settled(replay, analyst)

            async def identical() -> bool:
                original = await conn.fetch(query.format(name), tenant)
                return original == await conn.fetch(query.format(replay_schema), tenant)
            await eventually(identical, timeout=30)
        assert len(await conn.fetch(query.format(name), tenant)) > 500
        for schema in (name, replay_schema):
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.pending_engagements WHERE tenant = $1",
                                       tenant) == 0
    finally:
        for schema in (replay_schema, name):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


# --- outbound webhooks ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def receiver(fail_first: int) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint on loopback that answers 500 to its first ``fail_first`` calls."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(status_code=500 if len(received) <= fail_first else 204)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        server.should_exit = True
        await task


async def test_webhooks_are_signed_retried_and_replayable(kafka_bootstrap: str, database_url: str) -> None:
    tenant, other = new_tenant(), new_tenant()
    admin = token(tenant, "admin")
    app = create_app(settings(kafka_bootstrap, database_url))
    async with receiver(fail_first=1) as (url, received), running(app) as client:
        assert (await client.post("/v1/kpis/webhooks", json={"url": "not a url", "event_types": ["kpi.changed"]},
                                  headers=admin)).status_code == 422
        assert (await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.gossip"]},
                                  headers=admin)).status_code == 422
        assert (await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.changed"]},
                                  headers=token(tenant, "analyst"))).status_code == 403
        created = await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.milestone"]},
                                    headers=admin)
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]

        shares = [event(tenant, "engagement.recorded", "c1", EngagementRecorded(
            content_id="c1", kind=EngagementKind.share, network=Network.linkedin, count=10,
            occurred_at=datetime.now(UTC)))]
        await send(kafka_bootstrap, topics.ENGAGEMENTS, shares)

        async def delivered() -> list[dict[str, Any]] | None:
            listed = await get(client, "/v1/kpis/webhooks/deliveries", admin)
            return listed if listed and listed[0]["status"] == "delivered" else None
        deliveries = await eventually(delivered)
        assert len(deliveries) == 1 and deliveries[0]["attempts"] == 2  # 500 first, then retried
        assert deliveries[0]["payload"] == {**deliveries[0]["payload"], "kpi": "shares", "threshold": 10}
        first, second = received
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
        for call in received:
            h = call["headers"]
            assert h["webhook-signature"] == jobs.signature(secret, h["webhook-id"], int(h["webhook-timestamp"]),
                                                            call["body"])
        assert json.loads(second["body"])["type"] == "kpi.milestone"

        delivery_id = deliveries[0]["id"]
        assert (await client.post(f"/v1/kpis/webhooks/deliveries/{delivery_id}/replay",
                                  headers=token(other, "admin"))).status_code == 404
        assert (await client.post(f"/v1/kpis/webhooks/deliveries/{delivery_id}/replay",
                                  headers=admin)).status_code == 202
        await eventually(lambda: asyncio.sleep(0, len(received) == 3))
        assert received[2]["body"] == second["body"]
        assert await get(client, "/v1/kpis/webhooks/deliveries", token(other, "admin")) == []


SHARES = 9_000_000  # more than any other test tenant: within the largest tenants the gauges keep


async def test_business_gauges_per_tenant_and_subsidiary(kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    app = create_app(settings(kafka_bootstrap, database_url, gauge_tick_seconds=0.2))
    async with running(app) as client:
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [event(
            tenant, "content.published", "g1", ContentPublished(
                content_id="g1", revision=1, title="g", url="https://example.com/g", language="fr",
                owner_subsidiary="fr", published_at=datetime.now(UTC)))])
        await eventually(lambda: _content_known(client, tenant))
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [event(tenant, "engagement.recorded", "g1", EngagementRecorded(
            content_id="g1", kind=EngagementKind.share, network=Network.linkedin, count=SHARES,
            occurred_at=datetime.now(UTC)))])

        def gauge(text: str, subsidiary: str) -> float | None:
            prefix = f'portevoix_business_kpi{{kpi="shares",subsidiary="{subsidiary}",tenant="{tenant}"}} '
            return next((float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)),
                        None)

        async def exposed() -> str | None:
            text = (await client.get("/metrics")).text
            return text if gauge(text, "fr") == SHARES else None
        text = await eventually(exposed)
        assert gauge(text, "") == SHARES
        assert "ambassador" not in {label for line in text.splitlines() if line.startswith("portevoix_business_kpi")
                                    for label in line.split("{")[1].split("}")[0].split(",")}


async def _content_known(client: httpx.AsyncClient, tenant: str) -> bool:
    values = await kpis(client, token(tenant, "analyst"))
    return values["contents_published"] == 1
