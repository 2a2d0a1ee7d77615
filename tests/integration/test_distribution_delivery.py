"""Notification delivery against the real broker and database, a real SMTP server (aiosmtpd) and
a webhook receiver (Starlette under uvicorn), both on loopback: one alert per ambassador on the
channel he chose, fatigue (quiet hours on his own clock, the weekly budget) deferring and never
dropping, retries and the DLQ for a dead endpoint, a slow endpoint holding nobody else, content
updates and retirements reaching what was already sent, and an opt-out racing a fan-out."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import standardwebhooks
import uvicorn
from aiokafka import ConsumerRecord
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.distribution.main import DistributionSettings, create_app
from shared import metrics
from shared.envelope import new_event, to_binary
from shared.events import Audience, ContentPublished, ContentRetired, ContentUpdated, EmployeeUpserted, ShareText
from shared.topics import CONTENT_LIFECYCLE, HR_EMPLOYEES, NOTIFICATIONS
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration
TRACKING = "https://go.example.com"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="


# --- the outside world: an SMTP server and a chat/webhook receiver on loopback --------------------

class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class Receiver:
    """Slack-compatible Web API, Teams-compatible webhook and generic webhooks, recording calls."""

    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    slow_release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_waiting: int = 0
    slack_posted: dict[str, str] = field(default_factory=dict)  # ts → channel

    def app(self) -> Starlette:
        async def slack(request: Request) -> Response:
            method, tenant = request.path_params["method"], request.path_params["tenant"]
            if request.headers.get("authorization") != "Bearer xoxb-test":
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            raw = (await request.body()).decode()
            body = dict(parse_qsl(raw)) if method == "users.lookupByEmail" else json.loads(raw)
            self.calls.append((f"slack/{tenant}/{method}", body, dict(request.headers)))
            if method == "users.lookupByEmail":
                return JSONResponse({"ok": True, "user": {"id": "U-" + body["email"].split("@")[0]}})
            if method == "chat.postMessage":
                ts = f"{len(self.calls)}.0001"
                self.slack_posted[ts] = "D" + body["channel"]
                return JSONResponse({"ok": True, "channel": "D" + body["channel"], "ts": ts})
            return JSONResponse({"ok": True})

        async def record(request: Request) -> Response:
            self.calls.append((request.url.path.strip("/"), json.loads(await request.body()), dict(request.headers)))
            return Response(status_code=204)

        async def slow(request: Request) -> Response:
            self.slow_waiting += 1
            await self.slow_release.wait()
            return await record(request)

        return Starlette(routes=[Route("/slack/{tenant}/api/{method}", slack, methods=["POST"]),
                                 Route("/teams", record, methods=["POST"]),
                                 Route("/hook/{tenant}", record, methods=["POST"]),
                                 Route("/slow", slow, methods=["POST"])])

    def of(self, path: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        return [c for c in self.calls if c[0] == path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    client: httpx.AsyncClient
    mailbox: Mailbox
    receiver: Receiver
    receiver_url: str
    dead_url: str


@pytest.fixture(scope="module")
async def world(kafka_bootstrap: str, database_url: str) -> AsyncIterator[World]:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    receiver = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started))
    settings = settings_for(
        DistributionSettings, kafka_bootstrap, database_url, tracking_base_url=TRACKING, smtp_port=smtp.port,
        alerts_per_week=3, delivery_poll_interval_seconds=0.1, delivery_timeout_seconds=10.0,
        delivery_max_attempts=3, delivery_backoff_base_seconds=0.05, delivery_backoff_max_seconds=0.2,
        circuit_failure_threshold=2, circuit_open_seconds=0.2)
    try:
        async with running(create_app(settings)) as client:
            yield World(client, mailbox, receiver, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{free_port()}/hook")
    finally:
        receiver.slow_release.set()
        server.should_exit = True
        await serving
        smtp.stop()


# --- helpers ------------------------------------------------------------------------------------

def record_of(event: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    record = to_binary(event)
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]


async def hire_and_enrol(world: World, kafka: str, tenant: str, people: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Employees (id → preferences), enrolled; return their ambassador ids."""
    events = [new_event("hr.employee.upserted", source="hr/test", subject=e, tenant=tenant, data=EmployeeUpserted(
        employee_id=e, email=f"{e}@acme.example", given_name="Ann", family_name="Lee", subsidiary="FR01",
        department="Sales", site="Lyon", country="FR", language="fr-FR", effective_at=datetime.now(UTC), version=1))
        for e in people]
    await produce(kafka, HR_EMPLOYEES.name, [record_of(e) for e in events])
    ids = {}
    for employee_id, prefs in people.items():
        headers = token(tenant, "employee", subject=employee_id)

        async def enrolled(h: dict[str, str] = headers) -> httpx.Response | None:
            r = await world.client.post("/v1/me/enrolment", headers=h, json={"consent_text_version": "v1"})
            return r if r.status_code in (200, 201) else None
        ids[employee_id] = (await eventually(enrolled)).json()["ambassador_id"]
        if prefs:
            r = await world.client.put("/v1/me/preferences", headers=headers, json=prefs)
            assert r.status_code == 200, r.text
    return ids


def content_event(tenant: str, content_id: str, kind: str = "content.published", revision: int = 1,
                  title: str = "Plant news") -> Any:
    model = {"content.published": ContentPublished, "content.updated": ContentUpdated}[kind]
    data = model(content_id=content_id, revision=revision, title=title, url="https://acme.example/plant",
                 language="fr", audience=Audience(subsidiaries=["FR01"]), published_at=datetime.now(UTC),
                 share_texts=[ShareText(network="linkedin", language="fr", text="Fiers !", variant=0),
                              ShareText(network="linkedin", language="fr", text="Bravo !", variant=1),
                              ShareText(network="linkedin", language="en", text="Proud!", variant=0)])
    return new_event(kind, source="portevoix/content", subject=content_id, tenant=tenant, data=data)


def retired_event(tenant: str, content_id: str) -> Any:
    return new_event("content.retired", source="portevoix/content", subject=content_id, tenant=tenant,
                     data=ContentRetired(content_id=content_id, reason="withdrawn", retired_at=datetime.now(UTC)))


async def set_channel(world: World, tenant: str, channel: str, url: str, secret: str | None = None) -> None:
    r = await world.client.put(f"/v1/admin/channels/{channel}", headers=token(tenant, "admin"),
                               json={"url": url, "secret": secret})
    assert r.status_code == 200, r.text


def of(tenant: str, event_type: str) -> Any:
    return lambda r: header(r, "ce_tenantid") == tenant and header(r, "ce_type") == event_type


def data(record: ConsumerRecord) -> dict[str, Any]:
    return json.loads(record.value)


async def notifications(kafka: str, tenant: str, event_type: str, expect: int, settle: float = 1.0,
                        timeout: float = 30) -> dict[str, dict[str, Any]]:
    """The tenant's events of a type (one content), by ambassador; fails on two for one ambassador."""
    found = await read_topic(kafka, NOTIFICATIONS.name, of(tenant, event_type), expect=expect, settle=settle,
                             timeout=timeout)
    by_ambassador = {data(r)["ambassador_id"]: data(r) for r in found}
    assert len(by_ambassador) == len(found), [data(r) for r in found]
    return by_ambassador


# --- tests --------------------------------------------------------------------------------------

async def test_each_ambassador_is_alerted_once_on_the_channel_he_chose(world: World, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    await set_channel(world, tenant, "slack", f"{world.receiver_url}/slack/{tenant}/api", "xoxb-test")
    await set_channel(world, tenant, "teams", f"{world.receiver_url}/teams")
    await set_channel(world, tenant, "webhook", f"{world.receiver_url}/hook/{tenant}", WEBHOOK_SECRET)
    ids = await hire_and_enrol(world, kafka_bootstrap, tenant, {
        "mail": {"channels": ["email", "slack"]}, "chat": {"channels": ["slack"]}, "teams": {"channels": ["teams"]},
        "hook": {"channels": ["webhook"]}, "feed": {}})
    content_id = str(uuid.uuid4())
    published = content_event(tenant, content_id)
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(published)])

    sent = await notifications(kafka_bootstrap, tenant, "notification.sent", expect=5)
    assert {a: n["channel"] for a, n in sent.items()} == {
        ids["mail"]: "email", ids["chat"]: "slack", ids["teams"]: "teams", ids["hook"]: "webhook",
        ids["feed"]: "in_app"}
    codes = {a: [link["code"] for link in n["links"]] for a, n in sent.items()}
    assert all(len(c) == 1 for c in codes.values()) and len({c[0] for c in codes.values()}) == 5

    [mail] = world.mailbox.to("mail@acme.example")
    assert f"Link to share: {TRACKING}/r/{codes[ids['mail']][0]}" in mail.get_payload(decode=True).decode()
    lookups = world.receiver.of(f"slack/{tenant}/users.lookupByEmail")
    assert [c[1]["email"] for c in lookups] == ["chat@acme.example"]
    [posted] = [c for c in world.receiver.of(f"slack/{tenant}/chat.postMessage") if c[1]["channel"] == "U-chat"]
    assert codes[ids["chat"]][0] in posted[1]["text"]
    assert not [c for c in world.receiver.of(f"slack/{tenant}/chat.postMessage") if c[1]["channel"] == "U-mail"]
    [card] = [c for c in world.receiver.of("teams") if "teams@acme.example" in json.dumps(c[1])]
    assert card[1]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    [hook] = world.receiver.of(f"hook/{tenant}")
    verified = standardwebhooks.Webhook(WEBHOOK_SECRET).verify(json.dumps(hook[1], separators=(",", ":")), hook[2])
    assert verified["type"] == "notification.sent" and verified["data"]["ambassador_id"] == ids["hook"]
    # The intranet gets the pseudonymous id and what it shows, nothing that names the person.
    assert set(verified["data"]) == {"notification_id", "ambassador_id", "content_id", "title", "url", "links"}
    assert "@" not in json.dumps(hook[1]) and set(verified["data"]["links"][0]) == {
        "network", "tracked_url", "share_url", "text"}
    # Share texts: the ambassador's language (fr-FR takes the fr texts), one of the variants.
    assert any(t in posted[1]["text"] for t in ("Fiers !", "Bravo !")) and "Proud!" not in posted[1]["text"]

    # The same content redelivered, and republished under a new id: nobody is alerted again.
    again = published.model_copy(update={"id": str(uuid.uuid4())})
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(published), record_of(again)])
    await notifications(kafka_bootstrap, tenant, "notification.sent", expect=5, settle=2.0)
    assert len(world.mailbox.to("mail@acme.example")) == 1
    assert len(world.receiver.of(f"hook/{tenant}")) == 1


async def test_bad_channel_endpoints_are_refused(world: World) -> None:
    tenant = new_tenant()
    admin = token(tenant, "admin")
    for channel, body in [("slack", {"url": "not a url"}), ("webhook", {"url": "https://x.example", "secret": "plain"}),
                          ("webhook", {"url": "https://x.example", "secret": "whsec_!!!"}),
                          ("sms", {"url": "https://x.example"})]:
        r = await world.client.put(f"/v1/admin/channels/{channel}", headers=admin, json=body)
        assert r.status_code == 422, (channel, body, r.text)
    scoped = await world.client.put("/v1/admin/channels/teams", headers=token(tenant, "admin", subsidiary="FR01"),
                                    json={"url": "https://x.example"})
    assert scoped.status_code == 403
    assert (await world.client.put("/v1/admin/channels/teams", headers=token(tenant, "editor"),
                                   json={"url": "https://x.example"})).status_code == 403
    assert (await world.client.put("/v1/admin/channels/teams", headers=admin,
                                   json={"url": "https://x.example", "secret": None})).status_code == 200
    listed = (await world.client.get("/v1/admin/channels", headers=admin)).json()
    assert [(e["channel"], e["url"]) for e in listed] == [("teams", "https://x.example/")]
    other = (await world.client.get("/v1/admin/channels", headers=token(new_tenant(), "admin"))).json()
    assert other == []
    bad_prefs = await world.client.put("/v1/me/preferences", headers=token(tenant, "employee", subject="x"),
                                       json={"channels": ["carrier-pigeon"]})
    assert bad_prefs.status_code == 422


async def test_a_dead_endpoint_ends_in_the_dlq_and_a_slow_one_holds_nobody_else(
        world: World, kafka_bootstrap: str, database_url: str) -> None:
    dead, slow, fine = new_tenant(), new_tenant(), new_tenant()
    await set_channel(world, dead, "webhook", world.dead_url, WEBHOOK_SECRET)  # nothing listens there
    await set_channel(world, slow, "webhook", f"{world.receiver_url}/slow", WEBHOOK_SECRET)
    dead_ids = await hire_and_enrol(world, kafka_bootstrap, dead,
                                    {f"d{n}": {"channels": ["webhook"]} for n in range(3)})
    slow_ids = await hire_and_enrol(world, kafka_bootstrap, slow, {"s": {"channels": ["webhook"]}})
    await hire_and_enrol(world, kafka_bootstrap, fine, {"f": {"channels": ["email"]}})
    failed_before = metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get()
    world.receiver.slow_release.clear()

    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [
        record_of(content_event(t, str(uuid.uuid4()))) for t in (slow, dead, fine)])

    # The slow endpoint holds its request open; meanwhile the others are delivered or given up.
    await eventually(lambda: asyncio.sleep(0, world.receiver.slow_waiting >= 1))
    await eventually(lambda: asyncio.sleep(0, world.mailbox.to("f@acme.example")))
    failed = await notifications(kafka_bootstrap, dead, "notification.failed", expect=3)
    assert set(failed) == set(dead_ids.values())
    assert all("ConnectError" in n["reason"] or "circuit open" in n["reason"] for n in failed.values())
    assert all(n["links"] and n["links"][0]["code"] for n in failed.values())
    dlq = await read_topic(kafka_bootstrap, NOTIFICATIONS.dlq.name, lambda r: header(r, "ce_tenantid") == dead,
                           expect=3, settle=0.5)
    assert {json.loads(r.value)["ambassador_id"] for r in dlq} == set(dead_ids.values())
    assert all(header(r, "x-portevoix-dlq-cause") and header(r, "x-portevoix-dlq-attempts") for r in dlq)
    assert metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get() - failed_before >= 3
    conn = await asyncpg.connect(database_url)
    try:
        attempts = await conn.fetchval("SELECT count(*) FROM distribution.delivery_attempts WHERE tenant = $1", dead)
    finally:
        await conn.close()
    assert attempts == 9  # 3 notifications × 3 attempts, each with its cause kept
    assert not await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(slow, "notification.sent"), expect=1,
                                timeout=0.5)

    world.receiver.slow_release.set()
    sent = await notifications(kafka_bootstrap, slow, "notification.sent", expect=1)
    assert set(sent) == set(slow_ids.values())


def _quiet_window_around(now: datetime, zone: str, seconds_left: int) -> dict[str, Any]:
    local = now.astimezone(ZoneInfo(zone))
    start, end = local - timedelta(hours=1), local + timedelta(seconds=seconds_left)
    return {"quiet_start": start.strftime("%H:%M:%S"), "quiet_end": end.strftime("%H:%M:%S"), "time_zone": zone}


async def test_quiet_hours_on_the_ambassadors_own_clock_defer_the_alert_until_they_end(
        world: World, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    now = datetime.now(UTC)
    # Quiet now in Auckland (ends in a few seconds, their clock); Paris's quiet hours are now + 6h.
    paris_later = now.astimezone(ZoneInfo("Europe/Paris")) + timedelta(hours=6)
    ids = await hire_and_enrol(world, kafka_bootstrap, tenant, {
        "auckland": {"channels": ["email"], **_quiet_window_around(now, "Pacific/Auckland", 6)},
        "paris": {"channels": ["email"], "time_zone": "Europe/Paris", "quiet_start": paris_later.strftime("%H:%M"),
                  "quiet_end": (paris_later + timedelta(hours=1)).strftime("%H:%M")}})
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(content_event(tenant, str(uuid.uuid4())))])

    [deferred] = (await notifications(kafka_bootstrap, tenant, "notification.deferred", expect=1)).values()
    assert deferred["ambassador_id"] == ids["auckland"] and deferred["reason"] == "quiet_hours"
    due = datetime.fromisoformat(deferred["due_at"])
    assert now < due < now + timedelta(seconds=30)
    assert due.astimezone(ZoneInfo("Pacific/Auckland")).strftime("%H:%M:%S") == \
        _quiet_window_around(now, "Pacific/Auckland", 6)["quiet_end"]
    sent = await notifications(kafka_bootstrap, tenant, "notification.sent", expect=2, timeout=45)
    assert set(sent) == set(ids.values())  # deferred, then delivered: never dropped
    assert datetime.fromisoformat(sent[ids["auckland"]]["at"]) >= due
    assert len(world.mailbox.to("auckland@acme.example")) == 1


async def test_the_weekly_budget_defers_alerts_beyond_it_across_channels(world: World, kafka_bootstrap: str) -> None:
    tenant = new_tenant()
    [ambassador] = (await hire_and_enrol(world, kafka_bootstrap, tenant, {"busy": {"channels": ["email"]}})).values()
    contents = [str(uuid.uuid4()) for _ in range(4)]
    for content_id in contents:  # one by one: the budget counts what was sent
        await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(content_event(tenant, content_id))])
        notified = of_content(tenant, content_id)
        await eventually(lambda: read_topic(kafka_bootstrap, NOTIFICATIONS.name, notified, timeout=5))  # noqa: B023
    sent = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"), expect=3, settle=1.0)
    [deferred] = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.deferred"))
    assert len(sent) == 3 and len(world.mailbox.to("busy@acme.example")) == 3  # alerts_per_week = 3
    assert data(deferred)["content_id"] == contents[3] and data(deferred)["reason"] == "weekly_budget"
    first_sent = min(datetime.fromisoformat(data(r)["at"]) for r in sent)
    assert datetime.fromisoformat(data(deferred)["due_at"]) == first_sent + timedelta(days=7)
    assert data(deferred)["ambassador_id"] == ambassador


async def test_updates_edit_and_retirement_retracts_what_was_sent_and_cancels_what_was_not(
        world: World, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    await set_channel(world, tenant, "slack", f"{world.receiver_url}/slack/{tenant}/api", "xoxb-test")
    await set_channel(world, tenant, "webhook", f"{world.receiver_url}/hook/{tenant}", WEBHOOK_SECRET)
    now = datetime.now(UTC)
    ids = await hire_and_enrol(world, kafka_bootstrap, tenant, {
        "chat": {"channels": ["slack"]}, "hook": {"channels": ["webhook"]}, "feed": {},
        "asleep": {"channels": ["email"], **_quiet_window_around(now, "Asia/Tokyo", 3600)}})
    content_id = str(uuid.uuid4())
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(content_event(tenant, content_id))])
    await notifications(kafka_bootstrap, tenant, "notification.sent", expect=3)
    await notifications(kafka_bootstrap, tenant, "notification.deferred", expect=1)

    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(content_event(
        tenant, content_id, "content.updated", revision=2, title="Plant news (corrected)"))])
    [updated] = await eventually(lambda: asyncio.sleep(0, world.receiver.of(f"slack/{tenant}/chat.update")))
    assert world.receiver.slack_posted[updated[1]["ts"]] == updated[1]["channel"] == "DU-chat"
    assert "Plant news (corrected)" in updated[1]["text"]
    feed = await world.client.get("/v1/me/feed", headers=token(tenant, "employee", subject="feed"))
    assert [i["title"] for i in feed.json()["items"]] == ["Plant news (corrected)"]
    await eventually(lambda: asyncio.sleep(0, [c for c in world.receiver.of(f"hook/{tenant}")
                                               if c[1]["type"] == "notification.updated"]))

    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [record_of(retired_event(tenant, content_id))])
    [deleted] = await eventually(lambda: asyncio.sleep(0, world.receiver.of(f"slack/{tenant}/chat.delete")))
    assert (deleted[1]["channel"], deleted[1]["ts"]) == (updated[1]["channel"], updated[1]["ts"])
    [retracted] = await eventually(lambda: asyncio.sleep(0, [c for c in world.receiver.of(f"hook/{tenant}")
                                                             if c[1]["type"] == "notification.retracted"]))
    assert retracted[1]["data"]["content_id"] == content_id
    [cancelled] = (await notifications(kafka_bootstrap, tenant, "notification.cancelled", expect=1)).values()
    assert cancelled["ambassador_id"] == ids["asleep"] and cancelled["reason"] == "content_withdrawn"
    feed = await world.client.get("/v1/me/feed", headers=token(tenant, "employee", subject="feed"))
    assert feed.json() == {"items": []}
    # No new alert for the update, and nothing at all for the one still asleep.
    await notifications(kafka_bootstrap, tenant, "notification.sent", expect=3, settle=1.0)
    assert world.mailbox.to("asleep@acme.example") == []


async def test_an_opt_out_racing_a_fan_out_leaves_nothing_live_for_the_one_who_left(
        world: World, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    people = {f"p{n:03d}": {} for n in range(120)}
    ids = await hire_and_enrol(world, kafka_bootstrap, tenant, people)
    leaving = [f"p{n:03d}" for n in range(0, 120, 3)]

    async def opt_out(employee_id: str) -> None:
        r = await world.client.delete("/v1/me/enrolment", headers=token(tenant, "employee", subject=employee_id))
        assert r.status_code == 204

    content_id = str(uuid.uuid4())
    await asyncio.gather(produce(kafka_bootstrap, CONTENT_LIFECYCLE.name,
                                 [record_of(content_event(tenant, content_id))]),
                         *(opt_out(e) for e in leaving))
    stayed = {ids[e] for e in people if e not in leaving}
    sent = await notifications(kafka_bootstrap, tenant, "notification.sent", expect=len(stayed), settle=2.0)
    assert stayed <= set(sent)
    conn = await asyncpg.connect(database_url)
    try:
        live = await conn.fetch(
            """SELECT n.ambassador_id FROM distribution.notifications n
               JOIN distribution.ambassadors a ON a.tenant = n.tenant AND a.ambassador_id = n.ambassador_id
               WHERE n.tenant = $1 AND a.withdrawn_at IS NOT NULL AND n.cancelled_at IS NULL""", tenant)
    finally:
        await conn.close()
    assert live == []
    late = set(sent) - stayed  # notified before their opt-out committed: each one cancelled since
    if late:
        cancelled = await notifications(kafka_bootstrap, tenant, "notification.cancelled", expect=len(late))
        assert late <= set(cancelled)



def of_content(tenant: str, content_id: str):  # noqa: ANN201
    """Records of the tenant about one content."""
    return lambda r: header(r, "ce_tenantid") == tenant and data(r)["content_id"] == content_id
