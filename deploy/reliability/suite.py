"""The faults, one after the other, each under the steady load, each followed by a reconciliation;
and the table of what happened."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploy.local import kafka, postgres
from deploy.reliability.harness import Services
from deploy.reliability.load import Ledger, Load, Tenant
from deploy.reliability.receivers import SmtpReceiver, WebhookReceiver
from deploy.reliability.reconcile import reconcile, until_reconciled


@dataclass
class World:
    services: Services
    load: Load
    ledger: Ledger
    tenant: Tenant
    webhooks: WebhookReceiver
    smtp: SmtpReceiver
    outage: float  # how long a broker, database or receiver stays down
    failed_sends: int = 0  # distribution's failed delivery attempts so far (to tell each phase's own)
    kafka_copies: dict[str, int] = field(default_factory=dict)  # same-id copies per topic so far


@dataclass(frozen=True)
class Fault:
    name: str
    label: str
    inject: Callable[[World], Awaitable[None]]  # returns when the fault is over (what was down is back)


def kill(service: str) -> Callable[[World], Awaitable[None]]:
    async def inject(world: World) -> None:
        world.services.kill(service)  # mid-batch: the load keeps every consumer busy
        await asyncio.sleep(1)  # requests meanwhile find nobody (refused, or uncertain when cut)
        world.services.start(service)
        await world.services.ready(service)
    return inject


async def kafka_restart(world: World) -> None:
    await asyncio.to_thread(kafka.down)
    await asyncio.sleep(world.outage)
    await asyncio.to_thread(kafka.up)


async def postgres_restart(world: World) -> None:
    await asyncio.to_thread(postgres.down)
    await asyncio.sleep(world.outage)
    await asyncio.to_thread(postgres.up)


async def webhook_target_failing(world: World) -> None:
    world.webhooks.failing = True
    await asyncio.sleep(world.outage)
    world.webhooks.failing = False


async def smtp_down(world: World) -> None:
    await asyncio.to_thread(world.smtp.down)
    await asyncio.sleep(world.outage)
    await asyncio.to_thread(world.smtp.up)


async def nothing(world: World) -> None:
    await asyncio.sleep(world.outage / 2)


FAULTS = [
    Fault("baseline", "none (baseline)", nothing),
    *(Fault(f"kill-{s}", f"kill -9 {s}, restart", kill(s))
      for s in ("content", "distribution", "tracking", "reporting")),
    Fault("kafka", "Kafka broker stopped, restarted", kafka_restart),
    Fault("postgres", "PostgreSQL stopped, restarted", postgres_restart),
    Fault("webhook-target", "webhook target answers 500, recovers", webhook_target_failing),
    Fault("smtp", "SMTP server down, back up", smtp_down),
]


@dataclass
class Row:
    fault: str
    load_held: float  # accepted inputs per second while the fault lasted
    accepted: int  # inputs accepted in this phase
    lost: int
    duplicated: int
    recovery_seconds: float | None  # fault over → reconciliation OK (None: never)
    fault_seconds: float
    effect: str  # what the fault did to the clients and to distribution's sends: evidence it bit
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.recovery_seconds is not None and not self.lost and not self.duplicated


async def run_fault(world: World, fault: Fault, *, before: float, after: float, timeout: float) -> Row:
    ledger, load = world.ledger, world.load
    ledger.phase = fault.name
    notified_twice = world.webhooks.duplicates() + world.smtp.duplicates()
    webhooks_refused = world.webhooks.refused
    load.start()
    await asyncio.sleep(before)
    started = time.monotonic()
    await fault.inject(world)
    ended = time.monotonic()
    await asyncio.sleep(after)
    await load.stop()

    async def check() -> Any:
        return await reconcile(ledger, world.services.kafka, world.services.database, load.http["reporting"],
                               load.http["distribution"], world.tenant.name, world.webhooks, world.smtp)

    verdict, details, converged = await until_reconciled(timeout, check)
    recovered = time.monotonic()
    twice = world.webhooks.duplicates() + world.smtp.duplicates() - notified_twice
    span = max(ended - started, 1e-3)
    failed_sends = details.get("deliveries", {}).get("failed_sends", world.failed_sends)
    effect = (f"{ledger.refused[fault.name]} refused, {ledger.unanswered[fault.name]} unanswered; "
              f"{failed_sends - world.failed_sends} failed sends retried "
              f"({world.webhooks.refused - webhooks_refused} answered 500 by the webhook target)")
    copies = {t: n - world.kafka_copies.get(t, 0) for t, n in details.get("kafka_same_id_copies", {}).items()
              if n > world.kafka_copies.get(t, 0)}
    if copies:  # republished by an outbox relay cut between Kafka's ack and its delete; the inboxes absorb them
        effect += "; same-id copies in Kafka: " + ", ".join(f"{n} on {t}" for t, n in copies.items())
    world.kafka_copies = details.get("kafka_same_id_copies", world.kafka_copies)
    world.failed_sends = failed_sends
    return Row(fault.label, round(ledger.accepted_in(started, ended) / span, 1), ledger.accepted_of(fault.name),
               verdict.lost[fault.name], verdict.duplicated[fault.name] + twice,
               round(recovered - ended, 1) if converged else None, round(span, 1), effect,
               verdict.problems + [f"earlier phase {p}: {n} lost" for p, n in verdict.lost.items() if n and
                                   p != fault.name], details)


def table(rows: list[Row]) -> str:
    head = ("| fault | load held (inputs/s) | accepted | lost | duplicated | recovery (s) | fault lasted (s) | "
            "what it did |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
    return head + "".join(
        f"| {r.fault} | {r.load_held} | {r.accepted} | {r.lost} | {r.duplicated} | "
        f"{r.recovery_seconds if r.recovery_seconds is not None else 'not reconciled'} | {r.fault_seconds} | "
        f"{r.effect} |\n" for r in rows)


def write_results(rows: list[Row], folder: Path, context: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"faults": len([r for r in rows if r.fault != FAULTS[0].label]),
               "accepted": sum(r.accepted for r in rows), "lost": sum(r.lost for r in rows),
               "duplicated": sum(r.duplicated for r in rows), "all_reconciled": all(r.ok for r in rows)}
    (folder / "reliability.json").write_text(json.dumps(
        {"context": context, "summary": summary, "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n")
    problems = "".join(f"- {r.fault}: {p}\n" for r in rows for p in r.problems)
    (folder / "reliability.md").write_text(
        "# Fault suite (`make reliability`, `python -m deploy.reliability`)\n\n"
        f"Run {context['finished_at']} on {context['machine']}; load offered per second: {context['rates']}.\n"
        "Each fault under that load, then a reconciliation from outside (plain Kafka consumer from the "
        "beginning, asyncpg, the KPI API, the receivers' own counts). *load held*: inputs accepted per second "
        "while the fault lasted; *lost*: accepted, not in Kafka; *duplicated*: in Kafka more than once, or a "
        "notification received twice; *recovery*: from the end of the fault to the reconciliation being "
        "exact (KPIs, consumer lag 0, outboxes empty, deliveries done).\n\n"
        + table(rows) + f"\nTotal: {summary['faults']} faults, {summary['accepted']} inputs accepted, "
        f"{summary['lost']} lost, {summary['duplicated']} duplicated.\n"
        + (f"\nProblems left at the end of a reconciliation:\n\n{problems}" if problems else "")
        + (f"\n**{context['broken']}**\n" if context.get("broken") else ""))
