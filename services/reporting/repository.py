"""All of the reporting service's SQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.reporting.domain import (
    ACTIVE_DAYS,
    AmbassadorFacts,
    ContentFacts,
    Deltas,
    DirectoryFigures,
    HourKey,
    MediaRates,
    ScopeType,
    Window,
    window_end,
)

# --- rollups (written in the consumer's batch transaction) ------------------------------------


def _members_of_coarser_window(name: str, finer: str, window: str, finer_start: str, start: str) -> str:
    """The CTE inserting into ``window`` the members new to the ``finer`` window's CTE."""
    return f"""{name} AS (
        INSERT INTO rollup_members (tenant, scope_type, scope_id, time_window, window_start, kpi, member, value)
        SELECT m.tenant, m.scope_type, m.scope_id, '{window}', w.{start}, m.kpi, m.member, m.value
        FROM {finer} m JOIN (SELECT DISTINCT {finer_start}, {start} FROM w) w ON w.{finer_start} = m.window_start
        ORDER BY 1, 2, 3, 5, 6, 7, m.window_start
        ON CONFLICT DO NOTHING
        RETURNING tenant, scope_type, scope_id, time_window, window_start, kpi, member, value)"""


# Members go in window by window, hour first: a member already in its hour is already in that
# hour's day, month and all time (they are always written together), so only the members new to
# a window are tried in the next one (a member's value in a window: that of its earliest hour).
_ADD_ROLLUPS = f"""
    WITH w AS (
        SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
            AS w(hour, day, month, all_time)
    ), mh AS (
        INSERT INTO rollup_members (tenant, scope_type, scope_id, time_window, window_start, kpi, member, value)
        SELECT k.tenant, k.scope_type, k.scope_id, 'hour', k.hour, k.kpi, k.member, k.value
        FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::bigint[])
             AS k(tenant, scope_type, scope_id, kpi, hour, member, value)
        ORDER BY 1, 2, 3, 5, 6, 7
        ON CONFLICT DO NOTHING
        RETURNING tenant, scope_type, scope_id, time_window, window_start, kpi, member, value
    ), {_members_of_coarser_window("md", "mh", "day", "hour", "day")},
    {_members_of_coarser_window("mm", "md", "month", "day", "month")},
    {_members_of_coarser_window("ma", "mm", "all", "month", "all_time")},
    moved AS (
        SELECT k.tenant, k.scope_type, k.scope_id, s.time_window, s.window_start, k.kpi, k.delta AS value
        FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::timestamptz[], $17::bigint[])
             AS k(tenant, scope_type, scope_id, kpi, hour, delta)
        JOIN w USING (hour)
        CROSS JOIN LATERAL (VALUES ('hour', w.hour), ('day', w.day), ('month', w.month), ('all', w.all_time))
             AS s(time_window, window_start)
        {" ".join(f"UNION ALL SELECT tenant, scope_type, scope_id, time_window, window_start, kpi, value FROM {m}"
                  for m in ("mh", "md", "mm", "ma"))}
    ), r AS (
        INSERT INTO rollups (tenant, scope_type, scope_id, time_window, window_start, kpi, value)
        SELECT tenant, scope_type, scope_id, time_window, window_start, kpi, sum(value) FROM moved
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(value) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (tenant, scope_type, scope_id, time_window, window_start, kpi)
        DO UPDATE SET value = rollups.value + EXCLUDED.value
        RETURNING tenant, scope_type, scope_id, time_window, window_start
    )
    -- A new version of a key already dirty: the flusher forgets it only if it emitted this
    -- version (a change committed while it was emitting is never dropped).
    INSERT INTO kpi_dirty (tenant, scope_type, scope_id, time_window, window_start)
    SELECT DISTINCT * FROM r ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant, scope_type, scope_id, time_window, window_start)
    DO UPDATE SET version = kpi_dirty.version + 1"""


async def add_rollups(conn: asyncpg.Connection, deltas: Deltas) -> None:
    """Add each hour-level delta to the rollups of its hour's four windows; a member counts
    only when new to its scope and window; every key moved is marked for the KPI stream.

    One statement (``_ADD_ROLLUPS``). Rollup rows are grouped per key (ON CONFLICT DO UPDATE
    may touch a row once per statement) and written in key order (locks are taken in input
    order, which keeps concurrent batches on the same hot rows from deadlocking)."""
    if not deltas.plain and not deltas.members:
        return
    spread = [dict(windows) for windows in deltas.windows.values()]
    members = list(deltas.members.items())
    plain = list(deltas.plain.items())
    await conn.execute(
        _ADD_ROLLUPS, *([w[window] for w in spread] for window in Window),
        *_hour_columns([k for (k, _), _ in members]), [m for (_, m), _ in members], [v for _, v in members],
        *_hour_columns([k for k, _ in plain]), [v for _, v in plain])


def _hour_columns(keys: Sequence[HourKey]) -> list[list[Any]]:
    return [[k.tenant for k in keys], [k.scope_type for k in keys], [k.scope_id for k in keys],
            [k.kpi for k in keys], [k.hour for k in keys]]


# --- what reporting remembers of contents and ambassadors -------------------------------------


async def remember_content(conn: asyncpg.Connection, tenant: str, content_id: str, title: str,
                           owner_subsidiary: str | None, campaign: str | None, published_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO contents (tenant, content_id, title, owner_subsidiary, campaign, published_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant, content_id) DO UPDATE SET title = EXCLUDED.title,
               owner_subsidiary = EXCLUDED.owner_subsidiary, campaign = EXCLUDED.campaign,
               published_at = coalesce(contents.published_at, EXCLUDED.published_at), updated_at = now()""",
        tenant, content_id, title, owner_subsidiary, campaign, published_at)


async def note_first_shares(conn: asyncpg.Connection, shares: dict[tuple[str, str], datetime]) -> None:
    """The earliest share of each content (whatever the order shares arrive in)."""
    if not shares:
        return
    items = sorted(shares.items())
    await conn.execute(
        """INSERT INTO contents (tenant, content_id, first_share_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
           ON CONFLICT (tenant, content_id)
           DO UPDATE SET first_share_at = least(contents.first_share_at, EXCLUDED.first_share_at)""",
        [t for (t, _), _ in items], [c for (_, c), _ in items], [at for _, at in items])


async def note_share_days(conn: asyncpg.Connection, days: set[tuple[str, str, Any]]) -> None:
    if not days:
        return
    items = sorted(days)
    await conn.execute(
        """INSERT INTO share_days (tenant, ambassador_id, day)
           SELECT * FROM unnest($1::text[], $2::text[], $3::date[]) ON CONFLICT DO NOTHING""",
        [t for t, _, _ in items], [a for _, a, _ in items], [d for _, _, d in items])


async def content_facts(conn: asyncpg.Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], ContentFacts]:
    """What is known of published contents (those whose publication was read)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """SELECT c.tenant, c.content_id, c.owner_subsidiary, c.campaign, c.published_at
           FROM unnest($1::text[], $2::text[]) AS k(tenant, content_id)
           JOIN contents c ON c.tenant = k.tenant AND c.content_id = k.content_id
           WHERE c.published_at IS NOT NULL""",
        [t for t, _ in keys], [c for _, c in keys])
    return {(r["tenant"], r["content_id"]): ContentFacts(r["owner_subsidiary"], r["campaign"], r["published_at"])
            for r in rows}


async def record_history(conn: asyncpg.Connection, tenant: str, ambassador_id: str, effective_at: datetime,
                         enrolled: bool, profile: AmbassadorFacts, named: bool) -> None:
    await conn.execute(
        """INSERT INTO ambassador_history
               (tenant, ambassador_id, effective_at, enrolled, subsidiary, department, network_audience, named)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        tenant, ambassador_id, effective_at, enrolled, profile.subsidiary, profile.department,
        json.dumps(dict(profile.network_audience)), named)


async def remember_identity(conn: asyncpg.Connection, tenant: str, ambassador_id: str, effective_at: datetime,
                            enrolled: bool, holder: str | None, display_name: str | None) -> None:
    """The ambassador's current holder and display name (the latest effective record wins; a
    withdrawal forgets the name, keeps the holder)."""
    await conn.execute(
        """INSERT INTO ambassador_identities (tenant, ambassador_id, holder, display_name, enrolled, effective_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant, ambassador_id) DO UPDATE SET
               holder = CASE WHEN EXCLUDED.enrolled THEN EXCLUDED.holder ELSE ambassador_identities.holder END,
               display_name = EXCLUDED.display_name, enrolled = EXCLUDED.enrolled,
               effective_at = EXCLUDED.effective_at
           WHERE EXCLUDED.effective_at >= ambassador_identities.effective_at""",
        tenant, ambassador_id, holder, display_name, enrolled, effective_at)


async def ambassador_of_holder(conn: asyncpg.Connection, tenant: str, holder: str) -> asyncpg.Record | None:
    """The enrolled ambassador a holder digest designates (the latest, should there be several)."""
    return await conn.fetchrow(
        """SELECT ambassador_id, display_name FROM ambassador_identities
           WHERE tenant = $1 AND holder = $2 AND enrolled ORDER BY effective_at DESC LIMIT 1""", tenant, holder)


async def profiles_as_of(conn: asyncpg.Connection, wanted: list[tuple[str, str, datetime]]) -> dict[
        tuple[str, str, datetime], AmbassadorFacts]:
    """Each ambassador's profile as of an instant: the latest enrolled or updated record
    effective by then, else (a share a moment before the enrolment took effect) the first one."""
    if not wanted:
        return {}
    rows = await conn.fetch(
        """SELECT q.tenant, q.ambassador_id, q.at, h.seq, h.subsidiary, h.department, h.network_audience
           FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS q(tenant, ambassador_id, at)
           CROSS JOIN LATERAL (
               SELECT seq, subsidiary, department, network_audience FROM ambassador_history h
               WHERE h.tenant = q.tenant AND h.ambassador_id = q.ambassador_id AND h.enrolled
               ORDER BY (h.effective_at <= q.at) DESC,
                        CASE WHEN h.effective_at <= q.at THEN h.effective_at END DESC NULLS LAST,
                        h.effective_at, h.seq DESC
               LIMIT 1) h""",
        [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted])
    # One object per history row: engagements of one profile are told alike by identity.
    facts: dict[int, AmbassadorFacts] = {}
    for r in rows:
        if r["seq"] not in facts:
            facts[r["seq"]] = AmbassadorFacts(r["subsidiary"], r["department"], json.loads(r["network_audience"]))
    return {(r["tenant"], r["ambassador_id"], r["at"]): facts[r["seq"]] for r in rows}


async def latest_profile(conn: asyncpg.Connection, tenant: str, ambassador_id: str) -> AmbassadorFacts | None:
    row = await conn.fetchrow(
        """SELECT subsidiary, department, network_audience FROM ambassador_history
           WHERE tenant = $1 AND ambassador_id = $2 ORDER BY effective_at DESC, seq DESC LIMIT 1""",
        tenant, ambassador_id)
    return AmbassadorFacts(row["subsidiary"], row["department"], json.loads(row["network_audience"])) if row else None


async def lock_entities(conn: asyncpg.Connection, contents: set[tuple[str, str]],
                        ambassadors: set[tuple[str, str]], *, shared: bool = False) -> None:
    """Serialise, per content and per ambassador, the engagement batches that look them up with
    the batches that make them known: either the lookup sees the fact, or the fact's batch sees
    the pending engagement. Lookups take the locks shared (engagement batches never wait for
    one another), the batches that make facts known take them exclusive. Locks are taken in
    one global order (no deadlock)."""
    names = [(1, f"{t}/{c}") for t, c in contents] + [(2, f"{t}/{a}") for t, a in ambassadors]
    if names:
        lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await conn.execute(
            f"""SELECT count({lock}(cls, h)) FROM (
                    SELECT DISTINCT cls, hashtext(name) AS h FROM unnest($1::int[], $2::text[]) AS t(cls, name)
                    ORDER BY cls, h) s""",
            [c for c, _ in names], [n for _, n in names])


PendingRow = tuple[str, str, str, str, str | None, str, bool, bool]


async def save_pending(conn: asyncpg.Connection, rows: list[PendingRow]) -> None:
    if rows:
        await conn.executemany(
            """INSERT INTO pending_engagements
                   (tenant, source, event_id, content_id, ambassador_id, data, content_known, ambassador_known)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""", rows)


async def pending_of(conn: asyncpg.Connection, tenant: str, *, content_id: str | None = None,
                     ambassador_id: str | None = None) -> list[asyncpg.Record]:
    """Engagements still waiting for this content's publication or this ambassador's profile
    (locked: two batches never settle the same one twice)."""
    if content_id is not None:
        return await conn.fetch(
            """SELECT * FROM pending_engagements WHERE tenant = $1 AND content_id = $2 AND NOT content_known
               ORDER BY source, event_id FOR UPDATE""", tenant, content_id)
    return await conn.fetch(
        """SELECT * FROM pending_engagements WHERE tenant = $1 AND ambassador_id = $2 AND NOT ambassador_known
           ORDER BY source, event_id FOR UPDATE""", tenant, ambassador_id)


async def settle_pending(conn: asyncpg.Connection, row: asyncpg.Record, content_known: bool,
                         ambassador_known: bool) -> None:
    if content_known and ambassador_known:
        await conn.execute("DELETE FROM pending_engagements WHERE tenant = $1 AND source = $2 AND event_id = $3",
                           row["tenant"], row["source"], row["event_id"])
    else:
        await conn.execute(
            """UPDATE pending_engagements SET content_known = $4, ambassador_known = $5
               WHERE tenant = $1 AND source = $2 AND event_id = $3""",
            row["tenant"], row["source"], row["event_id"], content_known, ambassador_known)


# --- reads --------------------------------------------------------------------------------------


async def counted(conn: asyncpg.Connection, tenant: str, scope_type: str, scope_id: str, window: Window,
                  starts: list[datetime]) -> dict[datetime, dict[str, int]]:
    rows = await conn.fetch(
        """SELECT window_start, kpi, value FROM rollups
           WHERE tenant = $1 AND scope_type = $2 AND scope_id = $3 AND time_window = $4
             AND window_start = ANY($5::timestamptz[])""",
        tenant, scope_type, scope_id, str(window), starts)
    found: dict[datetime, dict[str, int]] = {start: {} for start in starts}
    for r in rows:
        found.setdefault(r["window_start"], {})[r["kpi"]] = r["value"]
    return found


_PROFILE_SCOPE = {
    ScopeType.tenant: "true",
    ScopeType.subsidiary: "p.subsidiary = $3",
    ScopeType.department: "p.subsidiary || '/' || p.department = $3",
    ScopeType.ambassador: "p.ambassador_id = $3",
}


def directory_scope(scope_type: ScopeType) -> bool:
    return scope_type in _PROFILE_SCOPE


async def enrolled_at(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, scope_id: str,
                      at: datetime) -> int:
    """Ambassadors enrolled at ``at`` in the scope, from the effective-dated history."""
    return await conn.fetchval(
        f"""SELECT count(*) FROM (
                SELECT DISTINCT ON (ambassador_id) ambassador_id, enrolled, subsidiary, department
                FROM ambassador_history WHERE tenant = $1 AND effective_at < $2
                ORDER BY ambassador_id, effective_at DESC, seq DESC) p
            WHERE p.enrolled AND {_PROFILE_SCOPE[scope_type]} AND $3::text IS NOT NULL""",
        tenant, at, scope_id)


async def active_at(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, scope_id: str,
                    at: datetime) -> int:
    """Distinct ambassadors with a share in the ACTIVE_DAYS days before ``at``, in the scope
    their profile at ``at`` puts them in."""
    return await conn.fetchval(
        f"""SELECT count(DISTINCT s.ambassador_id) FROM share_days s
            JOIN LATERAL (
                SELECT h.ambassador_id, h.subsidiary, h.department FROM ambassador_history h
                WHERE h.tenant = s.tenant AND h.ambassador_id = s.ambassador_id
                ORDER BY (h.effective_at < $2) DESC, h.effective_at DESC, h.seq DESC LIMIT 1) p ON true
            WHERE s.tenant = $1
              AND s.day >= (($2::timestamptz - make_interval(days => {ACTIVE_DAYS})) AT TIME ZONE 'UTC')::date
              AND s.day < ($2::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC'
              AND {_PROFILE_SCOPE[scope_type]} AND $3::text IS NOT NULL""",
        tenant, at, scope_id)


_CONTENT_SCOPE = {
    ScopeType.tenant: "true",
    ScopeType.subsidiary: "owner_subsidiary = $4",
    ScopeType.campaign: "campaign = $4",
    ScopeType.content: "content_id = $4",
}


def content_scope(scope_type: ScopeType) -> bool:
    return scope_type in _CONTENT_SCOPE


async def median_first_share(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, scope_id: str,
                             start: datetime, end: datetime | None) -> float | None:
    value = await conn.fetchval(
        f"""SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_share_at - published_at))
            FROM contents WHERE tenant = $1 AND published_at >= $2 AND ($3::timestamptz IS NULL OR published_at < $3)
              AND first_share_at IS NOT NULL AND {_CONTENT_SCOPE[scope_type]} AND $4::text IS NOT NULL""",
        tenant, start, end, scope_id)
    return None if value is None else round(float(value), 3)


async def directory_figures(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, scope_id: str,
                            window: Window, start: datetime, now: datetime) -> DirectoryFigures:
    """The figures of a scope's window read from the history tables (None where undefined)."""
    end = window_end(window, start)
    as_of = min(end, now) if end else now  # a past period: its own enrolment, not today's
    enrolled = active = median = None
    if directory_scope(scope_type):
        enrolled = await enrolled_at(conn, tenant, scope_type, scope_id, as_of)
        active = await active_at(conn, tenant, scope_type, scope_id, as_of)
    if content_scope(scope_type):
        median = await median_first_share(conn, tenant, scope_type, scope_id, start, end)
    return DirectoryFigures(enrolled, active, median)


async def content_owner(conn: asyncpg.Connection, tenant: str, content_id: str) -> str | None:
    return await conn.fetchval("SELECT owner_subsidiary FROM contents WHERE tenant = $1 AND content_id = $2",
                               tenant, content_id)


async def ambassador_owner(conn: asyncpg.Connection, tenant: str, ambassador_id: str) -> str | None:
    profile = await latest_profile(conn, tenant, ambassador_id)
    return profile.subsidiary if profile else None


async def contents_info(conn: asyncpg.Connection, tenant: str, content_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT content_id, title, owner_subsidiary, campaign, published_at FROM contents
           WHERE tenant = $1 AND content_id = ANY($2::text[])""", tenant, content_ids)
    return {r["content_id"]: dict(r) for r in rows}


_BOARD_FILTER = {
    ScopeType.content: """LEFT JOIN contents c ON c.tenant = $1 AND c.content_id = t.scope_id
                          WHERE ($7::text IS NULL OR c.owner_subsidiary = $7)""",
    ScopeType.ambassador: """JOIN LATERAL (
                                 SELECT named, subsidiary FROM ambassador_history h
                                 WHERE h.tenant = $1 AND h.ambassador_id = t.scope_id
                                 ORDER BY effective_at DESC, seq DESC LIMIT 1) p ON true
                             WHERE p.named AND ($7::text IS NULL OR p.subsidiary = $7)""",
    ScopeType.subsidiary: "WHERE ($7::text IS NULL OR t.scope_id = $7)",
}


async def leaderboard(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, window: Window,
                      start: datetime, kpis: list[str], top: int, subsidiary: str | None) -> list[dict[str, Any]]:
    """The scopes with the highest sum of ``kpis``, ranked 1, 1, 3 (ties share a rank), every
    scope whose rank is within ``top`` (so a tie at the cut is never broken arbitrarily)."""
    rows = await conn.fetch(
        f"""WITH totals AS (
                SELECT scope_id, sum(value)::bigint AS value FROM rollups
                WHERE tenant = $1 AND scope_type = $2 AND time_window = $3 AND window_start = $4
                  AND kpi = ANY($5::text[])
                GROUP BY scope_id),
            eligible AS (SELECT t.scope_id, t.value FROM totals t {_BOARD_FILTER[scope_type]}),
            ranked AS (SELECT scope_id, value, rank() OVER (ORDER BY value DESC) AS rank FROM eligible)
            SELECT r.rank, r.scope_id, r.value, i.display_name FROM ranked r
            LEFT JOIN ambassador_identities i ON $2 = 'ambassador' AND i.tenant = $1 AND i.ambassador_id = r.scope_id
            WHERE r.rank <= $6 AND r.value > 0 ORDER BY r.rank, r.scope_id""",
        tenant, str(scope_type), str(window), start, kpis, top, subsidiary)
    return [dict(r) for r in rows]


async def rank_of(conn: asyncpg.Connection, tenant: str, scope_type: ScopeType, scope_id: str, window: Window,
                  start: datetime, kpis: list[str]) -> tuple[int, int | None]:
    """A scope's value and its competition rank among the scopes of its type (None: no value)."""
    row = await conn.fetchrow(
        """WITH totals AS (
               SELECT scope_id, sum(value)::bigint AS value FROM rollups
               WHERE tenant = $1 AND scope_type = $2 AND time_window = $3 AND window_start = $4
                 AND kpi = ANY($5::text[])
               GROUP BY scope_id)
           SELECT coalesce((SELECT value FROM totals WHERE scope_id = $6), 0) AS value,
                  1 + (SELECT count(*) FROM totals
                       WHERE value > coalesce((SELECT value FROM totals WHERE scope_id = $6), 0)) AS rank""",
        tenant, str(scope_type), str(window), start, kpis, scope_id)
    return row["value"], (row["rank"] if row["value"] > 0 else None)


# --- media rates ---------------------------------------------------------------------------------


async def media_rates(conn: asyncpg.Connection, tenant: str) -> MediaRates | None:
    row = await conn.fetchrow("SELECT currency, rates FROM media_rates WHERE tenant = $1", tenant)
    return MediaRates(row["currency"], json.loads(row["rates"])) if row else None


async def set_media_rates(conn: asyncpg.Connection, tenant: str, rates: MediaRates) -> None:
    await conn.execute(
        """INSERT INTO media_rates (tenant, currency, rates) VALUES ($1, $2, $3)
           ON CONFLICT (tenant)
           DO UPDATE SET currency = EXCLUDED.currency, rates = EXCLUDED.rates, updated_at = now()""",
        tenant, rates.currency, json.dumps({k: dict(v) for k, v in rates.rates.items()}))


# --- the KPI stream ---------------------------------------------------------------------------------


async def take_flusher_turn(conn: asyncpg.Connection) -> bool:
    """One KPI stream flusher at a time per schema (replicas take turns), till the transaction ends."""
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock(3, hashtext(current_schema()))")


async def due_keys(conn: asyncpg.Connection, min_interval_seconds: float, limit: int) -> list[asyncpg.Record]:
    """Keys changed since their last emission and not emitted within the interval, the longest
    waiting first, with the version of their change (not locked: consumers never wait)."""
    return await conn.fetch(
        """SELECT d.tenant, d.scope_type, d.scope_id, d.time_window, d.window_start, d.version,
                  e.kpi_values AS emitted
           FROM kpi_dirty d
           LEFT JOIN kpi_emitted e USING (tenant, scope_type, scope_id, time_window, window_start)
           WHERE e.emitted_at IS NULL OR e.emitted_at <= now() - make_interval(secs => $1)
           ORDER BY d.touched_at LIMIT $2""",
        min_interval_seconds, limit)


KEY_COLUMNS = ("tenant", "scope_type", "scope_id", "time_window", "window_start")


def _key_columns(keys: Sequence[asyncpg.Record]) -> list[list[Any]]:
    return [[k[c] for k in keys] for c in KEY_COLUMNS]


async def counted_of_keys(conn: asyncpg.Connection, keys: list[asyncpg.Record]) -> dict[tuple, dict[str, int]]:
    rows = await conn.fetch(
        """SELECT r.tenant, r.scope_type, r.scope_id, r.time_window, r.window_start, r.kpi, r.value
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                AS k(tenant, scope_type, scope_id, time_window, window_start)
           JOIN rollups r USING (tenant, scope_type, scope_id, time_window, window_start)""",
        *_key_columns(keys))
    found: dict[tuple, dict[str, int]] = {}
    for r in rows:
        found.setdefault(tuple(r.values())[:5], {})[r["kpi"]] = r["value"]
    return found


async def record_emissions(conn: asyncpg.Connection, keys: list[asyncpg.Record],
                           emitted: list[tuple[asyncpg.Record, dict[str, float]]]) -> None:
    """Forget the keys still at the version read (locked in key order, as consumers lock
    them: no deadlock); remember the values emitted now."""
    await conn.execute(
        """WITH emitted AS (
               SELECT d.ctid FROM kpi_dirty d
               JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[])
                    AS k(tenant, scope_type, scope_id, time_window, window_start, version)
                    USING (tenant, scope_type, scope_id, time_window, window_start)
               WHERE d.version = k.version
               ORDER BY d.tenant, d.scope_type, d.scope_id, d.time_window, d.window_start
               FOR UPDATE OF d)
           DELETE FROM kpi_dirty WHERE ctid IN (SELECT ctid FROM emitted)""",
        *_key_columns(keys), [k["version"] for k in keys])
    if emitted:
        await conn.execute(
            """INSERT INTO kpi_emitted (tenant, scope_type, scope_id, time_window, window_start, kpi_values, emitted_at)
               SELECT k.tenant, k.scope_type, k.scope_id, k.time_window, k.window_start, k.kpi_values::jsonb, now()
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
                    AS k(tenant, scope_type, scope_id, time_window, window_start, kpi_values)
               ON CONFLICT (tenant, scope_type, scope_id, time_window, window_start)
               DO UPDATE SET kpi_values = EXCLUDED.kpi_values, emitted_at = now()""",
            *_key_columns([k for k, _ in emitted]), [json.dumps(v) for _, v in emitted])


# --- webhooks ----------------------------------------------------------------------------------------


_SUBSCRIPTION = "id, url, event_types, created_at, active, paused_at, paused_reason, consecutive_failures"


async def add_subscription(conn: asyncpg.Connection, tenant: str, url: str, secret: str,
                           event_types: list[str]) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO webhook_subscriptions (id, tenant, url, secret, event_types) VALUES ($1, $2, $3, $4, $5)
            RETURNING {_SUBSCRIPTION}""", uuid.uuid4(), tenant, url, secret, event_types)
    return dict(row)


async def subscriptions(conn: asyncpg.Connection, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_SUBSCRIPTION} FROM webhook_subscriptions WHERE tenant = $1 ORDER BY created_at", tenant)
    return [dict(r) for r in rows]


async def set_subscription_active(conn: asyncpg.Connection, tenant: str, subscription_id: uuid.UUID,
                                  active: bool) -> dict[str, Any] | None:
    """Pause or resume (which forgets the failures counted so far)."""
    row = await conn.fetchrow(
        f"""UPDATE webhook_subscriptions SET active = $3,
                paused_at = CASE WHEN $3 THEN NULL WHEN active THEN now() ELSE paused_at END,
                paused_reason = CASE WHEN $3 THEN NULL WHEN active THEN 'paused by an admin' ELSE paused_reason END,
                consecutive_failures = CASE WHEN $3 THEN 0 ELSE consecutive_failures END
            WHERE tenant = $1 AND id = $2 RETURNING {_SUBSCRIPTION}""", tenant, subscription_id, active)
    return dict(row) if row else None


async def delete_subscription(conn: asyncpg.Connection, tenant: str, subscription_id: uuid.UUID) -> bool:
    """The subscription and its deliveries (ON DELETE CASCADE)."""
    return await conn.fetchval("DELETE FROM webhook_subscriptions WHERE tenant = $1 AND id = $2 RETURNING true",
                               tenant, subscription_id) is not None


async def subscription_outcome(conn: asyncpg.Connection, subscription_id: uuid.UUID, error: str | None,
                               pause_after: int) -> bool:
    """Count an attempt's failure in a row (a success resets it); True when this one paused it."""
    return bool(await conn.fetchval(
        """UPDATE webhook_subscriptions s SET
               consecutive_failures = CASE WHEN $2::text IS NULL THEN 0 ELSE s.consecutive_failures + 1 END,
               active = s.active AND NOT o.pausing,
               paused_at = CASE WHEN o.pausing THEN now() ELSE s.paused_at END,
               paused_reason = CASE WHEN o.pausing
                                    THEN format('paused after %s failed attempts in a row (last: %s)', $3, $2)
                                    ELSE s.paused_reason END
           FROM (SELECT active AND $2::text IS NOT NULL AND consecutive_failures + 1 >= $3 AS pausing
                 FROM webhook_subscriptions WHERE id = $1) o
           WHERE s.id = $1 RETURNING o.pausing""",
        subscription_id, error, pause_after))


async def subscribed_tenants(conn: asyncpg.Connection, tenants: set[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT tenant FROM webhook_subscriptions WHERE active AND tenant = ANY($1::text[])", list(tenants))
    return {r["tenant"] for r in rows}


async def enqueue_deliveries(conn: asyncpg.Connection, payloads: list[tuple[str, str, dict[str, Any]]]) -> None:
    """One delivery per (tenant, event type, payload) and subscription of that tenant to that type."""
    if payloads:
        await conn.execute(
            """INSERT INTO webhook_deliveries (id, tenant, subscription_id, event_type, payload)
               SELECT gen_random_uuid(), p.tenant, s.id, p.event_type, p.payload::jsonb
               FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS p(tenant, event_type, payload, n)
               JOIN webhook_subscriptions s ON s.tenant = p.tenant AND p.event_type = ANY(s.event_types) AND s.active
               ORDER BY p.n, s.created_at""",
            [t for t, _, _ in payloads], [e for _, e, _ in payloads], [json.dumps(p) for _, _, p in payloads])


async def due_deliveries(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT d.id, d.tenant, d.subscription_id, d.event_type, d.payload, d.attempts, d.created_at, s.url, s.secret
           FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.active
           WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED""", limit)


async def delivery_outcome(conn: asyncpg.Connection, delivery_id: uuid.UUID, *, delivered: bool, error: str | None,
                           retry_in_seconds: float | None) -> None:
    """Record one attempt: delivered, retried after ``retry_in_seconds``, or failed (None)."""
    status = "delivered" if delivered else ("pending" if retry_in_seconds is not None else "failed")
    await conn.execute(
        """UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2, last_error = $3,
               delivered_at = CASE WHEN $2 = 'delivered' THEN now() END,
               next_attempt_at = now() + make_interval(secs => coalesce($4, 0))
           WHERE id = $1""", delivery_id, status, error, retry_in_seconds)


async def deliveries(conn: asyncpg.Connection, tenant: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, subscription_id, event_type, payload, status, attempts, last_error, delivered_at, created_at
           FROM webhook_deliveries WHERE tenant = $1 ORDER BY created_at DESC LIMIT $2""", tenant, limit)
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def replay_delivery(conn: asyncpg.Connection, tenant: str, delivery_id: uuid.UUID) -> bool:
    status = await conn.fetchval(
        """UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
           WHERE tenant = $1 AND id = $2 RETURNING status""", tenant, delivery_id)
    return status is not None


# --- gauges -------------------------------------------------------------------------------------------


async def gauge_figures(conn: asyncpg.Connection, tenants_limit: int, subsidiaries_limit: int,
                        kpis: Sequence[str]) -> list[asyncpg.Record]:
    """All-time ``kpis`` of the tenants with the most shares and of their subsidiaries with the
    most shares (bounded label sets); a tenant or subsidiary with no share yet (enrolments only)
    comes after those with shares, not never."""
    return await conn.fetch(
        """WITH top_tenants AS (
               SELECT tenant FROM rollups WHERE scope_type = 'tenant' AND time_window = 'all'
               GROUP BY tenant ORDER BY coalesce(max(value) FILTER (WHERE kpi = 'shares'), 0) DESC, tenant LIMIT $1),
           subsidiaries AS (
               SELECT r.tenant, r.scope_id, row_number() OVER (
                          PARTITION BY r.tenant
                          ORDER BY coalesce(max(r.value) FILTER (WHERE r.kpi = 'shares'), 0) DESC, r.scope_id) AS n
               FROM rollups r JOIN top_tenants USING (tenant)
               WHERE r.scope_type = 'subsidiary' AND r.time_window = 'all'
               GROUP BY r.tenant, r.scope_id),
           scopes AS (
               SELECT tenant, 'tenant' AS scope_type, tenant AS scope_id FROM top_tenants
               UNION ALL
               SELECT tenant, 'subsidiary', scope_id FROM subsidiaries WHERE n <= $2)
           SELECT s.tenant, s.scope_type, s.scope_id, r.kpi, r.value FROM scopes s
           JOIN rollups r ON r.tenant = s.tenant AND r.scope_type = s.scope_type AND r.scope_id = s.scope_id
                         AND r.time_window = 'all' AND r.kpi = ANY($3::text[])""",
        tenants_limit, subsidiaries_limit, list(kpis))
