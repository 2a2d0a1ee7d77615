"""The tracking benchmark's load generator: a separate process, on loopback, as outside clients.

python -m bench.tracking_load PLAN.json  → prints one JSON result line.

1. webhooks: signed batches (Standard Webhooks reference library) of ``batch`` events, from
   ``concurrency`` concurrent senders, until ``batches`` were sent; accepted events counted from
   the answers.
2. clicks: GET /r/{code} open-loop at ``click_rate`` per second for ``click_seconds`` (each
   request starts on schedule, whatever the previous ones do, so a stall shows in the latency),
   latency measured from the scheduled start; then closed-loop at full speed for the ceiling.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


async def webhooks(client: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    signer = Webhook(plan["secret"])
    contents, size = plan["contents"], plan["batch"]
    queue = list(range(plan["batches"]))
    accepted, statuses, latencies = 0, {}, []

    async def sender() -> None:
        nonlocal accepted
        while queue:
            n = queue.pop()
            now = datetime.now(UTC)
            body = json.dumps({"events": [
                {"type": "reaction", "content_id": contents[(n * size + i) % len(contents)], "network": "linkedin",
                 "count": 1, "occurred_at": now.isoformat()} for i in range(size)]})
            msg_id = f"msg_{uuid.uuid4().hex}"
            headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": signer.sign(msg_id, now, body), "content-type": "application/json"}
            started = time.perf_counter()
            response = await client.post(f"/v1/webhooks/{plan['source']}", content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 202:
                accepted += response.json()["accepted"]

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(plan["concurrency"])))
    seconds = time.perf_counter() - started
    return {"batches": plan["batches"], "batch_size": size, "concurrency": plan["concurrency"],
            "accepted_events": accepted, "seconds": round(seconds, 3),
            "events_per_second": round(accepted / seconds, 1), "statuses": statuses,
            "batch_latency": percentiles(latencies)}


async def clicks_at_rate(client: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    codes, rate, total = plan["codes"], plan["click_rate"], int(plan["click_rate"] * plan["click_seconds"])
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(n: int, due: float) -> None:
        # Distinct clients (User-Agent) so that unique and repeated clicks mix as in life.
        response = await client.get(f"/r/{codes[n % len(codes)]}", headers={"User-Agent": f"{BROWSER} c{n % 300}"})
        latencies.append(time.perf_counter() - due)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    tasks = []
    start = time.perf_counter() + 0.05
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - start
    return {"target_rps": rate, "requests": total, "seconds": round(seconds, 3),
            "achieved_rps": round(total / seconds, 1), "statuses": statuses, "latency": percentiles(latencies)}


async def clicks_flat_out(client: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    codes, total, concurrency = plan["codes"], plan["flat_out_clicks"], plan["concurrency_clicks"]
    counter = iter(range(total))
    latencies: list[float] = []
    redirected = 0

    async def worker() -> None:
        nonlocal redirected
        for n in counter:
            started = time.perf_counter()
            response = await client.get(f"/r/{codes[n % len(codes)]}", headers={"User-Agent": BROWSER})
            latencies.append(time.perf_counter() - started)
            redirected += response.status_code == 302

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"requests": total, "redirected": redirected, "concurrency": concurrency, "seconds": round(seconds, 3),
            "clicks_per_second": round(redirected / seconds, 1), "latency": percentiles(latencies)}


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=plan["base_url"], limits=limits, timeout=30) as client:
        return {"webhooks": await webhooks(client, plan), "clicks_at_rate": await clicks_at_rate(client, plan),
                "clicks_flat_out": await clicks_flat_out(client, plan)}


if __name__ == "__main__":
    with open(sys.argv[1]) as file:
        print(json.dumps(asyncio.run(main(json.load(file)))))
