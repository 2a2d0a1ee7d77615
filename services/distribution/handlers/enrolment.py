"""Enrolment: opt-in only, by the employee himself (the token's subject: there is no way to
name someone else), with a consent record; re-consent and renewal (after a lapse too: the same
ambassador comes back); opt-out at once; preferences and connected networks (while the consent
is in force)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.domain import NotEnrolled
from services.distribution.handlers import ambassadors
from services.distribution.models import EnrolmentRequest, Preferences
from shared.auth import Principal, holder_digest
from shared.events import ProfileChange


async def enrol(pool: asyncpg.Pool, principal: Principal, request: EnrolmentRequest,
                validity_days: float, identity_key: str | None) -> tuple[dict[str, Any], bool]:
    """Enrol the caller, or renew his consent; return the enrolment and whether it is new."""
    tenant, employee_id = principal.tenant, principal.subject
    async with pool.acquire() as conn, conn.transaction():
        employee = await repository.employee_for_update(conn, tenant, employee_id)
        domain.check_enrolment(known=employee is not None, departed=bool(employee and employee["departed"]))
        assert employee is not None
        current = await repository.current_consent_text(conn, tenant)
        domain.check_consent_version(request.consent_text_version, current["version"] if current else None)
        now = datetime.now(UTC)
        consent = {"text_version": request.consent_text_version, "channel": request.channel, "at": now,
                   "expires_at": domain.consent_expiry(now, validity_days)}
        existing = await repository.active_ambassador(conn, tenant, employee_id, for_update=True)
        if existing is not None:
            return await _renew(conn, tenant, employee_id, employee, existing, consent), False
        networks = {str(network): size for network, size in request.networks.items()}
        holder = holder_digest(identity_key, tenant, employee_id) if identity_key else None
        ambassador = await repository.insert_ambassador(conn, tenant, uuid.uuid4(), employee_id, consent, networks,
                                                        holder)
        assert ambassador is not None  # the employee row lock keeps a concurrent enrolment out
        await repository.record_consent(conn, tenant, uuid.uuid4(), employee_id, ambassador["ambassador_id"],
                                        "given", consent)
        await ambassadors.emit_profile(conn, tenant, "ambassador.enrolled", ambassador, employee_id, employee,
                                       ambassador["enrolled_at"])
        return ambassador, True


async def _renew(conn: asyncpg.Connection, tenant: str, employee_id: str, employee: asyncpg.Record,
                 existing: dict[str, Any], consent: dict[str, Any]) -> dict[str, Any]:
    """The same ambassador, consent renewed (in force or lapsed: same id, same networks). After
    a lapse, he is back: told as such (``ambassador.updated``, change ``consent_renewed``), after
    the lapse itself if the sweep had not told it yet."""
    lapsed = not domain.consent_in_force(existing, consent["at"])
    if domain.lapse_to_record(existing, consent["at"]):
        await ambassadors.record_lapse(conn, tenant, employee_id, existing, employee)
    renewed = await repository.renew_consent(conn, tenant, existing["ambassador_id"], consent)
    await repository.record_consent(conn, tenant, uuid.uuid4(), employee_id, existing["ambassador_id"], "renewed",
                                    consent)
    if lapsed:
        await ambassadors.emit_profile(conn, tenant, "ambassador.updated", renewed, employee_id, employee,
                                       consent["at"], ProfileChange.consent_renewed)
    return renewed


async def _in_force(conn: asyncpg.Connection, tenant: str, employee_id: str, *,
                    for_update: bool = False) -> dict[str, Any]:
    """The caller's enrolment, if his consent is in force (else, lapsed or none: not enrolled)."""
    ambassador = await repository.active_ambassador(conn, tenant, employee_id, for_update=for_update)
    if ambassador is None or not domain.consent_in_force(ambassador, datetime.now(UTC)):
        raise NotEnrolled(employee_id)
    return ambassador


async def opt_out(pool: asyncpg.Pool, principal: Principal, channel: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if await ambassadors.withdraw(conn, principal.tenant, principal.subject, "opted_out", channel=channel) is None:
            raise NotEnrolled(principal.subject)


async def consent(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    """The caller's consent record and the text in force."""
    async with pool.acquire() as conn:
        current = await repository.current_consent_text(conn, principal.tenant)
        ambassador = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        history = await repository.consent_history(conn, principal.tenant, principal.subject)
    return {"current_text": dict(current) if current else None,
            "in_force": ambassador is not None and domain.consent_in_force(ambassador, datetime.now(UTC)),
            "enrolment": ambassador, "record": [dict(r) for r in history]}


async def set_networks(pool: asyncpg.Pool, principal: Principal, networks: dict[str, int]) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        employee = await repository.employee_for_update(conn, principal.tenant, principal.subject)
        ambassador = await _in_force(conn, principal.tenant, principal.subject, for_update=True)
        if employee is None:
            raise NotEnrolled(principal.subject)
        await repository.set_networks(conn, principal.tenant, ambassador["ambassador_id"], networks)
        ambassador = {**ambassador, "networks": networks}
        await ambassadors.emit_profile(conn, principal.tenant, "ambassador.updated", ambassador, principal.subject,
                                       employee, datetime.now(UTC))
        return ambassador


async def preferences(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    async with pool.acquire() as conn:
        await _in_force(conn, principal.tenant, principal.subject)
        row = await repository.preferences(conn, principal.tenant, principal.subject)
    return dict(row) if row else Preferences().model_dump()


async def put_preferences(pool: asyncpg.Pool, principal: Principal, prefs: Preferences) -> dict[str, Any]:
    """Replace the caller's preferences; a change of his choice to be named is a profile change
    (``ambassador.updated``), the rest stays within distribution."""
    tenant, employee_id = principal.tenant, principal.subject
    async with pool.acquire() as conn, conn.transaction():
        employee = await repository.employee_for_update(conn, tenant, employee_id)
        ambassador = await _in_force(conn, tenant, employee_id, for_update=True)
        if employee is None:
            raise NotEnrolled(employee_id)
        was_named = await repository.named_in_leaderboards(conn, tenant, employee_id)
        saved = dict(await repository.put_preferences(conn, tenant, employee_id, prefs.model_dump()))
        if saved["named_in_leaderboards"] != was_named:
            await ambassadors.emit_profile(conn, tenant, "ambassador.updated", ambassador, employee_id, employee,
                                           datetime.now(UTC))
        return saved
