"""What the fault suite runs on: its own Kafka and PostgreSQL (a dedicated run dir and free ports,
so a developer's stack is never touched) and the four services as real processes that can be
killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("content", "distribution", "tracking", "reporting")
JWT_SECRET = "reliability-secret-local-only-0123456789"  # the services run with it; never use it elsewhere


class HarnessError(Exception):
    """A process of the suite could not be started or did not get ready; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolate_stack(run_dir: Path) -> None:
    """Point deploy.local at a run dir and ports of the suite's own (read by deploy.local at each
    call): its up()/down() then start and stop only this Kafka and this PostgreSQL."""
    for external in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        os.environ.pop(external, None)
    kafka_port, controller_port, pg_port = free_port(), free_port(), free_port()
    os.environ.update({
        "PORTEVOIX_RUN_DIR": str(run_dir), "PORTEVOIX_KAFKA_PORT": str(kafka_port),
        "PORTEVOIX_KAFKA_CONTROLLER_PORT": str(controller_port), "PORTEVOIX_PG_PORT": str(pg_port),
    })


def service_env(name: str, ports: dict[str, int], kafka: str, database: str, extra: dict[str, str]) -> dict[str, str]:
    """Short timings (retries, polls, backoff, leases) so that a fault's effects settle in seconds,
    a fatigue budget that never defers, and the loopback exempt from the public rate limits (the
    load generator is one client sending far more than one person would)."""
    return {
        **os.environ,
        "PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS": kafka, "PORTEVOIX_DATABASE_URL": database,
        "PORTEVOIX_HTTP_PORT": str(ports[name]), "PORTEVOIX_JWT_HS256_SECRET": JWT_SECRET,
        "PORTEVOIX_IDENTITY_KEY": f"{JWT_SECRET}-identity", "PORTEVOIX_TRACKING_BASE_URL": f"http://127.0.0.1:{ports['tracking']}",
        "PORTEVOIX_RATE_LIMIT_EXEMPT_CLIENTS": '["127.0.0.1","::1"]',
        "PORTEVOIX_OUTBOX_POLL_INTERVAL_SECONDS": "0.2", "PORTEVOIX_RETRY_DELAYS_SECONDS": "[0.5, 1.0]",
        "PORTEVOIX_KAFKA_SEND_TIMEOUT_SECONDS": "3",
        "PORTEVOIX_ALERTS_PER_WEEK": "1000000", "PORTEVOIX_FANOUT_POLL_INTERVAL_SECONDS": "0.2",
        "PORTEVOIX_DELIVERY_POLL_INTERVAL_SECONDS": "0.2", "PORTEVOIX_DELIVERY_TIMEOUT_SECONDS": "3",
        "PORTEVOIX_DELIVERY_BACKOFF_BASE_SECONDS": "0.5", "PORTEVOIX_DELIVERY_BACKOFF_MAX_SECONDS": "2",
        "PORTEVOIX_DELIVERY_LEASE_SECONDS": "15", "PORTEVOIX_DELIVERY_MAX_ATTEMPTS": "1000",
        "PORTEVOIX_CIRCUIT_OPEN_SECONDS": "2",
        "PORTEVOIX_KPI_STREAM_MIN_INTERVAL_SECONDS": "1",
        **extra,
    }


@dataclass
class Services:
    """The four services as processes, each with its log file in ``logs``."""

    kafka: str
    database: str
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in NAMES})
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = service_env(name, self.ports, self.kafka, self.database, self.extra_env)
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            # A session of its own: a Ctrl-C in the terminal reaches the suite only.
            self.processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut where it stood."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    async def ready(self, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                process = self.processes[name]
                if process.poll() is not None:
                    raise HarnessError(f"{name} exited with code {process.returncode}; see {self.logs / name}.log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url(name)}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise HarnessError(f"{name} not ready after {timeout:.0f}s; see {self.logs / name}.log")
                await asyncio.sleep(0.2)

    async def start_all(self) -> None:
        for name in NAMES:
            self.start(name)
        for name in NAMES:
            await self.ready(name)

    def stop_all(self, timeout: float = 30) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
