"""How the demo talks to the services: one HTTP client per service, tokens for each actor, and
small helpers to check answers, run many calls at once and wait for something to arrive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from deploy.demo.console import Progress
from shared.auth import issue_token

T = TypeVar("T")
R = TypeVar("R")


class DemoError(Exception):
    """Something the demo needed did not happen; the message says what."""


@dataclass
class Api:
    content: httpx.AsyncClient
    distribution: httpx.AsyncClient
    tracking: httpx.AsyncClient
    reporting: httpx.AsyncClient
    kafka_bootstrap: str
    jwt_secret: str
    tenant: str

    def as_(self, subject: str, *roles: str, subsidiary: str | None = None) -> dict[str, str]:
        """The bearer token of ``subject`` with ``roles`` in the demo's tenant."""
        jwt = issue_token(self.jwt_secret, subject=subject, tenant=self.tenant, roles=list(roles),
                          subsidiary=subsidiary)
        return {"Authorization": f"Bearer {jwt}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.as_("it-admin", "admin")

    @property
    def analyst(self) -> dict[str, str]:
        return self.as_("analyst-sam", "analyst")


def expect(response: httpx.Response, *statuses: int, what: str) -> Any:
    """The JSON body of an expected answer; otherwise a DemoError naming the call and its answer."""
    if response.status_code not in statuses:
        raise DemoError(f"{what}: {response.request.method} {response.request.url.path} answered "
                        f"{response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


async def each(items: Iterable[T], call: Callable[[T], Awaitable[R]], *, limit: int = 16,
               counter: Progress | None = None) -> list[R]:
    """``call`` on every item, ``limit`` at a time (what a crowd of browsers and clients does)."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            result = await call(item)
        if counter:
            counter.add()
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


async def poll(check: Callable[[], Awaitable[T | None]], *, what: str, timeout: float,
               interval: float = 0.5, describe: Callable[[], str] | None = None) -> T:
    """``check()`` until it returns something truthy; after ``timeout``, a DemoError naming
    ``what`` did not arrive (and, with ``describe``, how far it got)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            detail = f" ({describe()})" if describe else ""
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(interval)
