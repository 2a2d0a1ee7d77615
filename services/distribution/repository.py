"""All of the distribution service's SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

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
        """SELECT employee_id, subsidiary, department, site, country, language, departed
           FROM employees WHERE tenant = $1 AND employee_id = $2 FOR UPDATE""", tenant, employee_id)


# --- ambassadors -------------------------------------------------------------------------------

AMBASSADOR = "ambassador_id, consent_text_version, network_audience, enrolled_at"


def _ambassador(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    row["networks"] = json.loads(row.pop("network_audience"))
    return row


async def active_ambassador(conn: asyncpg.Connection, tenant: str, employee_id: str) -> dict[str, Any] | None:
    return _ambassador(await conn.fetchrow(
        f"SELECT {AMBASSADOR} FROM ambassadors WHERE tenant = $1 AND employee_id = $2 AND withdrawn_at IS NULL",
        tenant, employee_id))


async def insert_ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: UUID, employee_id: str,
                            consent_text_version: str, networks: dict[str, int]) -> dict[str, Any] | None:
    """The new ambassador, or None when the employee is enrolled already."""
    return _ambassador(await conn.fetchrow(
        f"""INSERT INTO ambassadors (tenant, ambassador_id, employee_id, consent_text_version, network_audience)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant, employee_id) WHERE withdrawn_at IS NULL DO NOTHING
            RETURNING {AMBASSADOR}""",
        tenant, ambassador_id, employee_id, consent_text_version, json.dumps(networks)))


async def withdraw_ambassador(conn: asyncpg.Connection, tenant: str, employee_id: str, reason: str,
                              at: datetime) -> UUID | None:
    """End the employee's enrolment; return the withdrawn ambassador's id, None if not enrolled."""
    return await conn.fetchval(
        """UPDATE ambassadors SET withdrawn_at = $4, withdrawal_reason = $3
           WHERE tenant = $1 AND employee_id = $2 AND withdrawn_at IS NULL
           RETURNING ambassador_id""", tenant, employee_id, reason, at)


async def audience_candidates(conn: asyncpg.Connection, tenant: str, content_id: str, after: UUID | None,
                              limit: int) -> list[asyncpg.Record]:
    """One page (keyset, by ambassador id) of the enrolled, current ambassadors not yet notified
    of the content, with their HR placement for targeting."""
    return await conn.fetch(
        """SELECT a.ambassador_id, e.subsidiary, e.department, e.site, e.country, e.language
           FROM ambassadors a
           JOIN employees e ON e.tenant = a.tenant AND e.employee_id = a.employee_id
           WHERE a.tenant = $1 AND a.withdrawn_at IS NULL AND NOT e.departed
             AND a.ambassador_id > coalesce($3, '00000000-0000-0000-0000-000000000000'::uuid)
             AND NOT EXISTS (SELECT 1 FROM notifications n
                             WHERE n.tenant = a.tenant AND n.content_id = $2 AND n.ambassador_id = a.ambassador_id)
           ORDER BY a.ambassador_id
           LIMIT $4""", tenant, content_id, after, limit)


# --- contents and notifications ----------------------------------------------------------------

async def save_content(conn: asyncpg.Connection, tenant: str, data: ContentPublished) -> bool:
    """Keep what the feed shows of a content; return whether it is live at this revision (not
    retired, not superseded by a newer revision we already hold)."""
    retired = await conn.fetchval(
        """INSERT INTO contents AS c (tenant, content_id, revision, title, url, language, campaign,
                share_texts, published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (tenant, content_id) DO UPDATE SET
                revision = EXCLUDED.revision, title = EXCLUDED.title, url = EXCLUDED.url,
                language = EXCLUDED.language, campaign = EXCLUDED.campaign, share_texts = EXCLUDED.share_texts,
                published_at = EXCLUDED.published_at
           WHERE c.revision <= EXCLUDED.revision
           RETURNING retired_at IS NOT NULL""",
        tenant, data.content_id, data.revision, data.title, str(data.url), data.language, data.campaign,
        json.dumps([t.model_dump(mode="json") for t in data.share_texts]), data.published_at)
    return retired is False


async def insert_notifications(conn: asyncpg.Connection, tenant: str, content_id: str, channel: str,
                               sent_at: datetime, notifications: Sequence[tuple[UUID, UUID, list[dict[str, str]]]],
                               ) -> set[UUID]:
    """Insert (notification_id, ambassador_id, links) rows; return the ids actually inserted
    (an ambassador already notified of this content is skipped)."""
    rows = await conn.fetch(
        """INSERT INTO notifications (tenant, notification_id, content_id, ambassador_id, channel, links, sent_at)
           SELECT $1, n, $2, a, $3, l::jsonb, $4 FROM unnest($5::uuid[], $6::uuid[], $7::text[]) AS t(n, a, l)
           ON CONFLICT (tenant, content_id, ambassador_id) DO NOTHING
           RETURNING notification_id""",
        tenant, content_id, channel, sent_at, [n[0] for n in notifications], [n[1] for n in notifications],
        [json.dumps(n[2]) for n in notifications])
    return {r["notification_id"] for r in rows}


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
        """SELECT n.notification_id, n.content_id, n.links, n.sent_at, c.title, c.url, c.language, c.share_texts
           FROM notifications n
           JOIN contents c ON c.tenant = n.tenant AND c.content_id = n.content_id
           WHERE n.tenant = $1 AND n.ambassador_id = $2 AND n.retired_at IS NULL
           ORDER BY n.sent_at DESC, n.notification_id
           LIMIT $3""", tenant, ambassador_id, limit)
    return [{**dict(r), "links": json.loads(r["links"]), "share_texts": json.loads(r["share_texts"])} for r in rows]
