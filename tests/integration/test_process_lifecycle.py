"""Services as real processes: SIGTERM stops them gracefully (exit 0, in-flight work finished
or handed back), and SIGKILL mid-stream loses nothing: after a restart every accepted input has
exactly one effect."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from shared import topics
from shared.envelope import new_event, to_binary
from shared.events import IntranetContentSubmitted
from tests.support import JWT_SECRET, eventually, header, new_tenant, produce, read_topic, token

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(service: str, kafka_bootstrap: str, database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PORTEVOIX_DATABASE_URL": database_url,
           "PORTEVOIX_HTTP_PORT": str(port), "PORTEVOIX_JWT_HS256_SECRET": JWT_SECRET,
           "PORTEVOIX_OUTBOX_POLL_INTERVAL_SECONDS": "0.2", "PORTEVOIX_CONSUMER_MAX_RECORDS": "50"}
    log = tempfile.NamedTemporaryFile(prefix=f"{service}-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
    process.log_path = log.name  # type: ignore[attr-defined]
    return process


def log_of(process: subprocess.Popen) -> str:
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


async def ready(port: int, process: subprocess.Popen) -> bool:
    assert process.poll() is None, log_of(process)[-3000:]
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)).status_code == 200
    except httpx.HTTPError:
        return False


def submitted(tenant: str, n: int):
    event = new_event("intranet.content.submitted", source="intranet/lifecycle", subject=f"x{n}", tenant=tenant,
                      data=IntranetContentSubmitted(external_id=f"x{n}", source_system="cms", title=f"News {n}",
                                                    summary="", url="https://acme.example/n", language="en", version=1))
    record = to_binary(event)
    return record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()]


async def contents_of(port: int, tenant: str) -> list:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/v1/contents", params={"limit": 500},
                             headers=token(tenant, "editor"), timeout=5)
        return r.json()["items"] if r.status_code == 200 else []


async def test_sigterm_stops_gracefully_and_sigkill_mid_stream_loses_and_doubles_nothing(kafka_bootstrap, database_url):
    tenant = new_tenant()
    port = free_port()
    process = start("content", kafka_bootstrap, database_url, port)
    try:
        await eventually(lambda: ready(port, process), timeout=60)
        # An item published just before SIGTERM: its event still leaves through the outbox.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            item = (await client.post("/v1/contents", headers=token(tenant, "editor", subject="ed"), json={
                "title": "Before the stop", "url": "https://acme.example/a", "language": "en"})).json()
            published = await client.post(f"/v1/contents/{item['id']}/publish",
                                          headers=token(tenant, "approver", subject="ap"))
            assert published.status_code == 200, published.text
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once shut down, so the exit status is SIGTERM's
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        log = log_of(process)
        assert '"message": "content: stopped"' in log, log[-3000:]  # the lifespan ran to its end
        assert not _port_open(port)

        # 300 intranet submissions; the service is killed hard while it consumes them.
        await produce(kafka_bootstrap, topics.INTRANET_CONTENT.name, [submitted(tenant, n) for n in range(300)])
        process = start("content", kafka_bootstrap, database_url, port)
        await eventually(lambda: ready(port, process), timeout=60)
        await eventually(lambda: _at_least(contents_of(port, tenant), 20), timeout=60, interval=0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        process = start("content", kafka_bootstrap, database_url, port)
        await eventually(lambda: ready(port, process), timeout=60)
        items = await eventually(lambda: _at_least(contents_of(port, tenant), 301), timeout=90)
        titles = [i["title"] for i in items]
        assert sorted(titles) == sorted(["Before the stop"] + [f"News {n}" for n in range(300)])  # none twice
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                              lambda r: header(r, "ce_tenantid") == tenant, expect=1, settle=1.0)
    assert [header(e, "ce_type") for e in events] == ["content.published"]


async def _at_least(rows_coroutine, n: int):
    rows = await rows_coroutine
    return rows if len(rows) >= n else None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
