"""What the use cases share about ambassadors: their ``ambassadors.v1`` events (pseudonymous
ids, org units, the holder digest, and a name only for whoever chose to be named), the
withdrawal, which also cancels what is pending for them, and the lapse of a consent."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from shared import outbox, topics
from shared.envelope import new_event
from shared.events import (
    AmbassadorEnrolled,
    AmbassadorUpdated,
    AmbassadorWithdrawn,
    NotificationCancelled,
    ProfileChange,
)

SOURCE = "portevoix/distribution"
PROFILE_EVENTS = {"ambassador.enrolled": AmbassadorEnrolled, "ambassador.updated": AmbassadorUpdated}


async def emit_profile(conn: asyncpg.Connection, tenant: str, event_type: str, ambassador: dict[str, Any],
                       employee_id: str, placement: Any, effective_at: datetime,
                       change: ProfileChange = ProfileChange.profile) -> None:
    """``placement``: anything with subsidiary, department, site, country, language (a row or a
    record); ``change``: what an ``ambassador.updated`` tells."""
    def get(name: str) -> Any:
        return placement[name] if isinstance(placement, (dict, asyncpg.Record)) else getattr(placement, name)

    ambassador_id = str(ambassador["ambassador_id"])
    named = await repository.named_in_leaderboards(conn, tenant, employee_id)
    data = PROFILE_EVENTS[event_type](
        ambassador_id=ambassador_id, subsidiary=get("subsidiary"), department=get("department"), site=get("site"),
        country=get("country"), language=get("language"), groups=await repository.groups_of(conn, tenant, employee_id),
        network_audience=ambassador["networks"],
        named_in_leaderboards=named,
        display_name=await repository.display_name(conn, tenant, employee_id) if named else None,
        holder=ambassador.get("holder"), effective_at=effective_at,
        **({"change": change} if event_type == "ambassador.updated" else {}))
    await outbox.enqueue(conn, topics.AMBASSADORS, new_event(
        event_type, source=SOURCE, subject=ambassador_id, tenant=tenant, data=data))


async def refresh_profiles(conn: asyncpg.Connection, tenant: str, employee_ids: Iterable[str]) -> None:
    """Tell others the new profile (e.g. groups) of those of these employees who are ambassadors."""
    now = datetime.now(UTC)
    for employee_id in sorted(set(employee_ids)):
        ambassador = await repository.active_ambassador(conn, tenant, employee_id)
        employee = await repository.employee_for_update(conn, tenant, employee_id)
        if ambassador is not None and employee is not None:
            await emit_profile(conn, tenant, "ambassador.updated", ambassador, employee_id, employee, now)


async def withdraw(conn: asyncpg.Connection, tenant: str, employee_id: str, reason: str, *, channel: str,
                   effective_at: datetime | None = None) -> uuid.UUID | None:
    """End the employee's enrolment at once; cancel his pending notifications; record it in
    the consent record. Return the withdrawn ambassador's id, None if he was not enrolled."""
    ambassador = await repository.active_ambassador(conn, tenant, employee_id, for_update=True)
    if ambassador is None:
        return None
    now = datetime.now(UTC)
    at = domain.withdrawal_time(now, effective_at or now, ambassador["enrolled_at"])
    ambassador_id = ambassador["ambassador_id"]
    await repository.withdraw_ambassador(conn, tenant, ambassador_id, reason, at)
    await repository.record_consent(conn, tenant, uuid.uuid4(), employee_id, ambassador_id, "withdrawn", {
        "text_version": ambassador["consent_text_version"], "channel": channel, "at": at})
    events = [new_event("ambassador.withdrawn", source=SOURCE, subject=str(ambassador_id), tenant=tenant,
                        data=AmbassadorWithdrawn(ambassador_id=str(ambassador_id), reason=reason, effective_at=at))]
    await outbox.enqueue(conn, topics.AMBASSADORS, events)
    await _cancel_notifications(conn, tenant, ambassador_id, f"ambassador_{reason}", now, unsent_only=False)
    return ambassador_id


async def record_lapse(conn: asyncpg.Connection, tenant: str, employee_id: str, ambassador: dict[str, Any],
                       placement: Any) -> None:
    """His consent lapsed (not renewed in time): he stays the same ambassador, with his id and
    networks, but nothing more is sent to him until he renews (what was still to be sent is
    cancelled; his feed stays for his return). Recorded in the consent record and told once
    (``ambassador.updated``, change ``consent_lapsed``, effective when the consent lapsed)."""
    ambassador_id, at = ambassador["ambassador_id"], ambassador["consent_expires_at"]
    await repository.record_lapse(conn, tenant, ambassador_id, at)
    await repository.record_consent(conn, tenant, uuid.uuid4(), employee_id, ambassador_id, "lapsed", {
        "text_version": ambassador["consent_text_version"], "channel": "system", "at": at})
    await emit_profile(conn, tenant, "ambassador.updated", ambassador, employee_id, placement, at,
                       ProfileChange.consent_lapsed)
    await _cancel_notifications(conn, tenant, ambassador_id, "ambassador_consent_lapsed", datetime.now(UTC),
                                unsent_only=True)


async def _cancel_notifications(conn: asyncpg.Connection, tenant: str, ambassador_id: uuid.UUID, reason: str,
                                now: datetime, *, unsent_only: bool) -> None:
    cancelled = await repository.cancel_notifications(conn, tenant, ambassador_id, now, unsent_only=unsent_only)
    await outbox.enqueue(conn, topics.NOTIFICATIONS, [
        new_event("notification.cancelled", source=SOURCE, subject=str(n["notification_id"]), tenant=tenant,
                  data=NotificationCancelled(
                      notification_id=str(n["notification_id"]), content_id=n["content_id"],
                      ambassador_id=str(ambassador_id), campaign=n["campaign"], channel=n["channel"],
                      reason=reason, at=now))
        for n in cancelled])
