"""Reporting use cases: parse, decide (domain), write (repository) — in that order.

Event handlers are batch handlers: they run inside the consumer's batch transaction, whose
inbox makes each event count once, and add the whole batch's deltas in a few statements. They
never deduplicate on their own.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.reporting import domain, jobs, repository
from services.reporting.domain import (
    AmbassadorFacts,
    ContentFacts,
    Effect,
    MediaRates,
    ScopeType,
    Window,
)
from shared.auth import Principal, holder_digest
from shared.consumer import Rejections
from shared.envelope import CloudEvent
from shared.events import AmbassadorProfile, EngagementKind, EngagementRecorded, ProfileChange

log = logging.getLogger(__name__)


class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


class MissingScopeId(ValueError):
    pass


Effects = list[tuple[str, Effect]]


async def _apply(conn: asyncpg.Connection, effects: Effects) -> None:
    await repository.add_rollups(conn, domain.expand(effects))


# --- event handlers (one call per consumer batch) ---------------------------------------------


async def on_content_events(conn: asyncpg.Connection, events: list[CloudEvent[Any]]) -> None:
    """content.published counts; published and updated keep what engagements are attributed to."""
    effects: Effects = []
    touched = {(e.tenantid, e.data.content_id) for e in events}
    await repository.lock_entities(conn, touched, set())
    for event in events:
        data = event.data
        await repository.remember_content(conn, event.tenantid, data.content_id, data.title, data.owner_subsidiary,
                                          data.campaign, data.published_at)
        if event.type == "content.published":
            effects += [(event.tenantid, e) for e in domain.content_published_effects(event.tenantid, data)]
    for tenant, content_id in sorted(touched):
        effects += await _settle(conn, tenant, await repository.pending_of(conn, tenant, content_id=content_id))
    await _apply(conn, effects)


async def on_ambassador_events(conn: asyncpg.Connection, events: list[CloudEvent[Any]]) -> None:
    """The directory's effective-dated history; enrolments and withdrawals counted in the scopes
    of the ambassador's profile (a withdrawal in those of the last profile known)."""
    effects: Effects = []
    touched = {(e.tenantid, e.data.ambassador_id) for e in events}
    await repository.lock_entities(conn, set(), touched)
    profiled: set[tuple[str, str]] = set()
    for event in events:  # in order: a withdrawal follows the enrolment it ends
        tenant, data = event.tenantid, event.data
        if isinstance(data, AmbassadorProfile):
            facts = domain.ambassador_facts(data)
            # A lapsed consent is not a withdrawal (nor its renewal an enrolment): the same
            # ambassador, not counted as enrolled while it lasts.
            enrolled = getattr(data, "change", None) != ProfileChange.consent_lapsed
            await repository.record_history(conn, tenant, data.ambassador_id, data.effective_at, enrolled, facts,
                                            data.named_in_leaderboards)
            await repository.remember_identity(conn, tenant, data.ambassador_id, data.effective_at, True, data.holder,
                                               domain.display_name(data))
            profiled.add((tenant, data.ambassador_id))
            if event.type == "ambassador.enrolled":
                effects += [(tenant, e) for e in domain.enrolment_effects(
                    tenant, "ambassadors_enrolled", data.ambassador_id, facts, data.effective_at)]
        else:  # withdrawn
            last = await repository.latest_profile(conn, tenant, data.ambassador_id)
            await repository.record_history(conn, tenant, data.ambassador_id, data.effective_at, False,
                                            last or AmbassadorFacts("", "", {}), False)
            await repository.remember_identity(conn, tenant, data.ambassador_id, data.effective_at, False, None, None)
            effects += [(tenant, e) for e in domain.enrolment_effects(
                tenant, "ambassadors_withdrawn", data.ambassador_id, last, data.effective_at)]
    for tenant, ambassador_id in sorted(profiled):
        effects += await _settle(conn, tenant, await repository.pending_of(conn, tenant, ambassador_id=ambassador_id))
    await _apply(conn, effects)


async def on_notifications(conn: asyncpg.Connection, events: list[CloudEvent[Any]]) -> None:
    await _apply(conn, [(e.tenantid, x) for e in events for x in domain.notification_effects(e.tenantid, e.data)])


async def on_engagements(conn: asyncpg.Connection, events: list[CloudEvent[Any]]) -> Rejections:
    """Counted in every scope known now; what the content's publication or the ambassador's
    profile would add is owed, and added when that fact arrives (see pending_engagements).
    An engagement dated before its (known) content was published is rejected: the DLQ."""
    contents = {(e.tenantid, e.data.content_id) for e in events}
    ambassadors = {(e.tenantid, e.data.ambassador_id) for e in events if e.data.ambassador_id}
    await repository.lock_entities(conn, contents, ambassadors, shared=True)
    known_contents = await repository.content_facts(conn, contents)
    rejected: Rejections = []
    for event in events:
        cause = domain.engagement_refused(event.data, known_contents.get((event.tenantid, event.data.content_id)))
        if cause:
            rejected.append((event, cause))
    if rejected:
        refused = {id(event) for event, _ in rejected}
        events = [e for e in events if id(e) not in refused]
    profiles = await repository.profiles_as_of(conn, sorted(
        {(e.tenantid, e.data.ambassador_id, e.data.occurred_at) for e in events if e.data.ambassador_id}))

    pending: list[repository.PendingRow] = []
    first_shares: dict[tuple[str, str], datetime] = {}
    share_days: set[tuple[str, str, Any]] = set()
    counted: list[tuple[str, EngagementRecorded, ContentFacts | None, AmbassadorFacts | None]] = []
    for event in events:
        tenant, data = event.tenantid, event.data
        content = known_contents.get((tenant, data.content_id))
        ambassador = profiles.get((tenant, data.ambassador_id, data.occurred_at)) if data.ambassador_id else None
        counted.append((tenant, data, content, ambassador))
        ambassador_known = not domain.needs_ambassador(data) or ambassador is not None
        if content is None or not ambassador_known:
            pending.append((tenant, event.source, event.id, data.content_id, data.ambassador_id,
                            data.model_dump_json(), content is not None, ambassador_known))
        if data.kind is EngagementKind.share:
            key = (tenant, data.content_id)
            first_shares[key] = min(first_shares.get(key, data.occurred_at), data.occurred_at)
            if data.ambassador_id:
                share_days.add((tenant, data.ambassador_id, domain.day_of(data.occurred_at)))
    effects = domain.engagements_effects(counted)
    await repository.save_pending(conn, pending)
    await repository.note_first_shares(conn, first_shares)
    await repository.note_share_days(conn, share_days)
    await _apply(conn, effects)
    return rejected


async def _settle(conn: asyncpg.Connection, tenant: str, rows: list[asyncpg.Record]) -> Effects:
    """What pending engagements owe now that more is known of their content or ambassador."""
    if not rows:
        return []
    datas = [EngagementRecorded.model_validate_json(r["data"]) for r in rows]
    contents = await repository.content_facts(conn, {(tenant, d.content_id) for d in datas})
    profiles = await repository.profiles_as_of(conn, sorted(
        {(tenant, d.ambassador_id, d.occurred_at) for d in datas if d.ambassador_id}))
    effects: Effects = []
    for row, data in zip(rows, datas, strict=True):
        content = contents.get((tenant, data.content_id))
        ambassador = profiles.get((tenant, data.ambassador_id, data.occurred_at)) if data.ambassador_id else None
        before = (content if row["content_known"] else None, ambassador if row["ambassador_known"] else None)
        cause = None if row["content_known"] else domain.engagement_refused(data, content)
        if cause:  # counted on arrival, before its content's publication was read: taken back
            log.warning("tenant %s: %s; its counts are taken back", tenant, cause)
            effects += [(tenant, e) for e in domain.retraction(tenant, data, before)]
            await repository.settle_pending(conn, row, True, True)
            continue
        effects += [(tenant, e) for e in domain.late_attribution(tenant, data, before, (content, ambassador))]
        await repository.settle_pending(conn, row, content is not None,
                                        not domain.needs_ambassador(data) or ambassador is not None)
    return effects


# --- KPI API -----------------------------------------------------------------------------------


async def _check_scope(conn: asyncpg.Connection, principal: Principal, scope_type: ScopeType,
                       scope_id: str | None) -> str:
    """The scope id to read, within the caller's own tenant (taken from the token only)."""
    if scope_id is None:
        if scope_type is not ScopeType.tenant:
            raise MissingScopeId(f"scope_id is required for scope_type {scope_type}")
        scope_id = principal.tenant
    if scope_type is ScopeType.tenant and scope_id != principal.tenant:
        scope_id = principal.tenant  # a tenant reads its own tenant scope, whatever it asks
    owner = None
    if principal.subsidiary is not None:
        if scope_type is ScopeType.content:
            owner = await repository.content_owner(conn, principal.tenant, scope_id)
        elif scope_type is ScopeType.ambassador:
            owner = await repository.ambassador_owner(conn, principal.tenant, scope_id)
    if not domain.may_read(principal.subsidiary, scope_type, scope_id, owner):
        raise Forbidden(f"a {principal.subsidiary} token may not read {scope_type} {scope_id}")
    return scope_id


async def read_kpis(pool: asyncpg.Pool, principal: Principal, scope_type: ScopeType, scope_id: str | None,
                    window: Window = Window.all, at: datetime | None = None) -> dict[str, Any]:
    """One scope's KPIs in the window containing ``at`` (default: now)."""
    series = await read_series(pool, principal, scope_type, scope_id, window, at, at, limit=1)
    point = series["points"][0]
    return {k: series[k] for k in ("tenant", "scope_type", "scope_id", "window", "definitions_version",
                                   "currency")} | {"window_start": point["window_start"], "kpis": point["kpis"]}


async def read_series(pool: asyncpg.Pool, principal: Principal, scope_type: ScopeType, scope_id: str | None,
                      window: Window, first: datetime | None, last: datetime | None, limit: int) -> dict[str, Any]:
    """The KPIs of each window of the range, oldest first; of its newest ``limit`` windows when
    it holds more, flagged ``truncated``."""
    now = datetime.now(UTC)
    last = last or now
    first = first or last
    starts = domain.window_starts(window, first, last, limit)
    in_range = domain.windows_between(window, first, last)
    async with pool.acquire() as conn:
        scope_id = await _check_scope(conn, principal, scope_type, scope_id)
        rates = await repository.media_rates(conn, principal.tenant)
        counted = await repository.counted(conn, principal.tenant, scope_type, scope_id, window, starts)
        points = []
        for start in starts:
            directory = await repository.directory_figures(conn, principal.tenant, scope_type, scope_id, window,
                                                           start, now)
            points.append({"window_start": None if window is Window.all else start,
                           "kpis": domain.kpi_values(counted.get(start, {}), rates, directory)})
    return {"tenant": principal.tenant, "scope_type": scope_type, "scope_id": scope_id, "window": window,
            "definitions_version": domain.DEFINITIONS_VERSION, "currency": rates.currency if rates else None,
            "points": points, "windows_in_range": in_range, "truncated": in_range > len(starts)}


def definitions() -> dict[str, Any]:
    return {"version": domain.DEFINITIONS_VERSION,
            "definitions": [{"name": d.name, "kind": d.kind, "unit": d.unit, "definition": d.definition}
                            for d in domain.DEFINITIONS]}


BOARDS = {"ambassadors": ScopeType.ambassador, "contents": ScopeType.content, "subsidiaries": ScopeType.subsidiary}


def _board_kpis(kpi: str) -> list[str]:
    return ["clicks_total", "reactions", "comments", "reshares"] if kpi == "engagements" else [kpi]


async def leaderboard(pool: asyncpg.Pool, principal: Principal, board: str, kpi: str, window: Window,
                      at: datetime | None, top: int, me: str | None = None) -> dict[str, Any]:
    """Ambassadors, contents or subsidiaries ranked by one KPI; a subsidiary-scoped token ranks
    within its own subsidiary. Ambassadors: only those who chose to be named, and never by id:
    by the display name they chose to publish (``me``: the caller's own ambassador id, marked)."""
    scope_type = BOARDS[board]
    start = domain.window_start(window, at or datetime.now(UTC))
    async with pool.acquire() as conn:
        rows = await repository.leaderboard(conn, principal.tenant, scope_type, window, start, _board_kpis(kpi), top,
                                            principal.subsidiary)
        info = (await repository.contents_info(conn, principal.tenant, [r["scope_id"] for r in rows])
                if scope_type is ScopeType.content else {})
    if scope_type is ScopeType.ambassador:
        entries = [domain.ambassador_entry(r["rank"], r["value"], r["display_name"], me is not None and
                                           r["scope_id"] == me) for r in rows]
    else:
        entries = [{"rank": r["rank"], "id": r["scope_id"], "value": r["value"],
                    "title": info.get(r["scope_id"], {}).get("title")} for r in rows]
    return {"tenant": principal.tenant, "board": board, "kpi": kpi, "window": window,
            "window_start": None if window is Window.all else start, "entries": entries}


class NotEnrolled(NotFound):
    pass


class NoIdentityKey(Exception):
    pass


MY_BOARD_KPI = "shares"


async def my_results(pool: asyncpg.Pool, principal: Principal, identity_key: str | None,
                     top: int = 10) -> dict[str, Any]:
    """The caller's own all-time KPIs and the tenant's ambassadors' leaderboard. The caller's
    ambassador is found by the holder digest of his tenant and sign-in subject (no HR id, no
    shared secret with anyone: distribution put the same digest on ambassadors.v1)."""
    if identity_key is None:
        raise NoIdentityKey("my results need PORTEVOIX_IDENTITY_KEY (the same as distribution's)")
    holder = holder_digest(identity_key, principal.tenant, principal.subject)
    async with pool.acquire() as conn:
        mine = await repository.ambassador_of_holder(conn, principal.tenant, holder)
        if mine is None:
            raise NotEnrolled("you are not an enrolled ambassador")
        ambassador_id = mine["ambassador_id"]
        value, rank = await repository.rank_of(conn, principal.tenant, ScopeType.ambassador, ambassador_id,
                                               Window.all, domain.ALL_TIME_START, _board_kpis(MY_BOARD_KPI))
    tenant_wide = dataclasses.replace(principal, subsidiary=None)  # his own scope, the tenant's board
    own = await read_kpis(pool, tenant_wide, ScopeType.ambassador, ambassador_id)
    board = await leaderboard(pool, tenant_wide, "ambassadors", MY_BOARD_KPI, Window.all, None, top, me=ambassador_id)
    return {"tenant": principal.tenant, "ambassador_id": ambassador_id, "display_name": mine["display_name"],
            "kpis": own["kpis"], "leaderboard_kpi": MY_BOARD_KPI, "rank": rank, "rank_value": value,
            "leaderboard": board["entries"]}


async def digest(pool: asyncpg.Pool, principal: Principal, month: str, top: int = 5) -> dict[str, Any]:
    """The month's KPIs against the previous month's, its best posts and best (named)
    ambassadors: the newsletter comms teams send their ambassadors."""
    start, previous_start = domain.month_bounds(month)
    scope_type = ScopeType.tenant if principal.subsidiary is None else ScopeType.subsidiary
    scope_id = principal.subsidiary or principal.tenant
    series = await read_series(pool, principal, scope_type, scope_id, Window.month, previous_start, start, limit=2)
    previous, current = series["points"][0]["kpis"], series["points"][1]["kpis"]
    comparison = [{"kpi": name, "value": current.get(name), "previous": previous.get(name),
                   "change": domain.change(current.get(name), previous.get(name)),
                   "kind": domain.DEFINITION_BY_NAME[name].kind} for name in domain.KPI_NAMES]
    posts = await leaderboard(pool, principal, "contents", "engagements", Window.month, start, top)
    ambassadors = await leaderboard(pool, principal, "ambassadors", "shares", Window.month, start, top)
    return {"tenant": principal.tenant, "scope_type": scope_type, "scope_id": scope_id, "month": month,
            "definitions_version": domain.DEFINITIONS_VERSION, "currency": series["currency"], "kpis": comparison,
            "best_posts": posts["entries"], "best_ambassadors": ambassadors["entries"]}


async def report(pool: asyncpg.Pool, principal: Principal, top: int) -> dict[str, Any]:
    """The tenant's all-time KPIs and its contents with the most clicks: group-level readers only."""
    if principal.subsidiary is not None:
        raise Forbidden("the tenant report needs a group-level token")
    whole = await read_kpis(pool, principal, ScopeType.tenant, None)
    board = await leaderboard(pool, principal, "contents", "clicks_total", Window.all, None, top)
    async with pool.acquire() as conn:
        info = await repository.contents_info(conn, principal.tenant, [e["id"] for e in board["entries"]])
    top_contents = [{"content_id": e["id"], "rank": e["rank"], "clicks": e["value"], "title": e["title"],
                     "owner_subsidiary": info.get(e["id"], {}).get("owner_subsidiary"),
                     "campaign": info.get(e["id"], {}).get("campaign")} for e in board["entries"]]
    return {"tenant": principal.tenant, "kpis": whole["kpis"], "top_contents": top_contents}


async def read_media_rates(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    async with pool.acquire() as conn:
        rates = await repository.media_rates(conn, principal.tenant)
    if rates is None:
        raise NotFound("no media rates configured: earned media value is not computed")
    return {"currency": rates.currency, "rates": rates.rates}


async def set_media_rates(pool: asyncpg.Pool, principal: Principal, currency: str,
                          rates: dict[str, dict[str, float]]) -> dict[str, Any]:
    _group_level(principal)
    async with pool.acquire() as conn:
        await repository.set_media_rates(conn, principal.tenant, MediaRates(currency, rates))
    return {"currency": currency, "rates": rates}



# --- outbound webhooks ---------------------------------------------------------------------------


def _group_level(principal: Principal) -> None:
    if principal.subsidiary is not None:
        raise Forbidden("tenant settings need a group-level token")


async def add_webhook(pool: asyncpg.Pool, principal: Principal, url: str, event_types: list[str]) -> dict[str, Any]:
    _group_level(principal)
    secret = jobs.new_secret()
    async with pool.acquire() as conn:
        created = await repository.add_subscription(conn, principal.tenant, url, secret, sorted(set(event_types)))
    return {**created, "secret": secret}


async def webhooks(pool: asyncpg.Pool, principal: Principal) -> list[dict[str, Any]]:
    _group_level(principal)
    async with pool.acquire() as conn:
        return await repository.subscriptions(conn, principal.tenant)


async def set_webhook_active(pool: asyncpg.Pool, principal: Principal, subscription_id: uuid.UUID,
                             active: bool) -> dict[str, Any]:
    _group_level(principal)
    async with pool.acquire() as conn:
        changed = await repository.set_subscription_active(conn, principal.tenant, subscription_id, active)
    if changed is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return changed


async def delete_webhook(pool: asyncpg.Pool, principal: Principal, subscription_id: uuid.UUID) -> None:
    _group_level(principal)
    async with pool.acquire() as conn:
        if not await repository.delete_subscription(conn, principal.tenant, subscription_id):
            raise NotFound(f"no webhook subscription {subscription_id}")


async def deliveries(pool: asyncpg.Pool, principal: Principal, limit: int) -> list[dict[str, Any]]:
    _group_level(principal)
    async with pool.acquire() as conn:
        return await repository.deliveries(conn, principal.tenant, limit)


async def replay_delivery(pool: asyncpg.Pool, principal: Principal, delivery_id: uuid.UUID) -> None:
    _group_level(principal)
    async with pool.acquire() as conn:
        if not await repository.replay_delivery(conn, principal.tenant, delivery_id):
            raise NotFound(f"no delivery {delivery_id}")
