"""The demo: the whole flow end to end on the local runtime, with a readable KPI report.

Starts Kafka, PostgreSQL and the four services; an HR system sends employees through
``hr.employees.v1`` (plain Kafka client, both CloudEvents modes); a third of them enrol; a comms
editor writes a post and an approver publishes it; distribution notifies the ambassadors with
tracked links; people (and a link-preview bot) click; one event is delivered twice on purpose;
reporting counts every click exactly once. ``--keep-running`` leaves everything up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.local import stack
from deploy.local.common import run_dir
from shared import topics
from shared.auth import issue_token
from shared.envelope import new_event, record_key, to_binary, to_structured
from shared.events import EmployeeUpserted

ROOT = Path(__file__).resolve().parents[1]
SECRET = "demo-secret-local-only-0123456789abcdef"
# A tenant per run: the stack keeps its data between runs, the report is about this one.
TENANT = f"acme-{datetime.now(UTC):%Y%m%d-%H%M%S}"
PORTS = {"content": 8001, "distribution": 8002, "tracking": 8003, "reporting": 8004}
SUBSIDIARIES = [("ACME-FR", "FR", "fr-FR"), ("ACME-DE", "DE", "de-DE"), ("ACME-UK", "GB", "en-GB")]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def step(message: str) -> None:
    print(f"\n▶ {message}", flush=True)


def info(message: str) -> None:
    print(f"  {message}", flush=True)


def headers_for(subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, subject=subject, tenant=TENANT, roles=list(roles))}"}


@dataclass
class Services:
    processes: dict[str, subprocess.Popen[bytes]]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in 30 s: killed", flush=True)
                process.kill()


def start_services(env: stack.StackEnv) -> Services:
    logs = run_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name, port in PORTS.items():
        process_env = {
            **os.environ, "PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS": env.kafka_bootstrap,
            "PORTEVOIX_DATABASE_URL": env.database_url, "PORTEVOIX_JWT_HS256_SECRET": SECRET,
            "PORTEVOIX_HTTP_PORT": str(port), "PORTEVOIX_OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
            "PORTEVOIX_TRACKING_BASE_URL": f"http://127.0.0.1:{PORTS['tracking']}",
        }
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child process keeps it
        processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=process_env,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Services(processes)


async def wait_ready(services: Services, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        for name, port in PORTS.items():
            while True:
                if services.processes[name].poll() is not None:
                    raise SystemExit(f"{name} exited; see {run_dir() / 'logs' / (name + '.log')}")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        info(f"{name:<13} ready on http://127.0.0.1:{port}")
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} not ready after {timeout:.0f}s; see {run_dir() / 'logs'}")
                await asyncio.sleep(0.3)


def employees(count: int) -> list[EmployeeUpserted]:
    rng = random.Random(7)
    given = ["Ana", "Lucas", "Emma", "Jonas", "Chloé", "Oliver", "Léa", "Mia", "Noah", "Inès", "Felix", "Amelia"]
    family = ["Martin", "Müller", "Smith", "Bernard", "Schmidt", "Jones", "Dubois", "Weber", "Taylor"]
    people = []
    for n in range(count):
        subsidiary, country, language = SUBSIDIARIES[n % len(SUBSIDIARIES)]
        first, last = rng.choice(given), rng.choice(family)
        people.append(EmployeeUpserted(
            employee_id=f"E{1000 + n}", email=f"{first.lower()}.{last.lower()}{n}@acme.example",
            given_name=first, family_name=last, subsidiary=subsidiary,
            department=rng.choice(["Marketing", "Sales", "R&D", "HR"]), site=rng.choice(["HQ", "Plant", "Office"]),
            country=country, language=language, effective_at=datetime.now(UTC), version=1))
    return people


async def send_hr_feed(bootstrap: str, people: list[EmployeeUpserted]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for n, person in enumerate(people):
            event = new_event("hr.employee.upserted", source="hr/workday", subject=person.employee_id,
                              tenant=TENANT, data=person)
            key = record_key(TENANT, person.employee_id)
            if n % 2:  # half in structured mode, as some HR connectors send it
                await producer.send(topics.HR_EMPLOYEES.name, value=to_structured(event), key=key,
                                    headers=[("content-type", b"application/cloudevents+json")])
            else:
                record = to_binary(event)
                await producer.send(topics.HR_EMPLOYEES.name, value=record.value, key=key,
                                    headers=[(k, v.encode()) for k, v in record.headers.items()])
        await producer.flush()
    finally:
        await producer.stop()


async def poll(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


async def enrol(client: httpx.AsyncClient, employee_id: str, rng: random.Random) -> bool:
    networks = {"linkedin": rng.randint(150, 3000), "x": rng.randint(50, 1500)}
    response = await client.post(f"http://127.0.0.1:{PORTS['distribution']}/v1/me/enrolment",
                                 headers=headers_for(employee_id, "employee"),
                                 json={"consent_text_version": "2026-01", "networks": networks})
    return response.status_code in (200, 201)


async def redeliver_one_engagement(bootstrap: str) -> str:
    """Copy one engagement record back onto its topic: a duplicate delivery, on purpose."""
    consumer = AIOKafkaConsumer(topics.ENGAGEMENTS.name, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if (dict(record.headers).get("ce_tenantid") or b"").decode() == TENANT:
                        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
                        await producer.start()
                        await producer.send_and_wait(record.topic, value=record.value, key=record.key,
                                                     headers=list(record.headers))
                        await producer.stop()
                        return dict(record.headers)["ce_id"].decode()
    finally:
        await consumer.stop()


async def flow(env: stack.StackEnv, employee_count: int) -> None:
    rng = random.Random(42)
    people = employees(employee_count)
    step(f"HR system sends {len(people)} employees on hr.employees.v1 (half binary, half structured mode)")
    await send_hr_feed(env.kafka_bootstrap, people)

    async with httpx.AsyncClient(timeout=10) as client:
        volunteers = [p for n, p in enumerate(people) if n % 3 == 0]
        step(f"{len(volunteers)} employees opt in as ambassadors (consent recorded)")
        for person in volunteers:
            await poll(lambda p=person: enrol(client, p.employee_id, rng), f"enrolment of {person.employee_id}")
        info(f"enrolled: {len(volunteers)}")

        step("A comms editor writes a post; an approver publishes it")
        editor, approver = headers_for("editor-claire", "editor"), headers_for("approver-omar", "approver")
        content = {
            "title": "ACME opens its first carbon-neutral plant",
            "summary": "Our Lyon plant now runs on 100 % renewable energy.",
            "url": "https://news.acme.example/2026/carbon-neutral-plant?ref=portal",
            "language": "en", "tags": ["sustainability"], "campaign": "green-2026",
            "share_texts": [
                {"network": "linkedin", "language": "en", "text": "Proud of our teams: our Lyon plant is now carbon-neutral!"},
                {"network": "x", "language": "en", "text": "Our Lyon plant now runs on 100% renewables #employee"},
            ],
        }
        created = (await client.post(f"http://127.0.0.1:{PORTS['content']}/v1/contents", json=content, headers=editor))
        created.raise_for_status()
        content_id = created.json()["id"]
        published = await client.post(f"http://127.0.0.1:{PORTS['content']}/v1/contents/{content_id}/publish",
                                      headers=approver)
        published.raise_for_status()
        info(f"content {content_id} published")

        step("Distribution notifies every ambassador with tracked links (in-app feed)")
        feeds: dict[str, Any] = {}
        for person in volunteers:
            async def feed(p: EmployeeUpserted = person) -> Any:
                r = await client.get(f"http://127.0.0.1:{PORTS['distribution']}/v1/me/feed",
                                     headers=headers_for(p.employee_id, "employee"))
                items = r.json() if r.status_code == 200 else []
                items = items.get("items", items) if isinstance(items, dict) else items
                return [i for i in items if str(i.get("content_id")) == content_id]
            feeds[person.employee_id] = (await poll(feed, "notifications"))[0]
        info(f"notified: {len(feeds)} ambassadors")

        step("Colleagues click the shared links (and a link-preview bot fetches some)")
        clicks = human = 0
        for n, item in enumerate(feeds.values()):
            links = item.get("links") or []
            for link in links[: 1 + n % 2]:
                url = link.get("tracked_url") or link.get("url")
                for repeat in range(1 + (n % 3 == 0)):  # some people click twice
                    r = await client.get(url, headers={"User-Agent": BROWSER}, follow_redirects=False)
                    assert r.status_code == 302, r.text
                    clicks += 1
                    human += repeat == 0
                if n % 4 == 0:
                    await client.get(url, headers={"User-Agent": "LinkedInBot/1.0"}, follow_redirects=False)
                    clicks += 1
        info(f"clicks sent: {clicks} ({human} first clicks by people)")

        step("One engagement event is delivered twice on purpose")
        duplicate = await redeliver_one_engagement(env.kafka_bootstrap)
        info(f"re-sent event {duplicate}")

        step("Reporting rolls it all up")
        analyst = headers_for("analyst-sam", "analyst")

        async def settled() -> Any:
            r = await client.get(f"http://127.0.0.1:{PORTS['reporting']}/v1/kpis",
                                 params={"scope_type": "tenant", "scope_id": TENANT}, headers=analyst)
            kpis = r.json().get("kpis", {}) if r.status_code == 200 else {}
            return kpis if kpis.get("clicks_total") == clicks else None

        kpis = await poll(settled, "the KPIs to count every click", timeout=60)
        report = (await client.get(f"http://127.0.0.1:{PORTS['reporting']}/v1/kpis/report", headers=analyst)).json()
    print_report(kpis, report, clicks, env)


def print_report(kpis: dict[str, Any], report: dict[str, Any], clicks_sent: int, env: stack.StackEnv) -> None:
    print("\n" + "═" * 64)
    print(f"  KPI report — tenant {TENANT}")
    print("═" * 64)
    for name, value in sorted(kpis.items()):
        print(f"  {name.replace('_', ' '):<36}{value:>12}")
    print("─" * 64)
    verdict = "exactly once ✔" if kpis.get("clicks_total") == clicks_sent else "MISMATCH ✘"
    print(f"  clicks sent {clicks_sent}, counted {kpis.get('clicks_total')} (one duplicate delivered): {verdict}")
    top = report.get("top_contents") or []
    if top:
        print("  top contents by clicks:")
        for row in top[:5]:
            print(f"    {row.get('clicks', row.get('value', '')):>6}  {row.get('title') or row.get('content_id')}")
    print("═" * 64)
    print("  APIs:    " + "  ".join(f"{n} http://127.0.0.1:{p}/docs" for n, p in PORTS.items()))
    print("  Metrics: " + "  ".join(f"http://127.0.0.1:{p}/metrics" for p in PORTS.values()))
    print(f"  Kafka {env.kafka_bootstrap}   PostgreSQL {env.database_url}   logs {run_dir() / 'logs'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up after the report")
    parser.add_argument("--employees", type=int, default=90)
    args = parser.parse_args()
    started = time.monotonic()
    step("Starting Kafka and PostgreSQL")
    env = stack.up()
    services = None
    try:
        step("Starting the four services")
        services = start_services(env)
        asyncio.run(wait_ready(services))
        asyncio.run(flow(env, args.employees))
        print(f"\nDone in {time.monotonic() - started:.0f}s.")
        if args.keep_running:
            print("Everything keeps running; Ctrl-C stops it all.")
            stop_signals = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
            signal.sigwait(stop_signals)
    except KeyboardInterrupt:
        pass
    finally:
        step("Stopping")
        if services:
            services.stop()
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
