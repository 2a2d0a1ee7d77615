"""Reporting use cases: parse, decide (domain), write (repository) — in that order.

Event handlers run inside the consumer's batch transaction, whose inbox makes each event count
once: they only add deltas, and never deduplicate on their own.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.reporting import domain, repository
from services.reporting.domain import Attribution, ScopeType
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.events import (
    AmbassadorEnrolled,
    AmbassadorWithdrawn,
    ContentPublished,
    ContentUpdated,
    EngagementRecorded,
    NotificationSent,
)


class Forbidden(Exception):
    pass


class MissingScopeId(ValueError):
    pass


# --- event handlers ----------------------------------------------------------------------------

async def _count(conn: asyncpg.Connection, event: CloudEvent[Any], attribution: Attribution = Attribution()) -> None:
    await repository.add(conn, event.tenantid, domain.increments(event, attribution))


async def on_content_published(conn: asyncpg.Connection, event: CloudEvent[ContentPublished]) -> None:
    await _remember_content(conn, event)
    await _count(conn, event)


async def on_content_updated(conn: asyncpg.Connection, event: CloudEvent[ContentUpdated]) -> None:
    await _remember_content(conn, event)


async def _remember_content(conn: asyncpg.Connection, event: CloudEvent[ContentPublished]) -> None:
    """Keep what later engagements are attributed to (owner subsidiary, campaign) current."""
    data = event.data
    await repository.remember_content(conn, event.tenantid, data.content_id, data.title, data.owner_subsidiary,
                                      data.campaign)


async def on_ambassador_enrolled(conn: asyncpg.Connection, event: CloudEvent[AmbassadorEnrolled]) -> None:
    data = event.data
    await repository.remember_ambassador(conn, event.tenantid, data.ambassador_id, data.subsidiary,
                                         data.effective_at)
    await _count(conn, event)


async def on_ambassador_withdrawn(conn: asyncpg.Connection, event: CloudEvent[AmbassadorWithdrawn]) -> None:
    attribution = await repository.ambassador_attribution(conn, event.tenantid, event.data.ambassador_id)
    await _count(conn, event, attribution)


async def on_notification_sent(conn: asyncpg.Connection, event: CloudEvent[NotificationSent]) -> None:
    await _count(conn, event)


async def on_engagement_recorded(conn: asyncpg.Connection, event: CloudEvent[EngagementRecorded]) -> None:
    attribution = await repository.content_attribution(conn, event.tenantid, event.data.content_id)
    await _count(conn, event, attribution)


# --- KPI API -----------------------------------------------------------------------------------

async def read_kpis(pool: asyncpg.Pool, principal: Principal, scope_type: ScopeType,
                    scope_id: str | None) -> dict[str, Any]:
    """One scope's KPIs, always within the caller's own tenant (taken from the token only)."""
    if scope_id is None:
        if scope_type is not ScopeType.tenant:
            raise MissingScopeId(f"scope_id is required for scope_type {scope_type}")
        scope_id = principal.tenant
    async with pool.acquire() as conn:
        owner = None
        if scope_type is ScopeType.content and principal.subsidiary is not None:
            owner = (await repository.content_attribution(conn, principal.tenant, scope_id)).subsidiary
        if not domain.may_read(principal.subsidiary, scope_type, scope_id, owner):
            raise Forbidden(f"a {principal.subsidiary} token may not read {scope_type} {scope_id}")
        stored = await repository.counters(conn, principal.tenant, scope_type, scope_id)
    return {"tenant": principal.tenant, "scope_type": scope_type, "scope_id": scope_id,
            "kpis": domain.kpi_values(stored)}


async def report(pool: asyncpg.Pool, principal: Principal, top: int) -> dict[str, Any]:
    """The tenant's KPIs and its contents with the most clicks: group-level readers only."""
    if principal.subsidiary is not None:
        raise Forbidden("the tenant report needs a group-level token")
    async with pool.acquire() as conn:
        stored = await repository.counters(conn, principal.tenant, ScopeType.tenant, principal.tenant)
        contents = await repository.top_contents(conn, principal.tenant, domain.CLICKS_TOTAL, top)
        per_content = await repository.counters_of_many(
            conn, principal.tenant, ScopeType.content, [c["content_id"] for c in contents])
    ranked = []
    for content in contents:
        values = domain.kpi_values(per_content.get(content["content_id"], {}))
        ranked.append({**content, "clicks": values[domain.CLICKS_TOTAL], "kpis": values})
    return {"tenant": principal.tenant, "kpis": domain.kpi_values(stored), "top_contents": ranked}
