"""All of the distribution service's SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.distribution import domain, scim
from shared.events import ContentPublished, EmployeeDeparted, EmployeeUpserted

# --- employees ---------------------------------------------------------------------------------

async def upsert_employee(conn: asyncpg.Connection, tenant: str, data: EmployeeUpserted) -> bool:
    """Apply an HR record if its version is newer than ours; return whether it was applied.
    The version test sits in the statement itself so that it holds under any concurrency."""
    applied = await conn.fetchval(
        """INSERT INTO employees AS e (tenant, employee_id, email, given_name, family_name, subsidiary,
                department, site, country, language, manager_id, departed, version, effective_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12, $13)
           ON CONFLICT (tenant, employee_id) DO UPDATE SET
                email = EXCLUDED.email, given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
                subsidiary = EXCLUDED.subsidiary, department = EXCLUDED.department, site = EXCLUDED.site,
                country = EXCLUDED.country, language = EXCLUDED.language, manager_id = EXCLUDED.manager_id,
                departed = false, version = EXCLUDED.version, effective_at = EXCLUDED.effective_at,
                updated_at = now()
           WHERE e.version < EXCLUDED.version
           RETURNING true""",
        tenant, data.employee_id, data.email, data.given_name, data.family_name, data.subsidiary,
        data.department, data.site, data.country, data.language, data.manager_id, data.version,
        data.effective_at)
    return bool(applied)


async def mark_departed(conn: asyncpg.Connection, tenant: str, data: EmployeeDeparted) -> bool:
    """Record a departure if its version is newer than ours; return whether it was applied."""
    applied = await conn.fetchval(
        """INSERT INTO employees AS e (tenant, employee_id, departed, version, effective_at)
           VALUES ($1, $2, true, $3, $4)
           ON CONFLICT (tenant, employee_id) DO UPDATE SET
                departed = true, version = EXCLUDED.version, effective_at = EXCLUDED.effective_at,
                updated_at = now()
           WHERE e.version < EXCLUDED.version
           RETURNING true""",
        tenant, data.employee_id, data.version, data.effective_at)
    return bool(applied)


async def employee_for_update(conn: asyncpg.Connection, tenant: str, employee_id: str) -> asyncpg.Record | None:
    """Locked: a departure processed meanwhile waits for the enrolment, then withdraws it."""
    return await conn.fetchrow(
        """SELECT employee_id, subsidiary, department, site, country, language, departed, version, effective_at
           FROM employees WHERE tenant = $1 AND employee_id = $2 FOR UPDATE""", tenant, employee_id)


# --- ambassadors -------------------------------------------------------------------------------

AMBASSADOR = ("ambassador_id, consent_text_version, consent_channel, consented_at, consent_expires_at, "
              "network_audience, enrolled_at, holder, lapsed_at")


def _ambassador(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    row["networks"] = json.loads(row.pop("network_audience"))
    return row


async def active_ambassador(conn: asyncpg.Connection, tenant: str, employee_id: str, *,
                            for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _ambassador(await conn.fetchrow(
        f"""SELECT {AMBASSADOR} FROM ambassadors
            WHERE tenant = $1 AND employee_id = $2 AND withdrawn_at IS NULL{lock}""", tenant, employee_id))


async def insert_ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, employee_id: str,
                            consent: dict[str, Any], networks: dict[str, int],
                            holder: str | None) -> dict[str, Any] | None:
    """The new ambassador, or None when the employee is enrolled already."""
    return _ambassador(await conn.fetchrow(
        f"""INSERT INTO ambassadors (tenant, ambassador_id, employee_id, consent_text_version, consent_channel,
                consented_at, consent_expires_at, network_audience, enrolled_at, holder)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6, $9)
            ON CONFLICT (tenant, employee_id) WHERE withdrawn_at IS NULL DO NOTHING
            RETURNING {AMBASSADOR}""",
        tenant, ambassador_id, employee_id, consent["text_version"], consent["channel"], consent["at"],
        consent["expires_at"], json.dumps(networks), holder))


async def renew_consent(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID,
                        consent: dict[str, Any]) -> dict[str, Any]:
    row = _ambassador(await conn.fetchrow(
        f"""UPDATE ambassadors SET consent_text_version = $3, consent_channel = $4, consented_at = $5,
                consent_expires_at = $6, lapsed_at = NULL
            WHERE tenant = $1 AND ambassador_id = $2 RETURNING {AMBASSADOR}""",
        tenant, ambassador_id, consent["text_version"], consent["channel"], consent["at"], consent["expires_at"]))
    assert row is not None
    return row


async def record_consent(conn: asyncpg.Connection, tenant: str, consent_id: UUID, employee_id: str,
                         ambassador_id: UUID, action: str, consent: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO consents (tenant, consent_id, employee_id, ambassador_id, action, text_version, channel, at,
                expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        tenant, consent_id, employee_id, ambassador_id, action, consent["text_version"], consent["channel"],
        consent["at"], consent.get("expires_at"))


async def consent_history(conn: asyncpg.Connection, tenant: str, employee_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT action, text_version, channel, at, expires_at FROM consents
           WHERE tenant = $1 AND employee_id = $2 ORDER BY at, action""", tenant, employee_id)


async def withdraw_ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, reason: str,
                              at: datetime) -> None:
    await conn.execute(
        """UPDATE ambassadors SET withdrawn_at = $4, withdrawal_reason = $3
           WHERE tenant = $1 AND ambassador_id = $2 AND withdrawn_at IS NULL""", tenant, ambassador_id, reason, at)


async def set_networks(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, networks: dict[str, int]) -> None:
    await conn.execute("UPDATE ambassadors SET network_audience = $3 WHERE tenant = $1 AND ambassador_id = $2",
                       tenant, ambassador_id, json.dumps(networks))


async def lapsed_consents(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Active ambassadors whose consent has lapsed and whose lapse is not recorded yet, any
    tenant (not locked: lock the employee, then the ambassador, and look again)."""
    return await conn.fetch(
        """SELECT tenant, employee_id FROM ambassadors
           WHERE withdrawn_at IS NULL AND consent_expires_at <= now() AND lapsed_at IS NULL
           ORDER BY tenant, employee_id LIMIT $1""", limit)


async def record_lapse(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, at: datetime) -> None:
    await conn.execute("UPDATE ambassadors SET lapsed_at = $3 WHERE tenant = $1 AND ambassador_id = $2",
                       tenant, ambassador_id, at)


# --- consent texts -------------------------------------------------------------------------------

async def current_consent_text(conn: asyncpg.Connection, tenant: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT version, text, reconsent_within_days, published_at FROM consent_texts
           WHERE tenant = $1 ORDER BY published_at DESC LIMIT 1""", tenant)


async def insert_consent_text(conn: asyncpg.Connection, tenant: str, version: str, text: str,
                              reconsent_within_days: float) -> asyncpg.Record | None:
    """The new text, or None when this version exists already."""
    return await conn.fetchrow(
        """INSERT INTO consent_texts (tenant, version, text, reconsent_within_days) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING RETURNING version, text, reconsent_within_days, published_at""",
        tenant, version, text, reconsent_within_days)


async def consent_text(conn: asyncpg.Connection, tenant: str, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT version, text, reconsent_within_days, published_at FROM consent_texts "
        "WHERE tenant = $1 AND version = $2",
        tenant, version)


async def shorten_consents(conn: asyncpg.Connection, tenant: str, current_version: str, deadline: datetime) -> int:
    """Consents to an older text lapse at the deadline (or earlier, if they expire before)."""
    status = await conn.execute(
        """UPDATE ambassadors SET consent_expires_at = least(consent_expires_at, $3)
           WHERE tenant = $1 AND withdrawn_at IS NULL AND consent_text_version <> $2""",
        tenant, current_version, deadline)
    return int(status.split()[-1])


# --- preferences ---------------------------------------------------------------------------------

PREFERENCES = ("channels, languages, topics, max_per_day, quiet_start, quiet_end, time_zone, named_in_leaderboards, "
               "updated_at")


async def preferences(conn: asyncpg.Connection, tenant: str, employee_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PREFERENCES} FROM preferences WHERE tenant = $1 AND employee_id = $2", tenant, employee_id)


async def put_preferences(conn: asyncpg.Connection, tenant: str, employee_id: str, p: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO preferences AS p (tenant, employee_id, channels, languages, topics, max_per_day, quiet_start,
                quiet_end, time_zone, named_in_leaderboards) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (tenant, employee_id) DO UPDATE SET channels = EXCLUDED.channels,
                languages = EXCLUDED.languages, topics = EXCLUDED.topics, max_per_day = EXCLUDED.max_per_day,
                quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end, time_zone = EXCLUDED.time_zone,
                named_in_leaderboards = EXCLUDED.named_in_leaderboards, updated_at = now()
            RETURNING {PREFERENCES}""",
        tenant, employee_id, p["channels"], p["languages"], [t.lower() for t in p["topics"]], p["max_per_day"],
        p["quiet_start"], p["quiet_end"], p["time_zone"], p["named_in_leaderboards"])


async def display_name(conn: asyncpg.Connection, tenant: str, employee_id: str) -> str | None:
    """Given and family name as HR or SCIM gave them; None when unknown or erased."""
    name = await conn.fetchval(
        """SELECT nullif(btrim(concat_ws(' ', given_name, family_name)), '') FROM employees
            WHERE tenant = $1 AND employee_id = $2""", tenant, employee_id)
    return str(name) if name else None


async def named_in_leaderboards(conn: asyncpg.Connection, tenant: str, employee_id: str) -> bool:
    """Whether the employee opted in to being named in leaderboards and digests (no preferences: no)."""
    return bool(await conn.fetchval(
        "SELECT named_in_leaderboards FROM preferences WHERE tenant = $1 AND employee_id = $2", tenant, employee_id))


async def audience_page(conn: asyncpg.Connection, tenant: str, content_id: str, after: UUID, last: UUID,
                        limit: int, with_groups: bool) -> list[asyncpg.Record]:
    """One page (keyset, by ambassador id, within ``(after, last]``) of the enrolled, current
    ambassadors whose consent is in force and who were not yet notified of the content, with
    their HR placement, groups and preferences. Their groups only ``with_groups`` (an audience
    naming none needs them not).

    The page's ambassadors are locked (no-key update, in id order) until the page's transaction
    commits. An opt-out (which locks its ambassador for update) waits for the page's notifications
    to be durable and then cancels them, or, if it committed first, its ambassador is skipped
    here. And it is the lock of their fatigue budget (see :func:`lock_alert_budget`): a page of
    another content, or a delivery worker, deciding for the same ambassadors waits for this page
    to commit, then sees the slots it took (read them with :func:`alert_budget_used` after this
    statement: a statement's snapshot predates the lock waits)."""
    return await conn.fetch(
        """SELECT a.ambassador_id, e.subsidiary, e.department, e.site, e.country, e.language,
                  CASE WHEN $6 THEN coalesce((SELECT array_agg(g.name) FROM group_members m
                                              JOIN groups g ON g.tenant = m.tenant AND g.group_id = m.group_id
                                              WHERE m.tenant = a.tenant AND m.employee_id = a.employee_id), '{}')
                       ELSE '{}' END AS groups,
                  coalesce(p.languages, '{}') AS languages, coalesce(p.topics, '{}') AS topics,
                  coalesce(p.channels, '{}') AS channels, p.max_per_day, p.quiet_start, p.quiet_end,
                  coalesce(p.time_zone, 'UTC') AS time_zone
           FROM ambassadors a
           JOIN employees e ON e.tenant = a.tenant AND e.employee_id = a.employee_id
           LEFT JOIN preferences p ON p.tenant = a.tenant AND p.employee_id = a.employee_id
           WHERE a.tenant = $1 AND a.withdrawn_at IS NULL AND NOT e.departed AND a.consent_expires_at > now()
             AND a.ambassador_id > $3 AND a.ambassador_id <= $4
             AND NOT EXISTS (SELECT 1 FROM notifications n
                             WHERE n.tenant = a.tenant AND n.content_id = $2 AND n.ambassador_id = a.ambassador_id)
           ORDER BY a.ambassador_id
           LIMIT $5
           FOR NO KEY UPDATE OF a""", tenant, content_id, after, last, limit, with_groups)


# --- the fatigue budget ----------------------------------------------------------------------------

async def lock_alert_budget(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID) -> None:
    """Lock the ambassador's fatigue budget until the transaction ends (his row, no-key update:
    what the fan-out's pages take too). Whoever decides whether an alert may go takes this lock
    first, then reads :func:`alert_budget_used` and takes a slot in the same transaction: two
    deciders, in any processes, see each other's slots and never both take the last one."""
    await conn.execute("SELECT 1 FROM ambassadors WHERE tenant = $1 AND ambassador_id = $2 FOR NO KEY UPDATE",
                       tenant, ambassador_id)


async def alert_budget_used(conn: asyncpg.Connection, tenant: str,
                            ambassador_ids: Sequence[UUID]) -> dict[UUID, list[datetime]]:
    """The slots of these ambassadors' fatigue budget taken in the last 7 days: when each alert
    let through was let through (sent, or waiting to be sent). Read under their lock."""
    rows = await conn.fetch(
        """SELECT ambassador_id, array_agg(budget_at) AS used FROM notifications
           WHERE tenant = $1 AND ambassador_id = ANY($2::uuid[]) AND budget_at > now() - interval '7 days'
             AND status IN ('pending', 'deferred', 'sent')
           GROUP BY ambassador_id""", tenant, ambassador_ids)
    return {row["ambassador_id"]: list(row["used"]) for row in rows}


async def take_alert_budget(conn: asyncpg.Connection, tenant: str, notification_id: UUID, at: datetime) -> bool:
    """The alert takes a slot of its ambassador's budget (under his lock); False if it is no
    longer to be sent."""
    return bool(await conn.fetchval(
        """UPDATE notifications SET budget_at = $3
           WHERE tenant = $1 AND notification_id = $2 AND status IN ('pending', 'deferred') RETURNING true""",
        tenant, notification_id, at))


# --- fan-out jobs ----------------------------------------------------------------------------------

def slice_bounds(slices: int) -> list[tuple[int, UUID, UUID]]:
    """(slice, after, last): the UUID space cut into ``slices`` even ranges by its leading bits."""
    span = 2 ** 128 // slices
    bounds = []
    for n in range(slices):
        first = n * span
        last = 2 ** 128 - 1 if n == slices - 1 else (n + 1) * span - 1
        # "after" is just below the slice; slice 0 starts after the nil UUID, never an ambassador.
        bounds.append((n, UUID(int=max(first - 1, 0)), UUID(int=last)))
    return bounds


async def start_fanout(conn: asyncpg.Connection, tenant: str, content_id: str, audience: str, tags: list[str],
                       traceparent: str | None, slices: int) -> None:
    """Record a fan-out to do (in the consumer's transaction). A republication starts it over:
    those already notified are skipped by the page query, the newly enrolled are reached."""
    await cancel_fanout(conn, tenant, content_id)
    bounds = slice_bounds(slices)
    await conn.execute(
        """INSERT INTO fanout_slices (tenant, content_id, slice, after_id, last_id, audience, tags, traceparent)
           SELECT $1, $2, s, a, l, $6::jsonb, $7, $8
           FROM unnest($3::smallint[], $4::uuid[], $5::uuid[]) AS t(s, a, l)""",
        tenant, content_id, [b[0] for b in bounds], [b[1] for b in bounds], [b[2] for b in bounds], audience, tags,
        traceparent)


async def cancel_fanout(conn: asyncpg.Connection, tenant: str, content_id: str) -> int:
    """Drop what is left of a content's fan-out; waits for a page being written to commit (its
    slice is locked), so that what that page notified is visible to the caller's next statements."""
    status = await conn.execute("DELETE FROM fanout_slices WHERE tenant = $1 AND content_id = $2", tenant, content_id)
    return int(status.split()[-1])


async def claim_fanout_slice(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The oldest due slice with work left that nobody else is expanding (locked until the
    caller's transaction ends), with the content as it is now (an update since the publication
    shows)."""
    return await conn.fetchrow(
        """SELECT s.tenant, s.content_id, s.slice, s.after_id, s.last_id, s.audience, s.tags, s.traceparent,
                  s.attempts, c.url, c.language, c.campaign, c.share_texts, c.retired_at IS NOT NULL AS retired
           FROM fanout_slices s
           JOIN contents c ON c.tenant = s.tenant AND c.content_id = s.content_id
           WHERE s.retry_at <= now()
           ORDER BY s.created_at, s.slice
           LIMIT 1
           FOR UPDATE OF s SKIP LOCKED""")


async def postpone_fanout_slice(conn: asyncpg.Connection, tenant: str, content_id: str, slice: int,
                                delay_seconds: float, error: str) -> None:
    await conn.execute(
        """UPDATE fanout_slices SET attempts = attempts + 1, retry_at = now() + make_interval(secs => $4),
                last_error = $5
           WHERE tenant = $1 AND content_id = $2 AND slice = $3""", tenant, content_id, slice, delay_seconds,
        error[:2000])


async def wake_fanout_workers(conn: asyncpg.Connection, channel_prefix: str) -> None:
    """Wake the fan-out workers listening on this schema's channel (when the transaction commits)."""
    await conn.execute("SELECT pg_notify($1 || current_schema(), '')", channel_prefix)


async def current_schema(conn: asyncpg.Connection) -> str:
    return await conn.fetchval("SELECT current_schema()")


async def advance_fanout(conn: asyncpg.Connection, tenant: str, content_id: str, slice: int,
                         after: UUID | None) -> None:
    """Move a slice's cursor past the page just written; None: the slice is done."""
    if after is None:
        await conn.execute("DELETE FROM fanout_slices WHERE tenant = $1 AND content_id = $2 AND slice = $3",
                           tenant, content_id, slice)
    else:
        await conn.execute("UPDATE fanout_slices SET after_id = $4 "
                           "WHERE tenant = $1 AND content_id = $2 AND slice = $3",
                           tenant, content_id, slice, after)


# --- contents and notifications ----------------------------------------------------------------

def _url(value: object | None) -> str | None:
    return None if value is None else str(value)


async def save_content(conn: asyncpg.Connection, tenant: str, data: ContentPublished) -> bool:
    """Keep what the feed shows of a content; return whether it is live at this revision (not
    retired, not superseded by a newer revision we already hold)."""
    retired = await conn.fetchval(
        """INSERT INTO contents AS c (tenant, content_id, revision, title, url, language, campaign,
                share_texts, published_at, summary, image_url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (tenant, content_id) DO UPDATE SET
                revision = EXCLUDED.revision, title = EXCLUDED.title, url = EXCLUDED.url,
                language = EXCLUDED.language, campaign = EXCLUDED.campaign, share_texts = EXCLUDED.share_texts,
                published_at = EXCLUDED.published_at, summary = EXCLUDED.summary, image_url = EXCLUDED.image_url
           WHERE c.revision <= EXCLUDED.revision
           RETURNING retired_at IS NOT NULL""",
        tenant, data.content_id, data.revision, data.title, str(data.url), data.language, data.campaign,
        json.dumps([t.model_dump(mode="json") for t in data.share_texts]), data.published_at, data.summary,
        _url(data.image_url))
    return retired is False


NOTIFICATION_COLUMNS = ("tenant", "notification_id", "content_id", "ambassador_id", "channel", "links", "status",
                        "variant", "sent_at", "budget_at")


async def copy_notifications(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY new notifications (rows of :data:`NOTIFICATION_COLUMNS`). The fan-out reads only
    ambassadors not yet notified, one slice per writer: the unique (tenant, content_id,
    ambassador_id) constraint never fires, and if it ever did the page would roll back whole
    and be redone without the duplicates."""
    if rows:
        await conn.copy_records_to_table("notifications", records=rows, columns=NOTIFICATION_COLUMNS)


async def insert_deliveries(conn: asyncpg.Connection, tenant: str,
                            rows: Sequence[tuple[UUID, UUID, UUID, str, str, str, datetime]]) -> None:
    """(delivery_id, notification_id, ambassador_id, content_id, channel, action, due_at) rows."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO deliveries (tenant, delivery_id, notification_id, ambassador_id, content_id, channel, action,
                due_at)
           SELECT $1, d, n, a, c, ch, act, due
           FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
                AS t(d, n, a, c, ch, act, due)""", tenant, *zip(*rows, strict=True))


async def update_content(conn: asyncpg.Connection, tenant: str, data: ContentPublished) -> bool:
    """A newer revision of a content we hold; return whether it was applied (live, newer)."""
    return bool(await conn.fetchval(
        """UPDATE contents SET revision = $3, title = $4, url = $5, language = $6, campaign = $7, share_texts = $8,
                summary = $9, image_url = $10
           WHERE tenant = $1 AND content_id = $2 AND revision < $3 AND retired_at IS NULL RETURNING true""",
        tenant, data.content_id, data.revision, data.title, str(data.url), data.language, data.campaign,
        json.dumps([t.model_dump(mode="json") for t in data.share_texts]), data.summary, _url(data.image_url)))


async def follow_up_sent_messages(conn: asyncpg.Connection, tenant: str, content_id: str, action: str,
                                  channels: Sequence[str]) -> int:
    """Schedule an edit or a retraction of every chat message already sent about a content, on
    the channels that allow it; return how many."""
    status = await conn.execute(
        """INSERT INTO deliveries (tenant, delivery_id, notification_id, ambassador_id, content_id, channel, action,
                due_at)
           SELECT tenant, gen_random_uuid(), notification_id, ambassador_id, content_id, channel, $3, now()
           FROM notifications
           WHERE tenant = $1 AND content_id = $2 AND status = 'sent' AND channel = ANY($4)
             AND external_ref IS NOT NULL""",
        tenant, content_id, action, list(channels))
    return int(status.split()[-1])


async def cancel_content_notifications(conn: asyncpg.Connection, tenant: str, content_id: str,
                                       at: datetime) -> list[asyncpg.Record]:
    """Cancel what is still to be sent about a content (deferred or pending alerts, and any
    pending edit); return the cancelled notifications."""
    await conn.execute(
        """UPDATE deliveries SET status = 'cancelled', done_at = $3, lease_until = NULL
           WHERE tenant = $1 AND content_id = $2 AND status = 'pending'""", tenant, content_id, at)
    return await conn.fetch(
        """UPDATE notifications n SET status = 'cancelled', cancelled_at = $3
           FROM contents c, ambassadors a, employees e
           WHERE n.tenant = $1 AND n.content_id = $2 AND n.status IN ('pending', 'deferred')
             AND c.tenant = n.tenant AND c.content_id = n.content_id
             AND a.tenant = n.tenant AND a.ambassador_id = n.ambassador_id
             AND e.tenant = a.tenant AND e.employee_id = a.employee_id
           RETURNING n.notification_id, n.ambassador_id, n.channel, n.links, c.campaign, e.subsidiary, e.department""",
        tenant, content_id, at)


async def retire_content(conn: asyncpg.Connection, tenant: str, content_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE contents SET retired_at = $3 WHERE tenant = $1 AND content_id = $2 AND retired_at IS NULL",
        tenant, content_id, at)
    await conn.execute(
        "UPDATE notifications SET retired_at = $3 WHERE tenant = $1 AND content_id = $2 AND retired_at IS NULL",
        tenant, content_id, at)


async def feed(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, limit: int) -> list[dict[str, Any]]:
    """The ambassador's live notifications, newest first, with what the feed shows of each content."""
    rows = await conn.fetch(
        """SELECT n.notification_id, n.content_id, n.links, n.sent_at, n.variant, c.title, c.url, c.language,
                  c.share_texts, c.summary, c.image_url, e.language AS reader_language
           FROM notifications n
           JOIN contents c ON c.tenant = n.tenant AND c.content_id = n.content_id
           JOIN ambassadors a ON a.tenant = n.tenant AND a.ambassador_id = n.ambassador_id
           JOIN employees e ON e.tenant = a.tenant AND e.employee_id = a.employee_id
           WHERE n.tenant = $1 AND n.ambassador_id = $2 AND n.retired_at IS NULL AND n.cancelled_at IS NULL
             AND n.status = 'sent'
           ORDER BY n.sent_at DESC, n.notification_id
           LIMIT $3""", tenant, ambassador_id, limit)
    return [{**dict(r), "links": json.loads(r["links"]), "share_texts": json.loads(r["share_texts"])} for r in rows]


async def cancel_notifications(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID,
                               at: datetime, *, unsent_only: bool = False) -> list[asyncpg.Record]:
    """Cancel what is still to be sent to the ambassador and (unless ``unsent_only``: his feed
    stays for when he comes back) take his live notifications out of his feed; return them (to
    tell others)."""
    await conn.execute(
        """UPDATE deliveries SET status = 'cancelled', done_at = $3, lease_until = NULL
           WHERE tenant = $1 AND ambassador_id = $2 AND status = 'pending'""", tenant, ambassador_id, at)
    return await conn.fetch(
        """UPDATE notifications n SET cancelled_at = $3,
                status = CASE WHEN n.status IN ('pending', 'deferred') THEN 'cancelled' ELSE n.status END
           FROM contents c
           WHERE n.tenant = $1 AND n.ambassador_id = $2 AND n.retired_at IS NULL AND n.cancelled_at IS NULL
             AND (NOT $4 OR n.status IN ('pending', 'deferred'))
             AND c.tenant = n.tenant AND c.content_id = n.content_id
           RETURNING n.notification_id, n.content_id, n.channel, c.campaign""", tenant, ambassador_id, at,
        unsent_only)


# --- history and headcount ----------------------------------------------------------------------

async def record_history(conn: asyncpg.Connection, tenant: str, employee_id: str, version: int,
                         effective_at: datetime, placement: tuple[str, str, str] | None) -> None:
    """Every version, whatever its arrival order; ``placement`` None records a departure."""
    subsidiary, department, site = placement or ("", "", "")
    await conn.execute(
        """INSERT INTO employee_history (tenant, employee_id, version, effective_at, subsidiary, department, site,
                departed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        tenant, employee_id, version, effective_at, subsidiary, department, site, placement is None)


async def headcount(conn: asyncpg.Connection, tenant: str, at: datetime,
                    subsidiaries: list[str] | None) -> asyncpg.Record:
    """Employees in place at ``at`` (each one's latest HR version effective by then) and, of
    them, those enrolled at that instant; within ``subsidiaries`` when given."""
    return await conn.fetchrow(
        """WITH placed AS (
               SELECT DISTINCT ON (employee_id) employee_id, subsidiary, departed
               FROM employee_history WHERE tenant = $1 AND effective_at <= $2
               ORDER BY employee_id, effective_at DESC, version DESC)
           SELECT count(*) AS headcount,
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM ambassadors a WHERE a.tenant = $1 AND a.employee_id = placed.employee_id
                        AND a.enrolled_at <= $2 AND (a.withdrawn_at IS NULL OR a.withdrawn_at > $2))) AS enrolled
           FROM placed WHERE NOT departed AND ($3::text[] IS NULL OR subsidiary = ANY($3))""",
        tenant, at, subsidiaries)


# --- the org tree --------------------------------------------------------------------------------

async def subsidiary_status(conn: asyncpg.Connection, tenant: str, code: str) -> tuple[bool, bool]:
    """(the tenant has an org tree, ``code`` is in it)."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM subsidiaries WHERE tenant = $1) AS configured,
                  EXISTS (SELECT 1 FROM subsidiaries WHERE tenant = $1 AND code = $2) AS known""", tenant, code)
    return row["configured"], row["known"]


async def put_subsidiary(conn: asyncpg.Connection, tenant: str, code: str, name: str,
                         parent: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO subsidiaries (tenant, code, name, parent) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name, parent = EXCLUDED.parent
           RETURNING code, name, parent""", tenant, code, name, parent)


async def subsidiaries(conn: asyncpg.Connection, tenant: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT code, name, parent FROM subsidiaries WHERE tenant = $1 ORDER BY code", tenant)


PEOPLE_FILTER = """FROM employees e
           LEFT JOIN ambassadors a ON a.tenant = e.tenant AND a.employee_id = e.employee_id AND a.withdrawn_at IS NULL
           WHERE e.tenant = $1 AND ($2::text[] IS NULL OR e.subsidiary = ANY($2))
             AND ($3 = '' OR e.employee_id ILIKE $3 OR e.email ILIKE $3 OR e.given_name ILIKE $3
                  OR e.family_name ILIKE $3 OR (e.given_name || ' ' || e.family_name) ILIKE $3)"""


def _like(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if query else ""


async def people(conn: asyncpg.Connection, tenant: str, units: list[str] | None, query: str, limit: int,
                 offset: int) -> list[asyncpg.Record]:
    """A page of the directory, by name, with each person's active enrolment (if any) and the
    total matching."""
    return await conn.fetch(
        f"""SELECT e.employee_id, e.given_name, e.family_name, e.email, e.subsidiary, e.department, e.site,
                  e.country, e.language, e.departed, a.ambassador_id IS NOT NULL AS enrolled, a.enrolled_at,
                  a.consent_text_version, a.consent_expires_at, count(*) OVER () AS total
           {PEOPLE_FILTER}
           ORDER BY e.family_name NULLS LAST, e.given_name NULLS LAST, e.employee_id
           LIMIT $4 OFFSET $5""", tenant, units, _like(query), limit, offset)


async def count_people(conn: asyncpg.Connection, tenant: str, units: list[str] | None, query: str) -> int:
    return await conn.fetchval(f"SELECT count(*) {PEOPLE_FILTER}", tenant, units, _like(query))


async def subtree(conn: asyncpg.Connection, tenant: str, code: str) -> list[str]:
    """``code`` and every org unit below it in the tenant's tree."""
    rows = await conn.fetch(
        """WITH RECURSIVE tree(code) AS (
               SELECT $2::text
               UNION SELECT s.code FROM subsidiaries s JOIN tree t ON s.parent = t.code WHERE s.tenant = $1)
           SELECT code FROM tree""", tenant, code)
    return [r["code"] for r in rows]



async def org_facets(conn: asyncpg.Connection, tenant: str, units: list[str] | None) -> list[asyncpg.Record]:
    """The current employees (within ``units`` when given) counted per subsidiary, site, country
    and language, each with how many of them are enrolled ambassadors with a consent in force."""
    return await conn.fetch(
        """WITH people AS (
               SELECT e.subsidiary, e.site, e.country, e.language,
                      EXISTS (SELECT 1 FROM ambassadors a WHERE a.tenant = e.tenant AND a.employee_id = e.employee_id
                                AND a.withdrawn_at IS NULL AND a.consent_expires_at > now()) AS enrolled
               FROM employees e
               WHERE e.tenant = $1 AND NOT e.departed AND e.erased_at IS NULL
                 AND ($2::text[] IS NULL OR e.subsidiary = ANY($2)))
           SELECT CASE WHEN GROUPING(subsidiary) = 0 THEN 'subsidiaries' WHEN GROUPING(site) = 0 THEN 'sites'
                       WHEN GROUPING(country) = 0 THEN 'countries' ELSE 'languages' END AS facet,
                  coalesce(subsidiary, site, country, language) AS value,
                  count(*) AS headcount, count(*) FILTER (WHERE enrolled) AS ambassadors
           FROM people GROUP BY GROUPING SETS ((subsidiary), (site), (country), (language))
           ORDER BY facet, value""", tenant, units)


async def group_headcounts(conn: asyncpg.Connection, tenant: str, units: list[str] | None) -> list[asyncpg.Record]:
    """Each ambassador group with its current members (within ``units`` when given)."""
    return await conn.fetch(
        """SELECT g.name, count(e.employee_id) AS headcount
           FROM groups g
           LEFT JOIN group_members m ON m.tenant = g.tenant AND m.group_id = g.group_id
           LEFT JOIN employees e ON e.tenant = m.tenant AND e.employee_id = m.employee_id AND NOT e.departed
                                AND e.erased_at IS NULL AND ($2::text[] IS NULL OR e.subsidiary = ANY($2))
           WHERE g.tenant = $1 GROUP BY g.name ORDER BY g.name""", tenant, units)

# --- erasure -------------------------------------------------------------------------------------

async def tombstone_version(conn: asyncpg.Connection, tenant: str, tombstone: str) -> int | None:
    return await conn.fetchval(
        "SELECT version FROM employees WHERE tenant = $1 AND employee_id = $2 AND erased_at IS NOT NULL",
        tenant, tombstone)


async def departed_past_retention(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT tenant, employee_id FROM employees
           WHERE departed AND erased_at IS NULL AND effective_at < $1
           ORDER BY effective_at LIMIT $2 FOR UPDATE SKIP LOCKED""", cutoff, limit)


async def erase_employee(conn: asyncpg.Connection, tenant: str, employee_id: str, tombstone: str,
                         reason: str) -> bool:
    """Replace the HR id by the tombstone everywhere and drop the personal data; return whether
    there was anything to erase. Pseudonymous ambassador ids and org units stay (aggregates)."""
    previous = await conn.fetchval(
        "DELETE FROM employees WHERE tenant = $1 AND employee_id = $2 RETURNING version", tenant, tombstone)
    erased = await conn.fetchval(
        """UPDATE employees SET employee_id = $3, email = NULL, given_name = NULL, family_name = NULL,
                manager_id = NULL, erased_at = now(), version = greatest(version, coalesce($4::bigint, 0)),
                updated_at = now()
           WHERE tenant = $1 AND employee_id = $2 RETURNING true""", tenant, employee_id, tombstone, previous)
    if not erased:
        return False
    for table in ("employee_history", "ambassadors", "consents"):
        await conn.execute(f"UPDATE {table} SET employee_id = $3 WHERE tenant = $1 AND employee_id = $2",
                           tenant, employee_id, tombstone)
    for table in ("preferences", "group_members", "scim_users", "scim_versions"):
        await conn.execute(f"DELETE FROM {table} WHERE tenant = $1 AND employee_id = $2", tenant, employee_id)
    await conn.execute("UPDATE employees SET manager_id = $3 WHERE tenant = $1 AND manager_id = $2",
                       tenant, employee_id, tombstone)
    await conn.execute("INSERT INTO erasures (tenant, tombstone_id, reason) VALUES ($1, $2, $3)",
                       tenant, tombstone, reason)
    return True


# --- groups --------------------------------------------------------------------------------------

GROUP = "group_id, name, external_id, version, created_at, updated_at"


async def insert_group(conn: asyncpg.Connection, tenant: str, group_id: UUID, name: str,
                       external_id: str | None) -> asyncpg.Record | None:
    """The new group, or None when the tenant has a group of that name."""
    return await conn.fetchrow(
        f"""INSERT INTO groups (tenant, group_id, name, external_id) VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING RETURNING {GROUP}""", tenant, group_id, name, external_id)


async def group(conn: asyncpg.Connection, tenant: str, group_id: UUID, *, for_update: bool = False,
                ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {GROUP} FROM groups WHERE tenant = $1 AND group_id = $2{lock}",
                               tenant, group_id)


async def group_by_name(conn: asyncpg.Connection, tenant: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {GROUP} FROM groups WHERE tenant = $1 AND name = $2", tenant, name)


async def update_group(conn: asyncpg.Connection, tenant: str, group_id: UUID, name: str,
                       external_id: str | None) -> asyncpg.Record | None:
    """The updated group (version + 1), or None when another group has that name."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(
                f"""UPDATE groups SET name = $3, external_id = $4, version = version + 1, updated_at = now()
                    WHERE tenant = $1 AND group_id = $2 RETURNING {GROUP}""", tenant, group_id, name, external_id)
    except asyncpg.UniqueViolationError:
        return None


async def delete_group(conn: asyncpg.Connection, tenant: str, group_id: UUID) -> list[str]:
    """Delete the group; return its members' HR ids."""
    members = await group_member_ids(conn, tenant, group_id)
    await conn.execute("DELETE FROM groups WHERE tenant = $1 AND group_id = $2", tenant, group_id)
    return members


async def group_member_ids(conn: asyncpg.Connection, tenant: str, group_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT employee_id FROM group_members WHERE tenant = $1 AND group_id = $2 ORDER BY employee_id",
        tenant, group_id)
    return [r["employee_id"] for r in rows]


async def set_group_members(conn: asyncpg.Connection, tenant: str, group_id: UUID, employee_ids: list[str]) -> None:
    await conn.execute("DELETE FROM group_members WHERE tenant = $1 AND group_id = $2 AND NOT employee_id = ANY($3)",
                       tenant, group_id, employee_ids)
    await conn.execute(
        """INSERT INTO group_members (tenant, group_id, employee_id) SELECT $1, $2, unnest($3::text[])
           ON CONFLICT DO NOTHING""", tenant, group_id, employee_ids)


async def groups_of(conn: asyncpg.Connection, tenant: str, employee_id: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT g.name FROM group_members m JOIN groups g ON g.tenant = m.tenant AND g.group_id = m.group_id
           WHERE m.tenant = $1 AND m.employee_id = $2 ORDER BY g.name""", tenant, employee_id)
    return [r["name"] for r in rows]


async def known_employees(conn: asyncpg.Connection, tenant: str, employee_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT employee_id FROM employees WHERE tenant = $1 AND employee_id = ANY($2) AND erased_at IS NULL",
        tenant, employee_ids)
    return {r["employee_id"] for r in rows}


async def list_groups(conn: asyncpg.Connection, tenant: str, where: domain.Filter | None, offset: int,
                      limit: int) -> tuple[int, list[asyncpg.Record]]:
    params: list[Any] = [tenant]
    condition = _compile(where, _group_operand, params) if where else "true"
    total = await conn.fetchval(f"SELECT count(*) FROM groups g WHERE g.tenant = $1 AND ({condition})", *params)
    rows = await conn.fetch(
        f"""SELECT {GROUP} FROM groups g WHERE g.tenant = $1 AND ({condition})
            ORDER BY g.created_at, g.group_id OFFSET {offset} LIMIT {limit}""", *params)
    return total, rows


# --- SCIM users ---------------------------------------------------------------------------------

SCIM_USER = "id, employee_id, user_name, resource, version, created_at, updated_at"


def _scim_user(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    row["resource"] = json.loads(row["resource"])
    return row


async def insert_scim_user(conn: asyncpg.Connection, tenant: str, user_id: UUID, employee_id: str,
                           resource: dict[str, Any]) -> dict[str, Any] | None:
    """The new user, or None when its userName or HR id is taken in the tenant."""
    return _scim_user(await conn.fetchrow(
        f"""INSERT INTO scim_users (tenant, id, employee_id, user_name, resource) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT DO NOTHING RETURNING {SCIM_USER}""",
        tenant, user_id, employee_id, resource["userName"], json.dumps(resource)))


async def scim_user(conn: asyncpg.Connection, tenant: str, user_id: UUID, *,
                    for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _scim_user(await conn.fetchrow(
        f"SELECT {SCIM_USER} FROM scim_users WHERE tenant = $1 AND id = $2{lock}", tenant, user_id))


async def replace_scim_user(conn: asyncpg.Connection, tenant: str, user_id: UUID,
                            resource: dict[str, Any]) -> dict[str, Any] | None:
    """The replaced user (version + 1), or None when the new userName is another user's."""
    try:
        async with conn.transaction():
            return _scim_user(await conn.fetchrow(
                f"""UPDATE scim_users SET resource = $3, user_name = $4, version = version + 1, updated_at = now()
                    WHERE tenant = $1 AND id = $2 RETURNING {SCIM_USER}""",
                tenant, user_id, json.dumps(resource), resource["userName"]))
    except asyncpg.UniqueViolationError:
        return None


async def delete_scim_user(conn: asyncpg.Connection, tenant: str, user_id: UUID) -> None:
    await conn.execute("DELETE FROM scim_users WHERE tenant = $1 AND id = $2", tenant, user_id)


async def next_scim_version(conn: asyncpg.Connection, tenant: str, employee_id: str, floor: int) -> int:
    """A version above every one SCIM emitted for this employee, and at least ``floor``."""
    return await conn.fetchval(
        """INSERT INTO scim_versions AS v (tenant, employee_id, version) VALUES ($1, $2, $3)
           ON CONFLICT (tenant, employee_id) DO UPDATE SET version = greatest(v.version + 1, EXCLUDED.version)
           RETURNING version""", tenant, employee_id, floor)


async def scim_users_by_ids(conn: asyncpg.Connection, tenant: str, ids: list[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, employee_id, user_name FROM scim_users WHERE tenant = $1 AND id = ANY($2)",
                            tenant, ids)


async def scim_users_by_employee(conn: asyncpg.Connection, tenant: str,
                                 employee_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, employee_id, user_name FROM scim_users WHERE tenant = $1 AND employee_id = ANY($2)",
        tenant, employee_ids)


async def list_scim_users(conn: asyncpg.Connection, tenant: str, where: domain.Filter | None, offset: int,
                          limit: int) -> tuple[int, list[dict[str, Any]]]:
    params: list[Any] = [tenant]
    condition = _compile(where, _user_operand, params) if where else "true"
    total = await conn.fetchval(f"SELECT count(*) FROM scim_users s WHERE s.tenant = $1 AND ({condition})", *params)
    rows = await conn.fetch(
        f"""SELECT {SCIM_USER} FROM scim_users s WHERE s.tenant = $1 AND ({condition})
            ORDER BY s.created_at, s.id OFFSET {offset} LIMIT {limit}""", *params)
    return total, [_scim_user(r) for r in rows]  # type: ignore[misc]


# --- SCIM tokens ---------------------------------------------------------------------------------

async def insert_scim_token(conn: asyncpg.Connection, tenant: str, token_id: UUID, token_hash: bytes,
                            description: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO scim_tokens (tenant, token_id, token_hash, description) VALUES ($1, $2, $3, $4)
           RETURNING token_id, description, created_at, revoked_at""", tenant, token_id, token_hash, description)


async def scim_tokens(conn: asyncpg.Connection, tenant: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT token_id, description, created_at, revoked_at FROM scim_tokens WHERE tenant = $1
           ORDER BY created_at""", tenant)


async def revoke_scim_token(conn: asyncpg.Connection, tenant: str, token_id: UUID) -> bool:
    return bool(await conn.fetchval(
        """UPDATE scim_tokens SET revoked_at = now() WHERE tenant = $1 AND token_id = $2 AND revoked_at IS NULL
           RETURNING true""", tenant, token_id))


async def tenant_of_scim_token(conn: asyncpg.Connection, token_hash: bytes) -> str | None:
    return await conn.fetchval("SELECT tenant FROM scim_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                               token_hash)


# --- SCIM filters as SQL -------------------------------------------------------------------------
# The parsed filter (domain.parse_filter) becomes a WHERE clause; every value is a parameter.

class _Scalar:
    def __init__(self, sql: str, timestamp: bool = False) -> None:
        self.sql, self.timestamp = sql, timestamp


class _Elements:
    """A multi-valued attribute: a set of jsonb elements, compared through ``sub``."""

    def __init__(self, sql: str, sub: str | None) -> None:
        self.sql, self.sub = sql, sub


def _user_operand(path: domain.AttrPath) -> _Scalar | _Elements:
    if path.schema is None and path.attribute.lower() == "id":
        return _Scalar("s.id::text")
    attr = scim.USERS.attribute(path)
    urn = scim.USERS.extension_urn(path)
    return _json_operand(f"s.resource->{_literal(urn)}" if urn else "s.resource", attr, path.sub)


def _json_operand(container: str, attr: scim.Attr, sub: str | None) -> _Scalar | _Elements:
    name = _literal(attr.name)
    if attr.multi:
        return _Elements(f"jsonb_array_elements(coalesce({container}->{name}, '[]'::jsonb))",
                         child.name if sub and (child := attr.sub(sub)) else "value")
    if sub:
        child = attr.sub(sub)
        assert child is not None
        return _Scalar(f"({container}->{name}->>{_literal(child.name)})")
    if attr.name == "active":
        return _Scalar(f"coalesce({container}->>'active', 'true')")
    return _Scalar(f"({container}->>{name})")


def _group_operand(path: domain.AttrPath) -> _Scalar | _Elements:
    if path.attribute.lower() == "id" and path.schema is None:
        return _Scalar("g.group_id::text")
    attr = scim.GROUPS.attribute(path)
    if attr.name == "displayName":
        return _Scalar("g.name")
    if attr.name == "externalId":
        return _Scalar("g.external_id")
    # members.value: the SCIM ids of the members
    return _Elements("""(SELECT jsonb_build_object('value', u.id::text, 'display', u.user_name)
                         FROM group_members m JOIN scim_users u ON u.tenant = m.tenant AND u.employee_id = m.employee_id
                         WHERE m.tenant = g.tenant AND m.group_id = g.group_id)""", path.sub or "value")


def _literal(name: str | None) -> str:
    assert name is not None
    return "'" + name.replace("'", "''") + "'"


def _compile(node: domain.Filter, operand: Any, params: list[Any]) -> str:
    match node:
        case domain.And(left, right):
            return f"({_compile(left, operand, params)} AND {_compile(right, operand, params)})"
        case domain.Or(left, right):
            return f"({_compile(left, operand, params)} OR {_compile(right, operand, params)})"
        case domain.Not(inner):
            return f"(NOT coalesce({_compile(inner, operand, params)}, false))"
        case domain.ValuePath(path, inner):
            target = operand(domain.AttrPath(path.attribute, None, path.schema))
            if not isinstance(target, _Elements):
                raise domain.InvalidFilter(f"{path.attribute} is not multi-valued")
            attr = (scim.GROUPS if operand is _group_operand else scim.USERS).attribute(
                domain.AttrPath(path.attribute, None, path.schema))

            def element(p: domain.AttrPath) -> _Scalar | _Elements:
                sub = attr.sub(p.attribute)
                if sub is None:
                    raise domain.InvalidFilter(f"unknown attribute {attr.name}.{p.attribute}")
                return _Scalar(f"(x.v->>{_literal(sub.name)})")
            return f"EXISTS (SELECT 1 FROM {target.sql} AS x(v) WHERE {_compile(inner, element, params)})"
        case domain.Present(path):
            target = operand(path)
            if isinstance(target, _Elements):
                return (f"EXISTS (SELECT 1 FROM {target.sql} AS x(v) "
                        f"WHERE coalesce(x.v->>{_literal(target.sub)}, '') <> '')")
            return f"coalesce({target.sql}, '') <> ''"
        case domain.Compare(path, op, value):
            target = operand(path)
            if isinstance(target, _Elements):
                scalar = _Scalar(f"(x.v->>{_literal(target.sub)})")
                return f"EXISTS (SELECT 1 FROM {target.sql} AS x(v) WHERE {_comparison(scalar, op, value, params)})"
            return _comparison(target, op, value, params)
    raise domain.InvalidFilter("unsupported filter")


def _comparison(target: _Scalar, op: str, value: Any, params: list[Any]) -> str:
    if value is None:
        if op == "eq":
            return f"({target.sql} IS NULL)"
        if op == "ne":
            return f"({target.sql} IS NOT NULL)"
        raise domain.InvalidFilter(f"{op} null is meaningless")
    text = str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")
    params.append(text)
    p = f"${len(params)}"
    column = f"lower({target.sql})"
    sql = {
        "eq": f"{column} = {p}", "ne": f"{column} IS DISTINCT FROM {p}",
        "co": f"strpos({column}, {p}) > 0", "sw": f"starts_with({column}, {p})",
        "ew": f"right({column}, length({p})) = {p}",
        "gt": f"{column} > {p}", "ge": f"{column} >= {p}", "lt": f"{column} < {p}", "le": f"{column} <= {p}",
    }[op]
    return f"coalesce({sql}, false)"


# --- deliveries (the worker's queue) ---------------------------------------------------------------

async def claim_deliveries(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due deliveries, any tenant (replicas skip each other's rows), with
    all that sending them needs. A lease that runs out (a replica died mid-send) frees the row."""
    return await conn.fetch(
        """WITH due AS (
               SELECT tenant, delivery_id FROM deliveries
               WHERE status = 'pending' AND due_at <= now() AND (lease_until IS NULL OR lease_until < now())
               ORDER BY due_at, ambassador_id LIMIT $1 FOR UPDATE SKIP LOCKED),
           claimed AS (
               UPDATE deliveries d SET lease_until = now() + make_interval(secs => $2)
               FROM due WHERE d.tenant = due.tenant AND d.delivery_id = due.delivery_id
               RETURNING d.*)
           SELECT d.tenant, d.delivery_id, d.notification_id, d.ambassador_id, d.content_id, d.channel, d.action,
                  d.attempts, n.links, n.variant, n.status AS notification_status, n.external_ref,
                  c.title, c.url, c.language AS content_language, c.share_texts, c.campaign,
                  c.retired_at IS NOT NULL AS retired,
                  (a.withdrawn_at IS NULL AND a.consent_expires_at > now()) AS active,
                  e.email, e.language, e.subsidiary, e.department,
                  ep.url AS endpoint_url, ep.secret AS endpoint_secret,
                  p.max_per_day, p.quiet_start, p.quiet_end, coalesce(p.time_zone, 'UTC') AS time_zone,
                  n.budget_at IS NOT NULL AS has_budget
           FROM claimed d
           JOIN notifications n ON n.tenant = d.tenant AND n.notification_id = d.notification_id
           JOIN contents c ON c.tenant = d.tenant AND c.content_id = d.content_id
           JOIN ambassadors a ON a.tenant = d.tenant AND a.ambassador_id = d.ambassador_id
           LEFT JOIN employees e ON e.tenant = a.tenant AND e.employee_id = a.employee_id
           LEFT JOIN preferences p ON p.tenant = a.tenant AND p.employee_id = a.employee_id
           LEFT JOIN channel_endpoints ep ON ep.tenant = d.tenant AND ep.channel = d.channel
           ORDER BY d.due_at, d.ambassador_id""", limit, lease_seconds)


async def finish_delivery(conn: asyncpg.Connection, tenant: str, delivery_id: UUID, status: str,
                          at: datetime) -> bool:
    """Close a leased delivery (done, failed, cancelled); False if it was cancelled meanwhile."""
    return bool(await conn.fetchval(
        """UPDATE deliveries SET status = $3, done_at = $4, lease_until = NULL, attempts = attempts + 1
           WHERE tenant = $1 AND delivery_id = $2 AND status = 'pending' RETURNING true""",
        tenant, delivery_id, status, at))


async def postpone_delivery(conn: asyncpg.Connection, tenant: str, delivery_id: UUID, due_at: datetime,
                            attempted: bool) -> None:
    """Try again at ``due_at`` (a retry after a failure, or a deferral)."""
    await conn.execute(
        """UPDATE deliveries SET due_at = $3, lease_until = NULL, attempts = attempts + $4::int
           WHERE tenant = $1 AND delivery_id = $2 AND status = 'pending'""",
        tenant, delivery_id, due_at, 1 if attempted else 0)


async def record_attempt(conn: asyncpg.Connection, tenant: str, delivery_id: UUID, attempt: int, error: str) -> None:
    await conn.execute(
        """INSERT INTO delivery_attempts (tenant, delivery_id, attempt, error) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""", tenant, delivery_id, attempt, error[:2000])
    await conn.execute("UPDATE deliveries SET last_error = $3 WHERE tenant = $1 AND delivery_id = $2",
                       tenant, delivery_id, error[:2000])


async def set_notification_status(conn: asyncpg.Connection, tenant: str, notification_id: UUID, status: str,
                                  at: datetime, external_ref: dict[str, Any] | None = None) -> bool:
    """Move a notification still to be sent to ``status`` (sent also stamps sent_at, and its slot
    of the fatigue budget counts from then); False when it is no longer to be sent (cancelled,
    retired meanwhile)."""
    return bool(await conn.fetchval(
        """UPDATE notifications SET status = $3,
                sent_at = CASE WHEN $3 = 'sent' THEN $4 ELSE sent_at END,
                budget_at = CASE WHEN $3 = 'sent' THEN $4 ELSE budget_at END,
                cancelled_at = CASE WHEN $3 = 'cancelled' THEN $4 ELSE cancelled_at END,
                external_ref = coalesce($5::jsonb, external_ref)
           WHERE tenant = $1 AND notification_id = $2 AND status IN ('pending', 'deferred') RETURNING true""",
        tenant, notification_id, status, at, json.dumps(external_ref) if external_ref is not None else None))


async def deliveries_of(conn: asyncpg.Connection, tenant: str, notification_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT delivery_id, channel, action, status, attempts, last_error FROM deliveries
           WHERE tenant = $1 AND notification_id = $2 ORDER BY created_at""", tenant, notification_id)


# --- channel endpoints ---------------------------------------------------------------------------

async def put_channel_endpoint(conn: asyncpg.Connection, tenant: str, channel: str, url: str,
                               secret: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO channel_endpoints (tenant, channel, url, secret) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, channel) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, updated_at = now()
           RETURNING channel, url, updated_at""", tenant, channel, url, secret)


async def channel_endpoints(conn: asyncpg.Connection, tenant: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT channel, url, updated_at FROM channel_endpoints WHERE tenant = $1 ORDER BY channel", tenant)


async def delete_channel_endpoint(conn: asyncpg.Connection, tenant: str, channel: str) -> bool:
    return bool(await conn.fetchval(
        "DELETE FROM channel_endpoints WHERE tenant = $1 AND channel = $2 RETURNING true", tenant, channel))
