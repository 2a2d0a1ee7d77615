"""The four services as real processes, each on its own port with its log file; stopped with
SIGTERM (graceful shutdown), killed only if one does not stop in time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from deploy.demo.api import DemoError
from deploy.demo.console import Console

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("content", "distribution", "tracking", "reporting")
PROCESSES = (*NAMES, "web")  # and the web front, proxying the four APIs, with the demo login on


def ports(base: int) -> dict[str, int]:
    return {name: base + n for n, name in enumerate(PROCESSES)}


def busy_ports(wanted: dict[str, int]) -> list[int]:
    """Ports someone already listens on (our services would fail to bind them)."""
    busy = []
    for port in wanted.values():
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


@dataclass
class Services:
    processes: dict[str, subprocess.Popen[bytes]]
    ports: dict[str, int]
    logs: Path

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self, console: Console, timeout: float = 30) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                console.info(f"{name} did not stop within {timeout:.0f}s: killed")
                process.kill()
                process.wait()


def start(port_base: int, kafka_bootstrap: str, database_url: str, jwt_secret: str, logs: Path) -> Services:
    """Each service in its own session: a Ctrl-C in the terminal reaches the demo only, which
    then stops them in order."""
    logs.mkdir(parents=True, exist_ok=True)
    wanted = ports(port_base)
    processes = {}
    for name, port in wanted.items():
        env = {
            **os.environ, "PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PORTEVOIX_DATABASE_URL": database_url, "PORTEVOIX_JWT_HS256_SECRET": jwt_secret,
            "PORTEVOIX_IDENTITY_KEY": f"{jwt_secret}-identity",
            "PORTEVOIX_HTTP_PORT": str(port), "PORTEVOIX_OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
            "PORTEVOIX_TRACKING_BASE_URL": f"http://127.0.0.1:{wanted['tracking']}",
            # The demo plays thousands of browsers and an identity provider from this one address:
            # per-client rate limits would take them for one client. Local tools are exempt.
            "PORTEVOIX_RATE_LIMIT_EXEMPT_CLIENTS": '["127.0.0.1", "::1"]',
            **{f"PORTEVOIX_{api.upper()}_BASE_URL": f"http://127.0.0.1:{wanted[api]}" for api in NAMES},
            "PORTEVOIX_WEB_LOCAL_LOGIN": "true",  # the front's demo sign-in (off by default)
            # plain http on 127.0.0.1: the one case where a session cookie may go without Secure
            "PORTEVOIX_WEB_SESSION_COOKIE_SECURE": "false",
        }
        with open(logs / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Services(processes, wanted, logs)


async def wait_ready(services: Services, console: Console, timeout: float = 120) -> None:
    """Every service's /readyz answers 200 (database and Kafka reachable), or a clear failure."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        for name in PROCESSES:
            while True:
                process = services.processes[name]
                if process.poll() is not None:
                    raise DemoError(f"{name} exited with code {process.returncode}; "
                                     f"see {services.logs / (name + '.log')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{services.url(name)}/readyz")).status_code == 200:
                        console.info(f"{name:<13} ready on {services.url(name)}")
                        break
                if time.monotonic() > deadline:
                    raise DemoError(f"{name} not ready after {timeout:.0f}s; see {services.logs / (name + '.log')}")
                await asyncio.sleep(0.2)


def recent_problems(logs: Path, started_at: float, limit: int = 3) -> list[str]:
    """The last distinct warnings and errors the services logged since ``started_at`` (epoch
    seconds): what to look at first when something did not arrive."""
    found: dict[str, None] = {}
    for name in PROCESSES:
        path = logs / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines()[-2000:]:
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                stamp = datetime.fromisoformat(entry["time"]).timestamp()
                message = entry["message"] if entry["message"].startswith(f"{name}:") else f"{name}: {entry['message']}"
                if entry.get("level") in ("warning", "error") and stamp >= started_at:
                    found[message[:300]] = None
    return list(found)[-limit:]
