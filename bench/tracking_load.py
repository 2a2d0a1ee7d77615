"""The tracking benchmark's load generator: a separate process, on loopback, as outside clients.

python -m bench.tracking_load PLAN.json  → prints one JSON result line.
python -m bench.tracking_load --trivial-server PORT  → a server answering every request with a
fixed 302 at once, to measure this generator's own ceiling.

The client is a small HTTP/1.1 client on raw asyncio sockets (uvloop), with a pool of keep-alive
connections, one request in flight per connection: a general-purpose client (httpx) costs the
generator more CPU per request than the redirector itself, and on 2 cores it was the bottleneck.

1. webhooks: signed batches (Standard Webhooks reference library) of ``batch`` events, from
   ``concurrency`` concurrent senders, until ``batches`` were sent (after ``warmup_batches`` not
   counted); accepted events counted from the answers.
2. clicks: GET /r/{code} open-loop at ``click_rate`` per second for ``click_seconds`` (each
   request starts on schedule, whatever the previous ones do, so a stall shows in the latency),
   latency measured from the scheduled start; then closed-loop at full speed for the ceiling.
3. optionally (``ceiling_port``): the same closed loop against the trivial server: what this
   generator can send at most.
"""

from __future__ import annotations

import asyncio
import collections
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import uvloop
from standardwebhooks import Webhook

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers must carry Content-Length (ours all do)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(ValueError("answer without Content-Length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:stop if stop > 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status, body = int(self.buffer[9:12]), bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, error: Exception | None) -> None:
        self.closed = True  # e.g. the server's keep-alive timeout between two phases
        self._fail(error or ConnectionError("connection closed"))

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class Pool:
    """Keep-alive connections to one server, opened on demand up to ``size``."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: list[Connection] = []
        self.opened = 0
        self.waiters: collections.deque[asyncio.Future[Connection]] = collections.deque()

    async def warm(self, n: int) -> None:
        connections = [await self._open() for _ in range(min(n, self.size - self.opened))]
        self.idle.extend(connections)

    async def _open(self) -> Connection:
        self.opened += 1
        _, protocol = await asyncio.get_running_loop().create_connection(Connection, self.host, self.port)
        return protocol

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        while self.idle and self.idle[-1].closed:
            self.idle.pop()
            self.opened -= 1
        if self.idle:
            connection = self.idle.pop()
        elif self.opened < self.size:
            connection = await self._open()
        else:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            connection = await waiter
        try:
            answer = await connection.request(raw)
        except BaseException:
            self.opened -= 1  # broken: forget it
            if connection.transport is not None:
                connection.transport.close()
            raise
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return answer
        self.idle.append(connection)
        return answer


def get(host: str, path: str, user_agent: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n\r\n".encode()


def post(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


async def webhooks(pool: Pool, host: str, plan: dict[str, Any]) -> dict[str, Any]:
    signer = Webhook(plan["secret"])
    contents, size = plan["contents"], plan["batch"]
    queue: list[int] = []
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
            raw = post(host, f"/v1/webhooks/{plan['source']}", headers, body.encode())
            started = time.perf_counter()
            status, answer = await pool.request(raw)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 202:
                accepted += json.loads(answer)["accepted"]

    await pool.warm(plan["concurrency"])
    # Warm-up, not counted: the service's first calls open its database connections and prepare
    # its statements (the raw producer, too, has its connection and metadata before it is timed).
    queue = list(range(plan.get("warmup_batches", 0)))
    await asyncio.gather(*(sender() for _ in range(plan["concurrency"])))
    accepted, statuses, latencies = 0, {}, []
    queue = list(range(plan["batches"]))
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(plan["concurrency"])))
    seconds = time.perf_counter() - started
    return {"batches": plan["batches"], "batch_size": size, "concurrency": plan["concurrency"],
            "accepted_events": accepted, "seconds": round(seconds, 3),
            "events_per_second": round(accepted / seconds, 1), "statuses": statuses,
            "batch_latency": percentiles(latencies)}


async def clicks_at_rate(pool: Pool, host: str, plan: dict[str, Any]) -> dict[str, Any]:
    codes, rate, total = plan["codes"], plan["click_rate"], int(plan["click_rate"] * plan["click_seconds"])
    # Distinct clients (User-Agent) so that unique and repeated clicks mix as in life.
    requests = [get(host, f"/r/{codes[n % len(codes)]}", f"{BROWSER} c{n % 300}") for n in range(total)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(n: int, due: float) -> None:
        status, _ = await pool.request(requests[n])
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    await pool.warm(64)
    tasks = []
    start = time.perf_counter() + 0.05
    n = 0
    while n < total:
        now = time.perf_counter()
        while n < total and start + n / rate <= now:  # every request due by now, late or not
            tasks.append(asyncio.create_task(one(n, start + n / rate)))
            n += 1
        if n < total:
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - start
    return {"target_rps": rate, "requests": total, "seconds": round(seconds, 3),
            "achieved_rps": round(total / seconds, 1), "statuses": statuses, "latency": percentiles(latencies)}


async def flat_out(pool: Pool, host: str, codes: list[str], total: int, concurrency: int) -> dict[str, Any]:
    requests = [get(host, f"/r/{codes[n % len(codes)]}", BROWSER) for n in range(total)]
    counter = iter(range(total))
    latencies: list[float] = []
    redirected = 0

    async def worker() -> None:
        nonlocal redirected
        for n in counter:
            started = time.perf_counter()
            status, _ = await pool.request(requests[n])
            latencies.append(time.perf_counter() - started)
            redirected += status == 302

    await pool.warm(concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"requests": total, "redirected": redirected, "concurrency": concurrency, "seconds": round(seconds, 3),
            "clicks_per_second": round(redirected / seconds, 1), "latency": percentiles(latencies)}


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    host, port = plan["host"], plan["port"]
    pool, where = Pool(host, port, 256), f"{host}:{port}"
    results = {"webhooks": await webhooks(pool, where, plan),
               "clicks_at_rate": await clicks_at_rate(pool, where, plan),
               "clicks_flat_out": await flat_out(pool, where, plan["codes"], plan["flat_out_clicks"],
                                                 plan["concurrency_clicks"])}
    if plan.get("ceiling_port"):
        trivial = Pool(host, plan["ceiling_port"], 256)
        results["generator_ceiling"] = await flat_out(trivial, f"{host}:{plan['ceiling_port']}", plan["codes"],
                                                      plan["ceiling_requests"], plan["concurrency_clicks"])
    return results


class TrivialServer(asyncio.Protocol):
    """Answers each request (a GET without body) with the same 302: no server is cheaper."""

    ANSWER = b"HTTP/1.1 302 Found\r\nlocation: https://example.com/\r\ncontent-length: 0\r\n\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4:]
            self.transport.write(self.ANSWER)


async def trivial_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(TrivialServer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "--trivial-server":
        uvloop.run(trivial_server(int(sys.argv[2])))
    else:
        with open(sys.argv[1]) as file:
            print(json.dumps(uvloop.run(main(json.load(file)))))
