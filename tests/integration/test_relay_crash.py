"""The outbox relay killed with SIGKILL in the middle of a backlog: what reaches Kafka twice is
bounded to one round (README's promise: at-least-once, the same id, at most one relay round)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared import db, outbox
from shared.outbox import OutboxRelay
from tests.integration.test_mechanisms import MIGRATIONS, TOPIC, mechanism_service, submitted
from tests.support import header, new_tenant, read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
ROUND = 3  # events per relay round

# A relay of ROUND events a round that dies (SIGKILL) once Kafka has acknowledged its fourth
# round, before that round's delete: the worst moment for it.
KILLED_RELAY = textwrap.dedent("""
    import asyncio, os, signal, sys
    from faststream.kafka import KafkaBroker
    from shared import db, outbox

    async def main(bootstrap, dsn, schema, batch):
        pool = await db.create_pool(dsn, schema)
        broker = KafkaBroker(bootstrap)
        await broker.connect()
        real_delete, calls = outbox._delete, []

        async def delete_or_die(conn, ids):
            if ids:
                calls.append(ids)
                if len(calls) == 4:
                    os.kill(os.getpid(), signal.SIGKILL)
            await real_delete(conn, ids)

        outbox._delete = delete_or_die
        await outbox.OutboxRelay(pool, broker, schema, batch_size=int(batch)).relay_once()

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_a_relay_killed_mid_backlog_republishes_at_most_one_round(kafka_bootstrap, database_url):
    service = mechanism_service(kafka_bootstrap, database_url)
    tenant = new_tenant()
    events = [submitted(tenant, f"e{n}") for n in range(8 * ROUND)]
    pool = await db.create_pool(database_url, service.schema)
    await db.migrate(pool, service.schema, MIGRATIONS)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, TOPIC, events)

    killed = subprocess.run([sys.executable, "-c", KILLED_RELAY, kafka_bootstrap, database_url, service.schema,
                             str(ROUND)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -9, killed.stderr
    # Rounds 1-3 deleted as they were acknowledged; round 4 acknowledged, its delete never ran.
    assert await pool.fetchval("SELECT count(*) FROM outbox") == len(events) - 3 * ROUND

    await service.broker.connect()  # the restarted relay publishes what is left, round 4 included
    assert await OutboxRelay(pool, service.broker, service.schema, batch_size=ROUND).relay_once() == 5 * ROUND
    await service.broker.stop()
    await pool.close()

    published = await read_topic(kafka_bootstrap, TOPIC.name, lambda r: header(r, "ce_tenantid") == tenant,
                                 expect=len(events) + ROUND, settle=2.0)
    ids = [header(r, "ce_id") for r in published]
    assert set(ids) == {e.id for e in events}  # nothing lost
    assert len(ids) - len(events) == ROUND  # the one round in flight at the kill, and no more
