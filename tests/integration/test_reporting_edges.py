"""Reporting's edges against the real Kafka and PostgreSQL (issue 17 item 8): engagements dated
before their content, KPI webhook subscriptions that can be paused and deleted, milestones, the
directory KPIs on the stream, the business gauges the dashboard queries."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from services.reporting.main import ReportingSettings, create_app
from shared import metrics, topics
from shared.envelope import CloudEvent, new_event
from shared.events import AmbassadorEnrolled, ContentPublished, EngagementKind, EngagementRecorded, Network
from shared.topics import Topic
from tests.integration.test_reporting_kpis import receiver
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token
from tests.support import kafka_record as record

pytestmark = pytest.mark.integration


def settings(kafka_bootstrap: str, database_url: str, **extra: Any) -> ReportingSettings:
    return settings_for(ReportingSettings, kafka_bootstrap, database_url, kpi_stream_min_interval_seconds=0.2,
                        kpi_stream_tick_seconds=0.1, webhook_tick_seconds=0.1,
                        webhook_retry_delays_seconds=[0.1, 0.1, 0.1], **extra)


def event(tenant: str, type_: str, subject: str, data: BaseModel) -> CloudEvent[Any]:
    return new_event(type_, source="tests/reporting-edges", subject=subject, tenant=tenant, data=data)


async def send(kafka_bootstrap: str, topic: Topic, events: list[CloudEvent[Any]]) -> None:
    await produce(kafka_bootstrap, topic.name, [record(e) for e in events])


def published(tenant: str, content_id: str, when: datetime, owner: str = "fr") -> CloudEvent[Any]:
    return event(tenant, "content.published", content_id, ContentPublished(
        content_id=content_id, revision=1, title=f"Title {content_id}", url="https://example.com/n", language="fr",
        owner_subsidiary=owner, published_at=when))


def engaged(tenant: str, content_id: str, kind: EngagementKind, when: datetime, count: int = 1,
            ambassador_id: str | None = None) -> CloudEvent[Any]:
    return event(tenant, "engagement.recorded", content_id, EngagementRecorded(
        content_id=content_id, ambassador_id=ambassador_id, kind=kind, network=Network.linkedin, count=count,
        occurred_at=when))


async def kpis(client: httpx.AsyncClient, tenant: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/kpis", params=params, headers=token(tenant, "analyst"))
    assert response.status_code == 200, response.text
    return response.json()["kpis"]


async def test_an_engagement_dated_before_its_content_was_published_is_dead_lettered_with_its_cause(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    now = datetime.now(UTC)
    async with running(create_app(settings(kafka_bootstrap, database_url))) as client:
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "today", now)])
        await eventually(lambda: _contents_published(client, tenant))
        ancient = engaged(tenant, "today", EngagementKind.reaction, datetime(1999, 5, 1, tzinfo=UTC), count=7)
        skewed = engaged(tenant, "today", EngagementKind.reaction, now - timedelta(minutes=2), count=2)
        early = engaged(tenant, "today", EngagementKind.reaction, now - timedelta(hours=2), count=100)
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [ancient, skewed, early])

        async def counted() -> dict[str, Any] | None:
            values = await kpis(client, tenant)
            return values if values.get("reactions") else None
        values = await eventually(counted)
        dead = await read_topic(kafka_bootstrap, topics.ENGAGEMENTS.dlq.name,
                                lambda r: header(r, "ce_id") in (ancient.id, early.id), expect=2, settle=1)
        assert sorted(header(r, "ce_id") for r in dead) == sorted([ancient.id, early.id])
        assert all("before its content today was published" in header(r, "x-portevoix-dlq-cause") for r in dead)
        assert values["reactions"] == 2  # within the clock-skew tolerance: counted; the others never
        assert (await kpis(client, tenant, window="month", at="1999-05-01T00:00:00Z")).get("reactions", 0) == 0
        assert json.loads(dead[0].value)["content_id"] == "today"  # the original bytes, to replay if repaired

        # Read before its content's publication: counted on arrival, taken back once it is read.
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [
            engaged(tenant, "later", EngagementKind.reaction, datetime(1999, 5, 1, tzinfo=UTC), count=40)])

        async def arrived() -> bool:
            return (await kpis(client, tenant)).get("reactions") == 42
        await eventually(arrived)
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "later", now)])

        async def taken_back() -> dict[str, Any] | None:
            values = await kpis(client, tenant)
            return values if values.get("contents_published") == 2 and values.get("reactions") == 2 else None
        await eventually(taken_back)
        old = await kpis(client, tenant, window="month", at="1999-05-01T00:00:00Z")
        assert old.get("reactions", 0) == 0
        later = await kpis(client, tenant, scope_type="content", scope_id="later")
        assert later.get("reactions", 0) == 0


async def test_a_dead_webhook_endpoint_is_paused_after_failures_in_a_row_and_subscriptions_can_be_deleted(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant, other = new_tenant(), new_tenant()
    admin = token(tenant, "admin")
    app = create_app(settings(kafka_bootstrap, database_url, webhook_pause_after_failures=3))
    async with receiver(fail_first=10**6) as (url, received), running(app) as client:
        created = await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.changed"]},
                                    headers=admin)
        assert created.status_code == 201, created.text
        subscription = created.json()["id"]
        assert (created.json()["active"], created.json()["consecutive_failures"]) == (True, 0)
        before = auto_paused()
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [
            engaged(tenant, "dead", EngagementKind.share, datetime.now(UTC))])

        async def paused() -> dict[str, Any] | None:
            listed = (await client.get("/v1/kpis/webhooks", headers=admin)).json()
            return listed[0] if not listed[0]["active"] else None
        state = await eventually(paused)
        assert state["paused_reason"] == "paused after 3 failed attempts in a row (last: HTTP 500)"
        assert auto_paused() == before + 1
        calls = len(received)
        assert calls >= 3
        await asyncio.sleep(1.0)  # retries were due every 0.1 s: none is sent any more
        assert len(received) == calls

        wrong = await client.patch(f"/v1/kpis/webhooks/{subscription}", json={"active": True},
                                   headers=token(other, "admin"))
        assert wrong.status_code == 404
        resumed = await client.patch(f"/v1/kpis/webhooks/{subscription}", json={"active": True}, headers=admin)
        assert resumed.status_code == 200, resumed.text
        assert (resumed.json()["active"], resumed.json()["consecutive_failures"], resumed.json()["paused_reason"]) == \
            (True, 0, None)
        await eventually(lambda: asyncio.sleep(0, len(received) > calls))  # the pending deliveries go again
        await eventually(paused)  # and, the endpoint still dead, it is paused again
        assert auto_paused() == before + 2
        spare = (await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.milestone"]},
                                   headers=admin)).json()["id"]
        by_admin = await client.patch(f"/v1/kpis/webhooks/{spare}", json={"active": False}, headers=admin)
        assert (by_admin.json()["active"], by_admin.json()["paused_reason"]) == (False, "paused by an admin")
        assert (await client.delete(f"/v1/kpis/webhooks/{spare}", headers=admin)).status_code == 204

        assert (await client.delete(f"/v1/kpis/webhooks/{subscription}", headers=token(other, "admin"))).status_code \
            == 404
        assert (await client.delete(f"/v1/kpis/webhooks/{subscription}", headers=admin)).status_code == 204
        assert (await client.get("/v1/kpis/webhooks", headers=admin)).json() == []
        assert (await client.get("/v1/kpis/webhooks/deliveries", headers=admin)).json() == []
        assert (await client.delete(f"/v1/kpis/webhooks/{subscription}", headers=admin)).status_code == 404


def auto_paused() -> float:
    return REGISTRY.get_sample_value("portevoix_webhook_subscriptions_auto_paused_total") or 0.0


async def test_a_milestone_names_its_tenant_scope_and_window_and_only_the_highest_threshold_fires(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    admin = token(tenant, "admin")
    async with receiver(fail_first=0) as (url, received), \
            running(create_app(settings(kafka_bootstrap, database_url))) as client:
        assert (await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.milestone"]},
                                  headers=admin)).status_code == 201
        now = datetime.now(UTC)
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "big", now - timedelta(hours=1))])
        await eventually(lambda: _contents_published(client, tenant))
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [engaged(tenant, "big", EngagementKind.share, now, count=1500)])

        async def milestones() -> list[dict[str, Any]] | None:
            found = [json.loads(call["body"]) for call in received]
            return found if len(found) >= 2 else None
        found = await eventually(milestones)
        await asyncio.sleep(1.0)  # nothing more comes: 10 and 100 were jumped over, not fired
        found = sorted((json.loads(call["body"]) for call in received), key=lambda m: m["scope_type"])
        assert [(m["tenant"], m["scope_type"], m["scope_id"], m["window"], m["kpi"], m["threshold"], m["value"])
                for m in found] == [(tenant, "subsidiary", "fr", "all", "shares", 1000, 1500.0),
                                    (tenant, "tenant", tenant, "all", "shares", 1000, 1500.0)]
        assert found[1]["key"] == f"{tenant}/tenant/{tenant}/all/all" and found[1]["window_start"] is None


async def _contents_published(client: httpx.AsyncClient, tenant: str) -> bool:
    return (await kpis(client, tenant)).get("contents_published") == 1


def enrolled(tenant: str, ambassador_id: str, when: datetime, **extra: Any) -> CloudEvent[Any]:
    return event(tenant, "ambassador.enrolled", ambassador_id, AmbassadorEnrolled(
        ambassador_id=ambassador_id, subsidiary="fr", department="mkt", country="FR", language="fr",
        network_audience={Network.linkedin: 100}, effective_at=when, **extra))


async def test_the_kpi_stream_and_webhooks_carry_enrolled_and_active_ambassadors_and_time_to_first_share(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    admin = token(tenant, "admin")
    now = datetime.now(UTC)
    async with receiver(fail_first=0) as (url, received), \
            running(create_app(settings(kafka_bootstrap, database_url))) as client:
        assert (await client.post("/v1/kpis/webhooks", json={"url": url, "event_types": ["kpi.changed"]},
                                  headers=admin)).status_code == 201
        await send(kafka_bootstrap, topics.AMBASSADORS, [enrolled(tenant, "s1", now - timedelta(days=2)),
                                                         enrolled(tenant, "s2", now - timedelta(days=2))])
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "news", now - timedelta(hours=1))])
        await eventually(lambda: _contents_published(client, tenant))
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [
            engaged(tenant, "news", EngagementKind.share, now, ambassador_id="s1")])
        wanted = {"enrolled_ambassadors": 2.0, "active_ambassadors": 1.0, "activation_rate": 0.5,
                  "median_time_to_first_share_seconds": 3600.0}
        stream_key = f"{tenant}/tenant/{tenant}/all/all".encode()

        async def streamed() -> dict[str, float] | None:
            found = await read_topic(kafka_bootstrap, topics.KPIS.name, lambda r: r.key == stream_key,
                                     expect=10**9, timeout=2)
            values = json.loads(found[-1].value)["values"] if found else {}
            return values if values.get("shares") == 1 else None
        values = await eventually(streamed, timeout=90)  # the stream is read from its start each time
        assert {k: round(values.get(k, -1), 1) for k in wanted} == wanted

        async def delivered() -> dict[str, float] | None:
            payloads = [json.loads(c["body"]) for c in received]
            fr = [p["values"] for p in payloads if p["key"] == f"{tenant}/subsidiary/fr/all/all"]
            return fr[-1] if fr and fr[-1].get("active_ambassadors") == 1.0 else None
        fr = await eventually(delivered, timeout=90)
        assert (fr["enrolled_ambassadors"], fr["activation_rate"]) == (2.0, 0.5)


DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "portevoix.json"
SUFFIXES = ("", "_bucket", "_sum", "_count", "_created")


def panel_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


async def test_every_dashboard_panel_queries_metrics_and_kpis_the_services_export(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    now = datetime.now(UTC)
    app = create_app(settings(kafka_bootstrap, database_url, gauge_tick_seconds=0.2, gauge_tenants=10**6))
    async with running(app) as client:
        await send(kafka_bootstrap, topics.AMBASSADORS, [enrolled(tenant, "g1", now - timedelta(days=1))])
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "gc", now - timedelta(hours=1))])
        await eventually(lambda: _contents_published(client, tenant))
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [
            engaged(tenant, "gc", EngagementKind.share, now, ambassador_id="g1"),
            engaged(tenant, "gc", EngagementKind.click, now, ambassador_id="g1")])
        await client.get("/v1/kpis", headers=token(tenant, "analyst"))  # an HTTP request observed

        queried_kpis = {kpi for _, expr in panel_queries() for kpi in re.findall(r'kpi="([a-z_]+)"', expr)}
        assert {"ambassadors_enrolled", "clicks_unique_human", "shares"} <= queried_kpis

        async def exported() -> str | None:
            text = (await client.get("/metrics")).text
            have = {(kpi, subsidiary) for kpi in queried_kpis for subsidiary in ("", "fr")
                    if f'portevoix_business_kpi{{kpi="{kpi}",subsidiary="{subsidiary}",tenant="{tenant}"}}' in text}
            return text if len(have) == 2 * len(queried_kpis) else None
        text = await eventually(exported)
        declared = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
        for title, expr in panel_queries():
            for name in re.findall(r"\b((?:portevoix|process)_[a-z_]+)\b", expr):
                assert any(name.removesuffix(s) in declared for s in SUFFIXES if name.endswith(s)), (title, name)
        assert 'portevoix_consumer_lag_records{consumer=' in text


async def test_after_a_restart_every_assigned_partition_has_a_lag_series_before_it_delivers_anything(
        kafka_bootstrap: str, database_url: str) -> None:
    consumed = [topics.CONTENT_LIFECYCLE, topics.AMBASSADORS, topics.NOTIFICATIONS, topics.ENGAGEMENTS]
    expected = {(t.name, str(p)) for topic in consumed for t in (topic, topic.retry) for p in range(t.partitions)}
    metrics.CONSUMER_LAG.clear()  # a new process: no series yet
    async with running(create_app(settings(kafka_bootstrap, database_url))) as client:
        async def published() -> set[tuple[str, str]] | None:
            text = (await client.get("/metrics")).text
            found = set(re.findall(r'^portevoix_consumer_lag_records\{consumer="reporting",partition="(\d+)",'
                                   r'topic="([^"]+)"\} ', text, flags=re.MULTILINE))
            have = {(topic, partition) for partition, topic in found}
            return have if expected <= have else None
        await eventually(published, timeout=30)
