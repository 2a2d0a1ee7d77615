"""Steady load through the public APIs, and the ledger of what was accepted.

An input counts as accepted only on a 2xx answer (for HR events: the broker's acknowledgement),
with the ids needed to find it again from outside: CloudEvents ids of HR events and of webhook
events (``webhook/<source>/<webhook-id>/<index>``), content ids, ambassador ids, and clicks per
tracked link code (a click's event id is not returned, so clicks are counted per code). A call
whose answer never came (connection cut mid-request) is *uncertain*: it may or may not have taken
effect, and the reconciliation allows both. Calls that can be repeated safely are repeated until
they get an answer (webhooks with the same webhook-id, a publish, an enrolment), as a real client
would; clicks and HR events are not (no idempotency key a client could reuse).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaProducer
from standardwebhooks import Webhook

from deploy.reliability.harness import JWT_SECRET, Services
from shared import topics
from shared.auth import issue_token
from shared.envelope import new_event, record_key, to_binary
from shared.events import EmployeeUpserted

CONSENT = "2026-rel"
SOURCE_SYSTEM = "hr/reliability"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
KINDS = ("reaction", "comment", "reshare", "impression")
KPI_OF_KIND = {"reaction": "reactions", "comment": "comments", "reshare": "reshares", "impression": "impressions"}


class LoadError(Exception):
    """The load could not be set up; the message says which call answered what."""


@dataclass(frozen=True)
class Rates:
    """Inputs per second of each kind."""

    clicks: float = 20
    webhooks: float = 2  # calls, each with WEBHOOK_EVENTS events
    hr_events: float = 5
    enrolments: float = 0.5
    contents: float = 0.3


WEBHOOK_EVENTS = 4


@dataclass
class Ledger:
    """Every accepted input, by the phase (fault) it was made in."""

    phase: str = "setup"
    accepted_at: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, phase)
    hr: dict[str, str] = field(default_factory=dict)  # ce_id → phase
    hr_uncertain: set[str] = field(default_factory=set)
    employees: set[str] = field(default_factory=set)  # accepted upserts (each a new employee)
    uncertain_employees: set[str] = field(default_factory=set)
    enrolled: dict[str, str] = field(default_factory=dict)  # ambassador id → phase
    contents: dict[str, str] = field(default_factory=dict)  # content id → phase
    clicks: Counter[str] = field(default_factory=Counter)  # link code → accepted clicks
    clicks_uncertain: Counter[str] = field(default_factory=Counter)
    code_phase: dict[str, str] = field(default_factory=dict)
    webhook_events: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # event id → (phase, kind, count)
    refused: Counter[str] = field(default_factory=Counter)  # phase → non-2xx answers (not accepted: fine)
    unanswered: Counter[str] = field(default_factory=Counter)  # phase → calls cut or timed out (then retried,
    # or for clicks and HR events: uncertain)

    def accept(self) -> str:
        self.accepted_at.append((time.monotonic(), self.phase))
        return self.phase

    def accepted_in(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.accepted_at if start <= at <= end)

    def accepted_of(self, phase: str) -> int:
        return sum(1 for _, p in self.accepted_at if p == phase)


@dataclass
class Tenant:
    name: str
    source: str = ""  # the webhook source of the connector
    secret: str = ""
    content_ids: list[str] = field(default_factory=list)  # published at set-up, known to tracking
    codes: dict[str, list[str]] = field(default_factory=dict)  # phase → its tracked link codes


def headers_of(tenant: str, subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, subject=subject, tenant=tenant, roles=list(roles))}"}


def expect(response: httpx.Response, *statuses: int, what: str) -> Any:
    if response.status_code not in statuses:
        raise LoadError(f"{what}: {response.request.method} {response.request.url.path} answered "
                        f"{response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


class Load:
    def __init__(self, services: Services, ledger: Ledger, tenant: Tenant, rates: Rates) -> None:
        self.services = services
        self.ledger = ledger
        self.tenant = tenant
        self.rates = rates
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.http = {name: httpx.AsyncClient(base_url=services.url(name), timeout=5, limits=limits)
                     for name in ("content", "distribution", "tracking", "reporting")}
        self.producer = AIOKafkaProducer(bootstrap_servers=services.kafka, acks="all", enable_idempotence=True,
                                         request_timeout_ms=10_000, linger_ms=5)
        self.to_enrol: list[tuple[float, str]] = []  # (accepted at, employee id)
        self.running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(200)
        self._click_turn = 0

    @property
    def admin(self) -> dict[str, str]:
        return headers_of(self.tenant.name, "rel-admin", "admin")

    async def open(self) -> None:
        await self.producer.start()

    async def close(self) -> None:
        await self.stop()
        for client in self.http.values():
            await client.aclose()
        await self.producer.stop()

    # --- set-up -------------------------------------------------------------------------------

    async def set_up(self, phases: list[str], webhook_url: str, ambassadors: int = 30,
                     webhook_channel: int = 10, email_channel: int = 5) -> None:
        """Consent text, endpoints, the first ambassadors (some told by webhook or e-mail), two
        contents whose tracked links (one set per phase) tracking has learnt."""
        t, d = self.tenant, self.http["distribution"]
        expect(await d.put(f"/v1/admin/consent-texts/{CONSENT}", json={"text": "I volunteer."}, headers=self.admin),
               201, what="consent text")
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        expect(await d.put("/v1/admin/channels/webhook", json={"url": webhook_url, "secret": secret},
                           headers=self.admin), 200, what="webhook channel")
        t.source = f"{t.name}-social"
        created = expect(await self.http["tracking"].post(f"/v1/webhook-sources/{t.source}/secrets",
                                                          headers=self.admin),
                         201, what="webhook source")
        t.secret = created["secret"]
        people = [f"e{n:05d}" for n in range(ambassadors)]
        for employee in people:
            await self._send_hr(employee)
        if len(self.ledger.employees) != ambassadors:
            raise LoadError("the first HR events were not acknowledged by Kafka")
        self.to_enrol.clear()  # enrolled here, not by the load
        for n, employee in enumerate(people):
            await self._enrolled_at_set_up(employee)
            channel = "webhook" if n < webhook_channel else "email" if n < webhook_channel + email_channel else None
            if channel:
                expect(await d.put("/v1/me/preferences", json={"channels": [channel]},
                                   headers=headers_of(t.name, employee, "employee")), 200, what="preferences")
        for n in range(2):
            content_id = await self._publish(n)
            if content_id is None:
                raise LoadError("a set-up content was not published")
            t.content_ids.append(content_id)
        codes = await self._codes(people, set(t.content_ids))
        for n, code in enumerate(sorted(codes)):
            phase = phases[n % len(phases)]
            t.codes.setdefault(phase, []).append(code)
            self.ledger.code_phase[code] = phase
        await asyncio.gather(*(self._learnt(code) for code in codes))

    async def _enrolled_at_set_up(self, employee: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not isinstance(await self._enrol(employee), str):  # 404 until distribution read the HR event
            if time.monotonic() > deadline:
                raise LoadError(f"enrolment of {employee} did not succeed in {timeout:.0f}s")
            await asyncio.sleep(0.3)

    async def _codes(self, people: list[str], content_ids: set[str], timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        codes: list[str] = []
        for employee in people:
            while True:
                feed = expect(await self.http["distribution"].get(
                    "/v1/me/feed", headers=headers_of(self.tenant.name, employee, "employee")), 200, what="feed")
                items = [i for i in feed["items"] if i["content_id"] in content_ids]
                if len(items) == len(content_ids):
                    codes += [urlsplit(link["tracked_url"]).path.rsplit("/", 1)[-1]
                              for item in items for link in item["links"]]
                    break
                if time.monotonic() > deadline:
                    raise LoadError(f"{employee}'s feed lacks the set-up contents after {timeout:.0f}s")
                await asyncio.sleep(0.3)
        return codes

    async def _learnt(self, code: str, timeout: float = 60) -> None:
        """One click per code, repeated while tracking does not know the link yet (404: nothing
        recorded), so that the load's clicks never hit an unknown link."""
        deadline = time.monotonic() + timeout
        while await self._click(code) == 404:
            if time.monotonic() > deadline:
                raise LoadError(f"tracking never learnt link {code}")
            await asyncio.sleep(0.3)

    # --- the steady load ------------------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        r = self.rates
        self._tasks = [asyncio.create_task(self._paced(rate, call)) for rate, call in (
            (r.clicks, self._next_click), (r.webhooks, self._webhook), (r.hr_events, self._next_employee),
            (r.enrolments, self._next_enrolment), (r.contents, self._next_content)) if rate > 0]

    async def stop(self) -> None:
        """Stop offering load and wait for the calls in flight (each bounded by its timeouts)."""
        self.running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _paced(self, rate: float, call: Callable[[], Awaitable[Any]]) -> None:
        """``rate`` calls per second on a fixed schedule, each its own task: a call hanging on a
        dead service does not slow the others down (a crowd does not wait for one browser)."""
        interval, next_at = 1 / rate, time.monotonic()
        while self.running:
            next_at += interval
            await self._gate.acquire()
            task = asyncio.create_task(call())
            self._inflight.add(task)
            task.add_done_callback(lambda t: (self._inflight.discard(t), self._gate.release()))
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _next_click(self) -> None:
        codes = self.tenant.codes.get(self.ledger.phase) or self.tenant.codes[next(iter(self.tenant.codes))]
        self._click_turn += 1
        await self._click(codes[self._click_turn % len(codes)])

    async def _click(self, code: str) -> int | None:
        try:
            response = await self.http["tracking"].get(f"/r/{code}", headers={"User-Agent": BROWSER})
        except httpx.ConnectError:  # nothing was sent
            self.ledger.refused[self.ledger.phase] += 1
            return None
        except httpx.HTTPError:  # sent, answer lost: may or may not be recorded
            self.ledger.clicks_uncertain[code] += 1
            self.ledger.unanswered[self.ledger.phase] += 1
            return None
        if response.status_code == 302:
            self.ledger.clicks[code] += 1
            self.ledger.accept()
        else:
            self.ledger.refused[self.ledger.phase] += 1
        return response.status_code

    async def _webhook(self) -> None:
        """A signed batch of engagement events, sent again with the same webhook-id until it gets
        an answer (the Standard Webhooks retry): 202 (first or duplicate) means accepted."""
        t = self.tenant
        webhook_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        events = [{"type": KINDS[n % len(KINDS)], "content_id": t.content_ids[n % len(t.content_ids)],
                   "network": "linkedin", "count": 1 + n, "occurred_at": now.isoformat()}
                  for n in range(WEBHOOK_EVENTS)]
        body = json.dumps({"events": events})

        async def send() -> httpx.Response | None:
            at = datetime.now(UTC)
            headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
                       "webhook-signature": Webhook(t.secret).sign(webhook_id, at, body),
                       "content-type": "application/json"}
            try:
                response = await self.http["tracking"].post(f"/v1/webhooks/{t.source}", content=body, headers=headers)
            except httpx.HTTPError:
                return None
            return None if response.status_code >= 500 or response.status_code == 429 else response

        response = await self._until_answered(send, timeout=60)
        if response is None or response.status_code != 202:
            self.ledger.refused[self.ledger.phase] += 1
            return
        phase = self.ledger.accept()
        for n, event in enumerate(events):
            self.ledger.webhook_events[f"webhook/{t.source}/{webhook_id}/{n}"] = (phase, event["type"], event["count"])

    async def _next_employee(self) -> None:
        await self._send_hr(f"e{uuid.uuid4().hex[:10]}")

    async def _send_hr(self, employee: str) -> None:
        t = self.tenant.name
        event = new_event("hr.employee.upserted", source=SOURCE_SYSTEM, subject=employee, tenant=t,
                          data=EmployeeUpserted(
                              employee_id=employee, email=f"{employee}@acme.example", given_name="Ada",
                              family_name="Lovelace", subsidiary="REL", department="Ops", site="Lyon", country="FR",
                              language="en", effective_at=datetime.now(UTC), version=1))
        record = to_binary(event)
        try:
            await self.producer.send_and_wait(topics.HR_EMPLOYEES.name, value=record.value,
                                              key=record_key(t, employee),
                                              headers=[(k, v.encode()) for k, v in record.headers.items()])
        except Exception:  # noqa: BLE001 - timed out or failed: the broker may or may not have it
            self.ledger.hr_uncertain.add(event.id)
            self.ledger.unanswered[self.ledger.phase] += 1
            self.ledger.uncertain_employees.add(employee)
            return
        self.ledger.hr[event.id] = self.ledger.accept()
        self.ledger.employees.add(employee)
        self.to_enrol.append((time.monotonic(), employee))

    async def _next_enrolment(self) -> None:
        """An employee HR told us about a few seconds ago volunteers (earlier: distribution may
        not have read the HR event yet, and answers 404, which is a refusal, not a loss)."""
        if not self.to_enrol or time.monotonic() - self.to_enrol[0][0] < 3:
            return
        _, employee = self.to_enrol.pop(0)
        ambassador = await self._until_answered(lambda: self._enrol(employee), timeout=30)
        if ambassador is False:
            self.to_enrol.append((time.monotonic(), employee))  # not known yet: later

    async def _enrol(self, employee: str) -> str | bool | None:
        """The ambassador id once enrolled; False when refused; None when there was no answer."""
        try:
            response = await self.http["distribution"].post(
                "/v1/me/enrolment", json={"consent_text_version": CONSENT, "networks": {"linkedin": 300, "x": 100}},
                headers=headers_of(self.tenant.name, employee, "employee"))
        except httpx.HTTPError:
            return None
        if response.status_code in (200, 201):
            ambassador = response.json()["ambassador_id"]
            if ambassador not in self.ledger.enrolled:
                self.ledger.enrolled[ambassador] = self.ledger.accept()
            return str(ambassador)
        return None if response.status_code >= 500 else False

    async def _next_content(self) -> None:
        await self._publish(len(self.ledger.contents))

    async def _publish(self, n: int) -> str | None:
        """A draft created by an editor, published by an approver; the publish is repeated until
        answered, and a 409 after an unanswered try means that try went through."""
        c, t = self.http["content"], self.tenant.name
        try:
            created = await c.post("/v1/contents", headers=headers_of(t, "rel-editor", "editor"), json={
                "title": f"Reliability news {n}", "url": f"https://news.acme.example/{n}", "language": "en"})
        except httpx.HTTPError:
            return None
        if created.status_code != 201:
            self.ledger.refused[self.ledger.phase] += 1
            return None
        content_id = created.json()["id"]
        unanswered = False

        async def publish() -> httpx.Response | None:
            nonlocal unanswered
            try:
                response = await c.post(f"/v1/contents/{content_id}/publish",
                                        headers=headers_of(t, "rel-approver", "approver"))
            except httpx.HTTPError:
                unanswered = True
                return None
            return None if response.status_code >= 500 else response

        response = await self._until_answered(publish, timeout=60)
        if response is not None and (response.status_code == 200 or (response.status_code == 409 and unanswered)):
            self.ledger.contents[content_id] = self.ledger.accept()
            return content_id
        self.ledger.refused[self.ledger.phase] += 1
        return None

    async def _until_answered(self, call: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        """``call()`` again (with a pause) while it returns None, for at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            answer = await call()
            if answer is not None or time.monotonic() > deadline:
                return answer
            self.ledger.unanswered[self.ledger.phase] += 1
            await asyncio.sleep(0.5)
