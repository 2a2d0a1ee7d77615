"""Reporting benchmark (``python -m bench.reporting [--events N] [--rate R] [--seconds S]``).

1. Aggregation throughput: N ``engagement.recorded`` (half shares, half clicks, by 500 known
   ambassadors on 50 known contents) of a fresh tenant into the rollups of a fresh reporting
   service (its own schema and consumer groups, started at this run's records), from start()
   until every event is counted; against a plain aiokafka consumer reading the same N records
   in the same run.
2. Freshness under sustained load: while engagements are produced at R per second for S
   seconds, one probe click per 0.1 s on a content of its own; the time from the probe's Kafka
   ack to its count visible through ``GET /v1/kpis`` (polled every 20 ms), p50 and p95.
   Engagements are produced directly to ``tracking.engagements.v1`` (not through tracking's
   webhook), so tracking's own latency is not in these figures.

Results go to bench/results/reporting.json and .md; nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer, TopicPartition

from bench import write_results
from bench.foundation import commit_start, end_offsets, rate
from services.reporting.main import ReportingSettings, create_app
from shared import topics
from shared.auth import issue_token
from shared.envelope import CloudEvent, new_event, to_binary
from shared.events import AmbassadorEnrolled, ContentPublished, EngagementKind, EngagementRecorded, Network

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


async def raw_rate(bootstrap: str, starts: dict[TopicPartition, int], targets: dict[TopicPartition, int]) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await commit_start(bootstrap, group, starts)
    t0 = time.perf_counter()
    consumer = AIOKafkaConsumer(topics.ENGAGEMENTS.name, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    count = 0
    try:
        reached = {tp: targets[tp] <= starts.get(tp, 0) for tp in targets}
        while not all(reached.values()):
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                count += len(records)
                if records and records[-1].offset + 1 >= targets[tp]:
                    reached[tp] = True
    finally:
        await consumer.stop()
    seconds = time.perf_counter() - t0
    return {"records": count, "seconds": round(seconds, 3), "events_per_second": rate(count, seconds)}


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
        starts = await end_offsets(bootstrap, topics.ENGAGEMENTS.name)
        await produce(producer, topics.ENGAGEMENTS.name, engagements(tenant, n))
        targets = await end_offsets(bootstrap, topics.ENGAGEMENTS.name)
        raw = await raw_rate(bootstrap, starts, targets)

        app = create_app(settings, name=name)
        conn = await asyncpg.connect(database_url)
        try:
            done_sql = f"""SELECT coalesce(sum(value), 0) FROM {name}.rollups WHERE tenant = $1 AND scope_type = 'tenant'
                           AND time_window = 'all' AND kpi IN ('shares', 'clicks_total')"""
            t0 = time.perf_counter()
            async with app.router.lifespan_context(app):
                start_up = time.perf_counter() - t0
                deadline = time.monotonic() + TIMEOUT
                while (await conn.fetchval(done_sql, tenant)) < n:
                    if time.monotonic() > deadline:
                        raise TimeoutError("aggregation did not finish")
                    await asyncio.sleep(0.02)
                aggregated_seconds = time.perf_counter() - t0
                freshness = await measure_freshness(app, producer, tenant, load_rate, seconds)
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            await conn.close()
    finally:
        await producer.stop()
    aggregation = {"events": n, "seconds": round(aggregated_seconds, 3), "start_up_seconds": round(start_up, 3),
                   "events_per_second": rate(n, aggregated_seconds)}
    return {"aggregation": aggregation, "raw_consumer": raw,
            "ratio": round(aggregation["events_per_second"] / raw["events_per_second"], 3),
            "freshness": freshness}


async def measure_freshness(app: Any, producer: AIOKafkaProducer, tenant: str, load_rate: int,
                            seconds: float) -> dict[str, Any]:
    headers = {"Authorization": "Bearer " + issue_token(SECRET, subject="bench", tenant=tenant, roles=["analyst"])}
    latencies: list[float] = []

    async def load() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await produce(producer, topics.ENGAGEMENTS.name, engagements(tenant, max(load_rate // 10, 1)))
            await asyncio.sleep(0.1)

    async def probe(client: httpx.AsyncClient, k: int) -> None:
        event = _event(tenant, "engagement.recorded", f"probe{k}", EngagementRecorded(
            content_id=f"probe{k}", network=Network.linkedin, kind=EngagementKind.click, occurred_at=datetime.now(UTC)))
        await produce(producer, topics.ENGAGEMENTS.name, [event])
        acked = time.perf_counter()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = await client.get("/v1/kpis", params={"scope_type": "content", "scope_id": f"probe{k}"}, headers=headers)
            if r.json()["kpis"]["clicks_total"] == 1:
                latencies.append(time.perf_counter() - acked)
                return
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        loader = asyncio.create_task(load())
        probes = []
        k = 0
        while not loader.done():
            probes.append(asyncio.create_task(probe(client, k)))
            k += 1
            await asyncio.sleep(0.1)
        await asyncio.gather(loader, *probes)
    ordered = sorted(latencies)
    def pct(p: float) -> float | None:
        return round(ordered[min(int(p * len(ordered)), len(ordered) - 1)], 4) if ordered else None
    return {"load_events_per_second": load_rate, "seconds": seconds, "probes": k, "seen": len(latencies),
            "p50_seconds": pct(0.5), "p95_seconds": pct(0.95),
            "mean_seconds": round(statistics.mean(ordered), 4) if ordered else None,
            "source": "engagements produced directly to Kafka (not through tracking's webhook)"}


def markdown(r: dict[str, Any]) -> str:
    a, raw, f = r["aggregation"], r["raw_consumer"], r["freshness"]
    return "\n".join([
        "# Reporting benchmark", "", f"Run {r['run_at']}.", "",
        "| measure | value |", "|---|---:|",
        f"| aggregation into rollups ({a['events']:,} events, from start()) | {a['events_per_second']:,.0f} ev/s "
        f"({a['seconds']} s, start-up {a['start_up_seconds']} s) |",
        f"| plain aiokafka consumer, same records | {raw['events_per_second']:,.0f} ev/s ({raw['seconds']} s) |",
        f"| ratio (target ≥ 0.5) | {r['ratio']} |",
        f"| freshness p50 / p95 under {f['load_events_per_second']} ev/s ({f['seen']}/{f['probes']} probes) "
        f"| {f['p50_seconds']} s / {f['p95_seconds']} s |", "", f"Freshness: {f['source']}.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reporting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=500, help="engagements per second during the freshness run")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("faststream", "faststream.access.kafka"):
        logging.getLogger(name).addFilter(lambda record: record.levelno >= logging.WARNING)
    from deploy.local import stack

    already_running = stack.is_running()
    env = stack.up()
    try:
        result = asyncio.run(run(env.kafka_bootstrap, env.database_url, args.events, args.rate, args.seconds))
    finally:
        if not already_running:
            stack.down()
    result["run_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_results("reporting", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
