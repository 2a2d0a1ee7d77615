"""Benchmarks against the real Kafka broker and PostgreSQL (``python -m bench``).

Each benchmark measures a shared mechanism and, in the same run, the raw ceiling of the
infrastructure underneath it (plain asyncpg COPY, plain aiokafka producer or consumer), and
reports the ratio. Results go to ``bench/results/``; nothing here asserts on timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, data: dict[str, Any], report: str) -> None:
    """``bench/results/<name>.json`` (the figures) and ``<name>.md`` (the report), then print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(report)
    print(report)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``check`` until it is true (a failing check counts as not yet), or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await check():
                return
        await asyncio.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")
