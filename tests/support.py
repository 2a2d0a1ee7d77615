"""Helpers for integration tests: service apps run in-process against the real broker and
database, tokens, and plain-Kafka reading and writing (what an outside client would do)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI

from shared.auth import issue_token
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
JWT_SECRET = "test-secret-not-for-production-0123456789"
IDENTITY_KEY = "test-identity-key-not-for-production"


def settings_for(cls: type[S], kafka_bootstrap: str, database_url: str, **overrides: Any) -> S:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap, "database_url": database_url,
        "jwt_hs256_secret": JWT_SECRET, "identity_key": IDENTITY_KEY, "retry_delays_seconds": [0.2, 0.5],
        "outbox_poll_interval_seconds": 0.2,
        # tests are one loopback client sending in bursts; the guard's own tests set [] back
        "rate_limit_exempt_clients": ["127.0.0.1", "::1"],
    }
    values.update(overrides)
    return cls(**values)


def token(tenant: str, *roles: str, subject: str = "user-1", subsidiary: str | None = None) -> dict[str, str]:
    jwt = issue_token(JWT_SECRET, subject=subject, tenant=tenant, roles=list(roles), subsidiary=subsidiary)
    return {"Authorization": f"Bearer {jwt}"}


def new_tenant() -> str:
    """A tenant of its own per test: tests share one broker and one database."""
    return f"t{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start the service (pool, migrations, broker, consumers, relay), yield an HTTP client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(apps: dict[str, FastAPI]) -> Iterator[dict[str, str]]:
    """Each app under uvicorn on a loopback port of its own, in a thread of this process, its
    lifespan started (pool, migrations, broker): what an outside client sees. Yields name -> URL."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []
    urls = {}
    try:
        for name, app in apps.items():
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                   access_log=False, lifespan="on"))
            thread = threading.Thread(target=server.run, name=f"serve-{name}", daemon=True)
            thread.start()
            started.append((server, thread))
            deadline = time.monotonic() + 60
            while not server.started:
                assert time.monotonic() < deadline and thread.is_alive(), f"{name} did not start"
                time.sleep(0.05)
            urls[name] = f"http://127.0.0.1:{port}"
        yield urls
    finally:
        for server, _ in started:
            server.should_exit = True
        for _, thread in started:
            thread.join(30)


T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0, interval: float = 0.2) -> T:
    """Poll until ``check`` returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


RawRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]  # key, value, headers


async def produce(bootstrap: str, topic: str, records: list[RawRecord]) -> None:
    """Write raw records with a plain aiokafka producer, as an HR or intranet system would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, predicate: Callable[[ConsumerRecord], bool], *,
                     expect: int = 1, timeout: float = 30.0, settle: float = 0.0) -> list[ConsumerRecord]:
    """Read ``topic`` from the start with a plain consumer until ``expect`` matching records are
    seen (then keep reading ``settle`` seconds more, to catch duplicates)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found += [r for r in records if predicate(r)]
            if len(found) >= expect and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        await consumer.stop()
    return found


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


def promtool_problems(exposition: str) -> str | None:
    """What `promtool check metrics` says is wrong with an exposition (None: nothing).
    CI installs promtool; without it the calling test is skipped, not passed."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs it)")
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
    return None if checked.returncode == 0 else checked.stdout + checked.stderr


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def kafka_record(event: Any) -> Record:
    """(key, value, headers) of an event in binary content mode, as a producer sends it."""
    from shared.envelope import to_binary

    record = to_binary(event)
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]
