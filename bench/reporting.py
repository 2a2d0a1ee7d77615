"""Reporting benchmark (``python -m bench.reporting [--events N] [--rate R] [--seconds S]``).

1. Aggregation throughput: N ``engagement.recorded`` (half shares, half clicks, by 500 known
   ambassadors on 50 known contents) of a fresh tenant into the rollups of a fresh reporting
   service (its own schema and consumer groups, started at this run's records; it has read the
   contents and ambassadors first, and is restarted once the engagements are all on the
   topic), until every event is counted; against a plain aiokafka consumer reading the same N
   records in the same run (three times, the median run kept: it takes a fraction of a second).
   Both rates are steady ones, from the first records seen to the last (the plain consumer: its
   first non-empty fetch; the service: the first count visible in its rollups, polled every 5 ms),
   so neither start-up (the service's migrations and consumer groups, the plain consumer's group
   join) is in them; the service's rate from start() is reported too.
   Floors, same records, same run: the plain consumer doing only what the issue makes
   mandatory before any aggregate (records validated; their ids claimed in an inbox, one
   transaction per batch; both), the upper bound of any aggregation built on them.
2. Freshness under sustained load, end to end: a real tracking service (in process) takes
   signed engagement webhooks (Standard Webhooks reference library) at R events per second for
   S seconds, in batches every 0.1 s; one probe click per 0.1 s on a content of its own goes
   through the same webhook. The time from the probe's 202 (tracking answers after Kafka's
   ack) to its count visible through reporting's ``GET /v1/kpis`` (polled every 20 ms): p50 and
   p95.

Results go to bench/results/reporting.json and .md; nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from standardwebhooks import Webhook

from bench import wait_for, write_results
from bench.foundation import claim_ids, commit_start, end_offsets, phases, plain_consumer
from services.reporting.main import ReportingSettings, create_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as create_tracking_app
from shared import topics
from shared.auth import issue_token
from shared.envelope import CloudEvent, new_event, parse, to_binary
from shared.events import (
    AmbassadorEnrolled,
    ContentPublished,
    EngagementKind,
    EngagementRecorded,
    Network,
    NotificationSent,
    TrackedLink,
)

SECRET = "bench-secret-0123456789-0123456789"
TIMEOUT = 300.0


def _event(tenant: str, type_: str, subject: str, data: Any) -> CloudEvent[Any]:
    return new_event(type_, source="bench/reporting", subject=subject, tenant=tenant, data=data)


def engagements(tenant: str, n: int, prefix: str = "e") -> list[CloudEvent[Any]]:
    now = datetime.now(UTC)
    return [_event(tenant, "engagement.recorded", f"c{i % 50}", EngagementRecorded(
        content_id=f"c{i % 50}", ambassador_id=f"a{i % 500}", network=Network.linkedin, occurred_at=now,
        kind=EngagementKind.share if i % 2 else EngagementKind.click)) for i in range(n)]


def dimensions(tenant: str) -> tuple[list[CloudEvent[Any]], list[CloudEvent[Any]]]:
    now = datetime.now(UTC)
    contents = [_event(tenant, "content.published", f"c{i}", ContentPublished(
        content_id=f"c{i}", revision=1, title=f"c{i}", url="https://example.com/", language="fr",
        owner_subsidiary=f"s{i % 5}", campaign="bench", published_at=now)) for i in range(50)]
    ambassadors = [_event(tenant, "ambassador.enrolled", f"a{i}", AmbassadorEnrolled(
        ambassador_id=f"a{i}", subsidiary=f"s{i % 5}", department=f"d{i % 7}", country="FR", language="fr",
        network_audience={Network.linkedin: 100 + i}, effective_at=now)) for i in range(500)]
    return contents, ambassadors


async def produce(producer: AIOKafkaProducer, topic: str, events: list[CloudEvent[Any]]) -> None:
    futures = []
    for e in events:
        r = to_binary(e)
        futures.append(await producer.send(topic, value=r.value, key=r.key,
                                           headers=[(k, v.encode()) for k, v in r.headers.items()]))
    await asyncio.gather(*futures)


async def raw_rate(bootstrap: str, starts: dict[TopicPartition, int], targets: dict[TopicPartition, int],
                   on_batch: Callable[[list[ConsumerRecord]], Awaitable[None]] | None = None,
                   max_records: int | None = None) -> dict[str, Any]:
    """The plain aiokafka consumer (the foundation benchmark's) of a fresh group, at this run's records."""
    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await commit_start(bootstrap, group, starts)
    return await plain_consumer(bootstrap, topics.ENGAGEMENTS.name, group, starts, targets, on_batch=on_batch,
                                max_records=max_records)


async def median_of_3(measure: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A run of a fraction of a second swings with the machine: three, the median kept (by steady
    rate), all three reported."""
    runs = sorted([await measure() for _ in range(3)], key=lambda x: x["steady_events_per_second"] or 0)
    return runs[1] | {"steady_rates_of_the_runs": [x["steady_events_per_second"] for x in runs]}


def mandatory_work(pool: asyncpg.Pool, consumer: str, *, validate: bool, claim: bool) -> Callable[
        [list[ConsumerRecord]], Awaitable[None]]:
    """What any consumer of these records must do before its first aggregate, and nothing else:
    ``validate`` each record (envelope and contract, ``envelope.parse``: bad input to the DLQ),
    ``claim`` its id in an inbox in one transaction per batch (``inbox`` table of the shared
    migrations: deduplication by event id, the issue's replays with duplicates), the claim sent
    before the records are validated, as the service does."""

    async def validated(batch: list[ConsumerRecord]) -> None:
        for r in batch:
            parse(r.value, r.headers, topics.ENGAGEMENTS.name)

    async def work(batch: list[ConsumerRecord]) -> None:
        if not claim:
            await validated(batch)
            return
        ids = [dict(r.headers) for r in batch]
        async with pool.acquire() as conn, conn.transaction():
            inserted = asyncio.ensure_future(claim_ids(
                conn, consumer, [h["ce_source"].decode() for h in ids], [h["ce_id"].decode() for h in ids]))
            await asyncio.sleep(0)
            if validate:
                await validated(batch)
            await inserted

    return work


FLOORS = {
    "validate": "plain consumer + every record validated (envelope.parse), no database",
    "claim": "plain consumer + the batch's ids claimed in the inbox, one transaction per batch, no validation",
    "validate_and_claim": "plain consumer + both (the claim sent first, the records validated meanwhile): "
                          "a validating, deduplicating consumer with no aggregation at all",
}


async def floor_rates(bootstrap: str, database_url: str, schema: str, starts: dict[TopicPartition, int],
                      targets: dict[TopicPartition, int], max_records: int) -> dict[str, Any]:
    """The plain consumer doing only the work the issue makes mandatory (:func:`mandatory_work`),
    in batches of the service's size, in the service's schema (its ``inbox``, under consumer
    names of their own, deleted after): an upper bound of what any aggregation can reach."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, server_settings={"search_path": schema})
    consumer = f"bench-floor-{uuid.uuid4().hex[:8]}"
    try:
        results = {}
        for floor in FLOORS:
            def measure(floor: str = floor) -> Awaitable[dict[str, Any]]:
                work = mandatory_work(pool, f"{consumer}-{uuid.uuid4().hex[:8]}", validate=floor != "claim",
                                      claim=floor != "validate")
                return raw_rate(bootstrap, starts, targets, on_batch=work, max_records=max_records)
            results[floor] = await median_of_3(measure) | {"what": FLOORS[floor]}
        claimed = await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer LIKE $1", f"{consumer}-%")
        await pool.execute("DELETE FROM inbox WHERE consumer LIKE $1", f"{consumer}-%")
    finally:
        await pool.close()
    return {"batch_size": max_records, "ids_claimed": claimed, **results}


async def run(bootstrap: str, database_url: str, n: int, load_rate: int, seconds: float) -> dict[str, Any]:
    tenant, name = f"bench{uuid.uuid4().hex[:8]}", f"bench_reporting_{uuid.uuid4().hex[:8]}"
    settings = ReportingSettings(kafka_bootstrap_servers=bootstrap, database_url=database_url,
                                 jwt_hs256_secret=SECRET, kpi_stream_min_interval_seconds=1.0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        # Every group of the fresh service starts at this run's records (not the topics' history).
        for topic in (topics.CONTENT_LIFECYCLE, topics.AMBASSADORS, topics.NOTIFICATIONS, topics.ENGAGEMENTS):
            await commit_start(bootstrap, f"{name}.{topic.name}", await end_offsets(bootstrap, topic.name))
        contents, ambassadors = dimensions(tenant)
        await produce(producer, topics.CONTENT_LIFECYCLE.name, contents)
        await produce(producer, topics.AMBASSADORS.name, ambassadors)
        conn = await asyncpg.connect(database_url)
        try:
            # As in life, the contents and ambassadors are known before their engagements come:
            # the service reads them first, and is stopped while the engagements are produced.
            app = create_app(settings, name=name)
            async with app.router.lifespan_context(app):
                async def dimensions_read() -> bool:
                    return (await conn.fetchval(f"SELECT count(*) FROM {name}.contents WHERE tenant = $1", tenant) == 50
                            and await conn.fetchval(f"SELECT count(DISTINCT ambassador_id) FROM "
                                                    f"{name}.ambassador_history WHERE tenant = $1", tenant) == 500)
                await wait_for(dimensions_read, TIMEOUT, "the contents and ambassadors to be read", every=0.05)
            starts = await end_offsets(bootstrap, topics.ENGAGEMENTS.name)
            await produce(producer, topics.ENGAGEMENTS.name, engagements(tenant, n))
            targets = await end_offsets(bootstrap, topics.ENGAGEMENTS.name)
            raw = await median_of_3(lambda: raw_rate(bootstrap, starts, targets))
            floors = await floor_rates(bootstrap, database_url, name, starts, targets, settings.consumer_max_records)

            app = create_app(settings, name=name)
            done_sql = f"""SELECT coalesce(sum(value), 0)::bigint FROM {name}.rollups
                           WHERE tenant = $1 AND scope_type = 'tenant' AND time_window = 'all'
                             AND kpi IN ('shares', 'clicks_total')"""
            t0 = time.perf_counter()
            async with app.router.lifespan_context(app):
                start_up = time.perf_counter() - t0
                deadline = time.monotonic() + TIMEOUT
                first = None
                while (counted := await conn.fetchval(done_sql, tenant)) < n:
                    if counted and first is None:
                        first = (time.perf_counter(), counted)
                    if time.monotonic() > deadline:
                        raise TimeoutError("aggregation did not finish")
                    await asyncio.sleep(0.005)
                end = time.perf_counter()
                freshness = await measure_freshness(app, bootstrap, database_url, producer, tenant, load_rate, seconds)
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            await conn.close()
    finally:
        await producer.stop()
    aggregation = phases(t0, *(first or (t0, 0)), end, n, events=n, start_up_seconds=round(start_up, 3))
    for floor in FLOORS:
        floors[floor]["ratio"] = _ratio(floors[floor], raw)
    return {"aggregation": aggregation, "raw_consumer": raw, "ratio": _ratio(aggregation, raw),
            "floors": floors,
            "ratio_from_start": round(aggregation["events_per_second"] / raw["events_per_second"], 3),
            "freshness": freshness}


def _ratio(measured: dict[str, Any], raw: dict[str, Any]) -> float | None:
    if measured["steady_events_per_second"] and raw["steady_events_per_second"]:
        return round(measured["steady_events_per_second"] / raw["steady_events_per_second"], 3)
    return None


async def measure_freshness(reporting: Any, bootstrap: str, database_url: str, producer: AIOKafkaProducer,
                            tenant: str, load_rate: int, seconds: float) -> dict[str, Any]:
    """Engagements through tracking's signed webhook, probes timed from tracking's 202."""
    name = f"bench_tracking_{uuid.uuid4().hex[:8]}"
    probes_needed = int(seconds * 10) + 10
    known = [f"c{i}" for i in range(50)] + [f"probe{k}" for k in range(probes_needed)]
    # Tracking accepts engagements of the contents it was told of (distribution's notifications):
    # a fresh tracking service of its own, started at these.
    await commit_start(bootstrap, f"{name}.{topics.NOTIFICATIONS.name}",
                       await end_offsets(bootstrap, topics.NOTIFICATIONS.name))
    await produce(producer, topics.NOTIFICATIONS.name, [_event(tenant, "notification.sent", c, NotificationSent(
        notification_id=str(uuid.uuid4()), content_id=c, ambassador_id="a0", channel="email", at=datetime.now(UTC),
        links=[TrackedLink(code=uuid.uuid4().hex[:16], network=Network.linkedin,
                           destination_url=f"https://example.com/{c}")])) for c in known])
    tracking = create_tracking_app(TrackingSettings(
        kafka_bootstrap_servers=bootstrap, database_url=database_url, jwt_hs256_secret=SECRET,
        rate_limit_exempt_clients=["127.0.0.1", "::1", "testclient"]), name=name)
    headers = {"Authorization": "Bearer " + issue_token(SECRET, subject="bench", tenant=tenant, roles=["analyst"])}
    admin = {"Authorization": "Bearer " + issue_token(SECRET, subject="bench", tenant=tenant, roles=["admin"])}
    source = f"bench-{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    failures: dict[str, int] = {}

    async with tracking.router.lifespan_context(tracking), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=tracking), base_url="http://tracking") as webhook, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=reporting), base_url="http://reporting") as api:
        answer = await webhook.post(f"/v1/webhook-sources/{source}/secrets", headers=admin)
        answer.raise_for_status()
        signer = Webhook(answer.json()["secret"])
        db = await asyncpg.connect(database_url)
        try:
            async def contents_learnt() -> bool:
                return await db.fetchval(f"SELECT count(DISTINCT content_id) FROM {name}.links WHERE tenant = $1",
                                         tenant) == len(known)
            await wait_for(contents_learnt, 60, "tracking to learn the contents", every=0.05)
        finally:
            await db.close()

        async def send(events: list[dict[str, Any]]) -> bool:
            now = datetime.now(UTC)
            body = json.dumps({"events": events})
            msg_id = f"msg_{uuid.uuid4().hex}"
            r = await webhook.post(f"/v1/webhooks/{source}", content=body, headers={
                "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(msg_id, now, body), "content-type": "application/json"})
            if r.status_code != 202:
                failures[f"{r.status_code} {r.text[:300]}"] = failures.get(f"{r.status_code} {r.text[:300]}", 0) + 1
            return r.status_code == 202

        async def load() -> None:
            end = time.monotonic() + seconds
            per_tick = max(load_rate // 10, 1)
            while time.monotonic() < end:
                now = datetime.now(UTC).isoformat()
                await send([{"type": "reaction", "content_id": f"c{i % 50}", "network": "linkedin", "count": 1,
                             "occurred_at": now} for i in range(per_tick)])
                await asyncio.sleep(0.1)

        async def probe(k: int) -> None:
            click = {"type": "click", "content_id": f"probe{k}", "network": "linkedin", "count": 1,
                     "occurred_at": datetime.now(UTC).isoformat()}
            if not await send([click]):
                return
            accepted = time.perf_counter()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = await api.get("/v1/kpis", params={"scope_type": "content", "scope_id": f"probe{k}"},
                                  headers=headers)
                if r.json()["kpis"]["clicks_total"] == 1:
                    latencies.append(time.perf_counter() - accepted)
                    return
                await asyncio.sleep(0.02)

        loader = asyncio.create_task(load())
        probes = []
        k = 0
        while not loader.done():
            probes.append(asyncio.create_task(probe(k)))
            k += 1
            await asyncio.sleep(0.1)
        await asyncio.gather(loader, *probes)
    db = await asyncpg.connect(database_url)
    try:
        await db.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await db.close()
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        return round(ordered[min(int(p * len(ordered)), len(ordered) - 1)], 4) if ordered else None
    return {"load_events_per_second": load_rate, "seconds": seconds, "probes": k, "seen": len(latencies),
            "p50_seconds": pct(0.5), "p95_seconds": pct(0.95),
            "mean_seconds": round(statistics.mean(ordered), 4) if ordered else None, "webhook_failures": failures,
            "source": "engagements through tracking's signed webhook (in process), timed from its 202 "
                      "(after Kafka's ack) to the count visible in reporting's API"}


NOTES = [
    "Where an engagement's time goes (profiles of this benchmark, issue 7's third round, per event): aiokafka's "
    "fetch and record parsing ~4 µs (all the plain consumer does); FastStream's batch delivery ~1–2 µs; "
    "decoding (`envelope.parse`: envelope and contract validated) ~11 µs; the inbox claim ~10 µs of "
    "PostgreSQL, now sent before the decoding and done while it runs; the effects worked out in Python "
    "(alike engagements grouped, merged per hour) ~5 µs; the one statement spreading each hour over its four "
    "windows, the members hour first and the stream's dirty keys ~13 µs of PostgreSQL; the commit ~5 µs. "
    "About 45–55 µs in all against the plain consumer's ~4.",
    "This round (quiet machine, steady rates): ~13,000 → ~16,000–18,000 ev/s. The garbage collector: with "
    "CPython's default first generation (700 allocations) it ran several times per batch of 5,000 events and "
    "its full collections walked the whole heap; every service now starts with a larger first generation and "
    "its start-up heap frozen (shared/service.py): decoding ~18–20 → ~11 µs/event. The plain consumer runs in "
    "the same process after a service has started and profits as much (~160–190k → ~220–260k ev/s), so the "
    "ratio stays ~0.05–0.075. The consumer claims the ids the records' headers give while it decodes them "
    "(~7 µs/event less per batch; an id claimed for a record that proves invalid is given back).",
    "Earlier rounds: one-pass parse; windows spread in SQL; members hour first; alike engagements grouped; "
    "shared advisory locks for engagement batches; the KPI stream flusher no longer holds the dirty keys' row "
    "locks (122 → 36 µs/event for the rollups statement under load); batches of up to 5,000.",
    "Why 0.5 is out of reach: the floors above, measured in the same run on the same records, are the plain "
    "consumer doing only what the issue requires before any aggregate: validating every record (bad input to "
    "the DLQ with its cause) reads ~0.33 of the plain consumer, claiming the ids in the inbox (the replays with "
    "duplicates counted once) ~0.39, both ~0.29. An aggregation built on them can only be slower. Validating "
    "a whole batch in one pydantic call instead of record by record costs ~6 instead of ~8 µs per event "
    "(measured in isolation): the validation floor would rise to ~0.4, still below 0.5 with nothing else done. "
    "What would reach it: validation out of CPython (a compiled decoder for the contracts, beside pydantic), "
    "or aggregation spread over processes on more cores than this machine's two, or a target taken against "
    "a consumer doing the same mandatory work (the floors).",
]


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def markdown(r: dict[str, Any]) -> str:
    a, raw, f = r["aggregation"], r["raw_consumer"], r["freshness"]
    return "\n".join([
        "# Reporting benchmark", "", f"Run {r['run_at']}, {r.get('cpus')} CPUs, load {r.get('load')}.", "",
        "| measure | value |", "|---|---:|",
        f"| aggregation into rollups, steady ({a['steady_events']:,} of {a['events']:,} events) "
        f"| {_n(a['steady_events_per_second'])} ev/s ({a['steady_seconds']} s) |",
        f"| plain aiokafka consumer, same records, steady ({raw['steady_events']:,}), median of 3 runs "
        f"({', '.join(map(_n, raw['steady_rates_of_the_runs']))}) "
        f"| {_n(raw['steady_events_per_second'])} ev/s ({raw['steady_seconds']} s) |",
        f"| **ratio** (target ≥ 0.5) | **{r['ratio']}** |",
        *(f"| floor, {fl['what']} (batches of {r['floors']['batch_size']:,}; median of 3: "
          f"{', '.join(map(_n, fl['steady_rates_of_the_runs']))}) | {_n(fl['steady_events_per_second'])} ev/s, "
          f"ratio {fl['ratio']} |" for fl in (r["floors"][floor] for floor in FLOORS)),
        f"| aggregation from start() (start-up {a['start_up_seconds']} s) | {a['events_per_second']:,.0f} ev/s "
        f"({a['seconds']} s); plain consumer from start() {raw['events_per_second']:,.0f} ev/s; "
        f"ratio {r['ratio_from_start']} |",
        f"| freshness p50 / p95 under {f['load_events_per_second']} ev/s ({f['seen']}/{f['probes']} probes) "
        f"| {f['p50_seconds']} s / {f['p95_seconds']} s (target p95 < 2 s) |", "",
        f"Freshness: {f['source']}. Webhook calls not accepted: {f['webhook_failures'] or 'none'}.", "",
        f"Floors: {r['floors']['ids_claimed']:,} ids claimed in the inbox by the six claiming runs "
        f"({a['events']:,} each; deleted after).", "",
        *(f"- {note}" for note in r.get("notes", [])), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reporting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=500, help="engagements per second during the freshness run")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("faststream", "faststream.access.kafka"):
        logging.getLogger(name).addFilter(lambda record: record.levelno >= logging.WARNING)
    from deploy.local import stack

    already_running = stack.is_running()
    env = stack.up()
    load_before = os.getloadavg()[0]
    try:
        result = asyncio.run(run(env.kafka_bootstrap, env.database_url, args.events, args.rate, args.seconds))
    finally:
        if not already_running:
            stack.down()
    result["run_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["notes"] = NOTES
    result["cpus"], result["load"] = os.cpu_count(), f"{load_before:.2f} → {os.getloadavg()[0]:.2f}"
    write_results("reporting", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
