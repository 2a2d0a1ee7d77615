"""The employee directory: HR events (hire, change, transfer, departure) converge to the newest
version whatever the arrival order; departures withdraw at once; erasure on request or after
retention; the background sweep that also lapses expired consents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.handlers import ambassadors
from shared.envelope import CloudEvent
from shared.events import EmployeeDeparted, EmployeeUpserted

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


async def on_employee_upserted(conn: asyncpg.Connection, event: CloudEvent[EmployeeUpserted]) -> None:
    """Newest version wins: an older record only enters the history. An unknown subsidiary
    (once the tenant has an org tree) raises: retried, then the DLQ with the cause."""
    tenant, data = event.tenantid, event.data
    if await _erased_since(conn, tenant, data.employee_id, data.version):
        return
    configured, known = await repository.subsidiary_status(conn, tenant, data.subsidiary)
    domain.check_subsidiary(tenant, data.subsidiary, configured, known)
    await repository.record_history(conn, tenant, data.employee_id, data.version, data.effective_at,
                                    (data.subsidiary, data.department, data.site))
    before = await repository.employee_for_update(conn, tenant, data.employee_id)
    if not await repository.upsert_employee(conn, tenant, data):
        return
    if before is not None and not before["departed"] and domain.profile_changed(dict(before), data.model_dump()):
        ambassador = await repository.active_ambassador(conn, tenant, data.employee_id)
        if ambassador is not None:  # a transfer: reporting follows the ambassador to his new unit
            await ambassadors.emit_profile(conn, tenant, "ambassador.updated", ambassador, data.employee_id, data,
                                           data.effective_at)


async def on_employee_departed(conn: asyncpg.Connection, event: CloudEvent[EmployeeDeparted]) -> None:
    """A (newer) departure ends the enrolment at once: he no longer speaks for the company."""
    tenant, data = event.tenantid, event.data
    if await _erased_since(conn, tenant, data.employee_id, data.version):
        return
    await repository.record_history(conn, tenant, data.employee_id, data.version, data.effective_at, None)
    if await repository.mark_departed(conn, tenant, data):
        await ambassadors.withdraw(conn, tenant, data.employee_id, "departed", channel="hr",
                                   effective_at=data.effective_at)


async def _erased_since(conn: asyncpg.Connection, tenant: str, employee_id: str, version: int) -> bool:
    """A replay of what HR said before the person was erased must not bring the data back."""
    erased_at_version = await repository.tombstone_version(conn, tenant, domain.tombstone_id(tenant, employee_id))
    return erased_at_version is not None and version <= erased_at_version


async def erase(conn: asyncpg.Connection, tenant: str, employee_id: str, reason: str) -> str | None:
    """Withdraw, then pseudonymise everything about the employee; return the tombstone id, None
    when the directory does not know him."""
    await ambassadors.withdraw(conn, tenant, employee_id, "erased", channel="privacy")
    tombstone = domain.tombstone_id(tenant, employee_id)
    return tombstone if await repository.erase_employee(conn, tenant, employee_id, tombstone, reason) else None


async def erase_on_request(pool: asyncpg.Pool, tenant: str, employee_id: str) -> str | None:
    async with pool.acquire() as conn, conn.transaction():
        return await erase(conn, tenant, employee_id, "request")


async def sweep_once(pool: asyncpg.Pool, retention_days: float) -> tuple[int, int]:
    """Record the lapse of the consents that ran out (see ``ambassadors.record_lapse``: not a
    withdrawal); erase those departed longer than the retention. Return (lapsed, erased). Each
    person in a savepoint: one failure is logged
    and retried next round without holding back the others."""
    lapsed = erased = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await repository.lapsed_consents(conn, SWEEP_BATCH):
            lapsed += await _each(conn, "consent lapse", _lapse(conn, row["tenant"], row["employee_id"]))
    async with pool.acquire() as conn, conn.transaction():
        cutoff = domain.retention_cutoff(datetime.now(UTC), retention_days)
        for row in await repository.departed_past_retention(conn, cutoff, SWEEP_BATCH):
            erased += await _each(conn, "retention erasure",
                                  erase(conn, row["tenant"], row["employee_id"], "retention"))
    return lapsed, erased


async def _lapse(conn: asyncpg.Connection, tenant: str, employee_id: str) -> None:
    """Locked as enrolment locks (the employee, then the ambassador); a renewal or another
    replica's sweep may have come first."""
    employee = await repository.employee_for_update(conn, tenant, employee_id)
    ambassador = await repository.active_ambassador(conn, tenant, employee_id, for_update=True)
    if employee is not None and ambassador is not None and domain.lapse_to_record(ambassador, datetime.now(UTC)):
        await ambassadors.record_lapse(conn, tenant, employee_id, ambassador, employee)


async def _each(conn: asyncpg.Connection, what: str, work: Coroutine[Any, Any, Any]) -> int:
    try:
        async with conn.transaction():
            await work
        return 1
    except (asyncpg.PostgresError, ValueError):
        log.exception("directory sweep: %s failed (retried next round)", what)
        return 0


def sweeper(pool: Callable[[], asyncpg.Pool], retention_days: float,
            interval: float) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        while True:
            try:
                lapsed, erased = await sweep_once(pool(), retention_days)
                if lapsed or erased:
                    log.info("directory sweep: %d consents lapsed, %d people erased", lapsed, erased)
                    continue  # maybe more waiting
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round retries
                log.exception("directory sweep failed")
            await asyncio.sleep(interval)
    return run
