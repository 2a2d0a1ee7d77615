"""Distribution fan-out benchmark: one content published to a large audience, against the real
Kafka and PostgreSQL, and in the same run the raw ceiling.

python -m bench distribution [--audience N] [--small N]

Measured (in a fresh process per audience size, so that its peak RSS is the fan-out's own):
N enrolled ambassadors are seeded by COPY straight into the service's tables (schema
``bench_distribution``); one ``content.published`` record for the whole tenant is handed to the
service's real consumer (inbox + fan-out job recorded in one transaction, as when read from
Kafka); then, side by side as in the service, its fan-out worker writes the pages (notifications,
outbox) and its outbox relay publishes them. Time = from the event consumed to every
notification row durable (the worker has no page left) and every ``notification.sent``
acknowledged by Kafka (the outbox empty: the relay deletes a row only after Kafka's ack).

Raw ceiling, same run and machine: COPY of N rows of the same columns into a plain table, plus
a plain aiokafka producer (the service producer's settings) sending N records of the same size,
pipelined. Ratio = ceiling time / fan-out time (target: at least 0.5); target: at most 10 s for
100,000; memory flat in the audience size (peak RSS at the small and the large size).
Results: bench/results/distribution.json and distribution.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord

from bench import write_results
from services.distribution.handlers.fanout import Fanout, FanoutWorker
from services.distribution.main import DistributionSettings, fanout_policy
from shared import db, topics
from shared.consumer import EventConsumer
from shared.envelope import new_event, to_binary
from shared.events import ContentPublished, ShareText
from shared.kafka import aiokafka_producer, create_broker, send_keyed
from shared.outbox import OutboxRelay

SCHEMA = "bench_distribution"
MIGRATIONS = Path(__file__).parent.parent / "services" / "distribution" / "migrations"
TARGET_SECONDS, TARGET_RATIO = 10.0, 0.5
SEED_CHUNK = 10_000


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def seed(conn: asyncpg.Connection, tenant: str, n: int) -> None:
    """N current employees, all enrolled with a consent in force, COPYed in chunks."""
    now = datetime.now(UTC)
    for start in range(0, n, SEED_CHUNK):
        ids = [f"e{i:07d}" for i in range(start, min(start + SEED_CHUNK, n))]
        await conn.copy_records_to_table("employees", columns=(
            "tenant", "employee_id", "email", "subsidiary", "department", "site", "country", "language", "version",
            "effective_at"), records=[(tenant, e, f"{e}@acme.example", f"S{i % 12:02d}", "Sales", "HQ", "FR", "fr-FR",
                                       1, now) for i, e in enumerate(ids)])
        await conn.copy_records_to_table("ambassadors", columns=(
            "tenant", "ambassador_id", "employee_id", "consent_text_version", "consent_expires_at"),
            records=[(tenant, uuid.uuid4(), e, "v1", now + timedelta(days=365)) for e in ids])
    await conn.execute("ANALYZE employees; ANALYZE ambassadors")


def published(tenant: str) -> Any:
    data = ContentPublished(
        content_id=str(uuid.uuid4()), revision=1, title="Our new plant opens", url="https://acme.example/news/plant",
        language="fr", campaign="plant-2026", published_at=datetime.now(UTC),
        share_texts=[ShareText(network="linkedin", language="fr", text="Fiers de notre usine !", variant=0),
                     ShareText(network="linkedin", language="fr", text="Une usine de plus !", variant=1)])
    return new_event("content.published", source="portevoix/content", subject=data.content_id, tenant=tenant, data=data)


async def measure(kafka_bootstrap: str, database_url: str, n: int) -> dict[str, Any]:
    """One fan-out of one content to ``n`` ambassadors (the child process's work)."""
    settings = DistributionSettings(kafka_bootstrap_servers=kafka_bootstrap, database_url=database_url)
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await admin.close()
    pool = await db.create_pool(database_url, SCHEMA, min_size=2, max_size=8)
    await db.migrate(pool, SCHEMA, MIGRATIONS)
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await seed(conn, tenant, n)
    rss_seeded = peak_rss_mib()
    broker = create_broker(settings, client_id="portevoix-bench-distribution")
    policy = fanout_policy(settings)
    fanout = Fanout(policy)
    consumer = EventConsumer(name="distribution", topic=topics.CONTENT_LIFECYCLE, handlers={
        "content.published": fanout.on_content_published}, pool=lambda: pool, broker=broker, retry_delays=[1.0])
    await broker.connect()
    try:
        await aiokafka_producer(broker).partitions_for(topics.NOTIFICATIONS.name)
        event = published(tenant)
        wire = to_binary(event)
        record = ConsumerRecord(topics.CONTENT_LIFECYCLE.name, 0, 0, int(time.time() * 1000), 0, wire.key,
                                wire.value, None, len(wire.key), len(wire.value),
                                [(k, v.encode()) for k, v in wire.headers.items()])
        relay = OutboxRelay(pool, broker, SCHEMA, batch_size=settings.outbox_batch_size,
                            poll_interval=settings.outbox_poll_interval_seconds)
        started = time.perf_counter()
        await consumer.process((record,))
        consumed = time.perf_counter() - started
        await relay.start()  # its own loop, woken by each page's NOTIFY, as in the service
        try:
            await FanoutWorker(lambda: pool, policy).drain()
            durable = time.perf_counter() - started
            while await outbox_left(pool):
                await asyncio.sleep(0.01)
            total = time.perf_counter() - started
        finally:
            await relay.stop()
    finally:
        await broker.stop()
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM notifications WHERE tenant = $1 AND status = 'sent'", tenant)
        left = await conn.fetchval("SELECT count(*) FROM outbox")
        sample = await conn.fetchrow("SELECT * FROM notifications WHERE tenant = $1 LIMIT 1", tenant)
    await pool.close()
    assert rows == n and left == 0, (rows, left)
    return {"audience": n, "seconds": round(total, 3), "consume_seconds": round(consumed, 3),
            "rows_durable_seconds": round(durable, 3), "last_ack_after_rows_seconds": round(total - durable, 3),
            "events_per_second": round(n / total, 1), "peak_rss_mib": peak_rss_mib(),
            "peak_rss_after_seeding_mib": rss_seeded, "sample_links": json.loads(sample["links"])}


async def outbox_left(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)"))


async def ceiling(kafka_bootstrap: str, database_url: str, n: int) -> dict[str, Any]:
    """The same volume with nothing of ours: COPY of equivalent rows, raw pipelined produce."""
    settings = DistributionSettings(kafka_bootstrap_servers=kafka_bootstrap, database_url=database_url)
    now = datetime.now(UTC)
    tenant, content_id = f"raw{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    links = json.dumps([{"code": "Abcdefghijklmnop", "network": "linkedin",
                         "destination_url": "https://acme.example/news/plant"}])
    rows = [(tenant, uuid.uuid4(), content_id, uuid.uuid4(), "in_app", links, "sent", 0, now) for _ in range(n)]
    records = []
    for row in rows:
        r = to_binary(new_event("notification.sent", source="portevoix/distribution", subject=str(row[1]),
                                tenant=tenant, data={
                                    "notification_id": str(row[1]), "content_id": content_id,
                                    "ambassador_id": str(row[3]), "subsidiary": "S01", "department": "Sales",
                                    "campaign": "plant-2026", "channel": "in_app", "links": json.loads(links),
                                    "reason": None, "at": now.isoformat()}))
        records.append((r.key, r.value, [(k, v.encode()) for k, v in r.headers.items()]))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}_raw")
        await conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}_raw.notifications")
        await conn.execute(f"""CREATE TABLE {SCHEMA}_raw.notifications (tenant text, notification_id uuid,
            content_id text, ambassador_id uuid, channel text, links jsonb, status text, variant int,
            sent_at timestamptz)""")
        started = time.perf_counter()
        await conn.copy_records_to_table("notifications", schema_name=f"{SCHEMA}_raw", records=rows)
        copy_seconds = time.perf_counter() - started
        await conn.execute(f"DROP SCHEMA {SCHEMA}_raw CASCADE")
    finally:
        await conn.close()
    broker = create_broker(settings, client_id="portevoix-bench-raw")
    await broker.connect()  # only to read back the service producer's settings
    p = aiokafka_producer(broker)
    config = {"acks": "all", "enable_idempotence": True, "linger_ms": int(p._message_accumulator._linger_time * 1000),
              "max_batch_size": p._message_accumulator._batch_size, "compression_type": p._compression_type}
    await broker.stop()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **config)
    await producer.start()
    try:
        await producer.partitions_for(topics.NOTIFICATIONS.name)
        started = time.perf_counter()
        futures = [await producer.send(topics.NOTIFICATIONS.name, value=v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
        produce_seconds = time.perf_counter() - started
        # For information: the same records in keyed batches, as the outbox relay now sends them.
        started = time.perf_counter()
        await asyncio.gather(*await send_keyed(producer, topics.NOTIFICATIONS.name, records))
        batched_seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"copy_seconds": round(copy_seconds, 3), "produce_seconds": round(produce_seconds, 3),
            "seconds": round(copy_seconds + produce_seconds, 3), "producer": config,
            "batched_produce_seconds": round(batched_seconds, 3),
            "batched_seconds": round(copy_seconds + batched_seconds, 3),
            "record_bytes": round(sum(len(k) + len(v) + sum(len(a) + len(b) for a, b in h)
                                      for k, v, h in records[:1000]) / min(n, 1000), 1)}


def child(size: int, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench", "distribution", "--child", str(size)], env=env,
                         capture_output=True, text=True, check=False, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"fan-out of {size} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench distribution", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audience", type=int, default=100_000, help="ambassadors in the audience (100000)")
    parser.add_argument("--small", type=int, default=20_000, help="the smaller audience, for memory (20000)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = asyncio.run(measure(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"], args.child))
        print(json.dumps(result))
        return 0

    from deploy.local import stack

    started = time.perf_counter()
    load_before = os.getloadavg()
    already_running = stack.is_running()
    stack_env = stack.up()
    try:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack_env.kafka_bootstrap,
               "DATABASE_URL": stack_env.database_url}
        small = child(args.small, env)
        large = child(args.audience, env)
        raw = asyncio.run(ceiling(stack_env.kafka_bootstrap, stack_env.database_url, args.audience))
    finally:
        if not already_running:
            stack.down()
    ratio = round(raw["seconds"] / large["seconds"], 3)
    ratio_batched = round(raw["batched_seconds"] / large["seconds"], 3)
    report = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "fanout": large, "fanout_small": small, "raw_ceiling": raw, "ratio": ratio,
        "ratio_to_batched_ceiling": ratio_batched,
        "page_size": DistributionSettings.model_fields["fanout_page_size"].default,
        "concurrency": DistributionSettings.model_fields["fanout_concurrency"].default,
        "checks": {"seconds_at_most_10": large["seconds"] <= TARGET_SECONDS,
                   "ratio_at_least_0.5": ratio >= TARGET_RATIO,
                   "memory_flat": large["peak_rss_mib"] <= small["peak_rss_mib"] * 1.25},
    }
    write_results("distribution", report, markdown(report))
    return 0 if all(report["checks"].values()) else 2


def markdown(r: dict[str, Any]) -> str:
    f, s, raw = r["fanout"], r["fanout_small"], r["raw_ceiling"]
    return f"""# Distribution fan-out benchmark

Run {r['run_at']}, {r['duration_seconds']} s, {r['machine']['cpus']} CPUs, load {r['machine']['load_before'][0]} → {r['machine']['load_after'][0]}.
One `content.published` to {f['audience']:,} enrolled ambassadors (seeded by COPY), through the service's consumer
(inbox + fan-out job in one transaction), then its fan-out worker (pages of {r['page_size']:,}, one transaction each,
{r['concurrency']} at once) and its outbox relay side by side, until every notification row is durable and every
`notification.sent` is acknowledged by Kafka.

| | time | events/s | peak RSS |
|---|---:|---:|---:|
| fan-out, {f['audience']:,} ambassadors | {f['seconds']} s (rows durable at {f['rows_durable_seconds']} s, last ack {f['last_ack_after_rows_seconds']} s later) | {f['events_per_second']:,} | {f['peak_rss_mib']} MiB |
| fan-out, {s['audience']:,} ambassadors | {s['seconds']} s (rows durable at {s['rows_durable_seconds']} s, last ack {s['last_ack_after_rows_seconds']} s later) | {s['events_per_second']:,} | {s['peak_rss_mib']} MiB |
| raw ceiling, {f['audience']:,}: COPY + pipelined produce | {raw['seconds']} s (COPY {raw['copy_seconds']} s + produce {raw['produce_seconds']} s) | {round(f['audience'] / raw['seconds']):,} | |
| (information) the same COPY + the produce in keyed batches, as the relay sends | {raw['batched_seconds']} s (produce {raw['batched_produce_seconds']} s) | {round(f['audience'] / raw['batched_seconds']):,} | |

Ratio (ceiling time / fan-out time): **{r['ratio']}** (target ≥ 0.5); against the ceiling with keyed-batch produce: {r['ratio_to_batched_ceiling']}. Target time ≤ 10 s: {'ok' if r['checks']['seconds_at_most_10'] else 'MISSED'}.
Memory flat in the audience size (peak RSS at {f['audience']:,} within 25 % of that at {s['audience']:,}): {'ok' if r['checks']['memory_flat'] else 'MISSED'}.

What changed (perf-fanout): the fan-out encodes the JSON its page's events share (headers, most of `data`,
links) once per page and hands the outbox pre-encoded rows (`outbox.enqueue_encoded`); the outbox relay parses
a round's headers in one call and queues its records in keyed batches (`shared.kafka.send_keyed`: the partition
`send` would pick, order kept per partition) instead of one `send` each.

What changed (perf-fanout2): the relay's rounds overlap (`OutboxRelay.relay_once`: up to 10 rounds in one
transaction; while Kafka acknowledges round N the relay deletes round N-1's rows, fetches round N+1 and builds its
batches, and queues them only once round N is entirely acknowledged, so order and the failure rules are as
before). Before, it fetched, produced, waited for the acks and deleted strictly one after another and trailed
the rows by 1.2-2 s; it now ends within ~0.1-0.2 s of the last page. The keys of a round are hashed together
(`murmur2_many`, ~10x less CPU than one murmur2 per key); the outbox's headers column is `json` (no jsonb parse
on COPY nor reprint on read) and the notifications table has one index by ambassador instead of two. Fan-out
page size, concurrency and the relay's batch size were tried (pages of 4,000, 3 writers, relay rounds of 2,000):
no gain once the relay keeps up, so the defaults stay. What is left is CPU: the one Python process (fan-out and
relay in one event loop) is busy ~2.2 s of a ~3 s run, PostgreSQL ~2 s on the other core.

The ceiling is the issue's: COPY + the plain producer's pipelined `send`. The row above shows the same COPY with
the records queued in batches per partition (`send_batch`, as the relay does): a stricter ceiling, against
which the ratio is lower; both are reported. The machine is shared (2 cores; other benchmarks may run): the
load average before and after is shown above, compare runs by their ratio.
Records ~{raw['record_bytes']} bytes (key + value + headers); producer {raw['producer']}.
"""
