"""All of the content service's SQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

COLUMNS = """id, title, summary, body, url, image_url, image_alt, language, tags, campaign, owner_subsidiary, audience,
             share_texts, state, revision, created_by, created_at, updated_at, authors, approved_by,
             publish_at, expire_at, embargo_until, published_at, retired_at, charter_override_reason,
             group_content_id, source_system, external_id, external_version, tenant, credit"""
JSON_COLUMNS = ("audience", "share_texts")
# The columns an edit, an ingestion or a transition may set (never tenant, id or provenance keys).
WRITABLE = frozenset({
    "title", "summary", "body", "url", "image_url", "image_alt", "language", "tags", "campaign", "audience",
    "share_texts",
    "publish_at", "expire_at", "embargo_until", "state", "revision", "authors", "approved_by", "published_at",
    "retired_at", "charter_override_reason", "external_version",
})


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    for column in JSON_COLUMNS:
        row[column] = json.loads(row[column])
    return row


def _value(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return json.dumps(value)
    if column in ("url", "image_url") and value is not None:
        return str(value)
    return value


async def insert(conn: asyncpg.Connection, tenant: str, content_id: UUID, fields: dict[str, Any], actor: str, *,
                 source_system: str | None = None, external_id: str | None = None,
                 external_version: int | None = None, embargo_until: Any = None,
                 group_content_id: UUID | None = None) -> dict[str, Any] | None:
    """A new draft, or None when the source's external id already has an item."""
    record = await conn.fetchrow(
        f"""INSERT INTO contents (tenant, id, title, summary, body, url, image_url, language, tags, campaign,
                owner_subsidiary, audience, share_texts, publish_at, expire_at, created_by, authors,
                source_system, external_id, external_version, embargo_until, group_content_id, credit, image_alt)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, ARRAY[$16],
                    $17, $18, $19, $20, $21, $22, $23)
            ON CONFLICT (tenant, source_system, external_id) WHERE external_id IS NOT NULL DO NOTHING
            RETURNING {COLUMNS}""",
        tenant, content_id, fields["title"], fields.get("summary", ""), fields.get("body", ""),
        _value("url", fields["url"]), _value("image_url", fields.get("image_url")), fields["language"],
        fields.get("tags", []), fields.get("campaign"), fields.get("owner_subsidiary"),
        json.dumps(fields.get("audience", {})), json.dumps(fields.get("share_texts", [])),
        fields.get("publish_at"), fields.get("expire_at"), actor, source_system, external_id, external_version,
        embargo_until, group_content_id, fields.get("credit"), fields.get("image_alt"))
    if record is None:
        return None
    await record_transition(conn, tenant, content_id, 1, "create", None, "draft", actor, None)
    return _row(record)


async def get(conn: asyncpg.Connection, tenant: str, content_id: UUID, *,
              for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _row(await conn.fetchrow(f"SELECT {COLUMNS} FROM contents WHERE tenant = $1 AND id = $2{lock}",
                                    tenant, content_id))


async def list_contents(conn: asyncpg.Connection, tenant: str, subsidiary: str | None, state: str | None,
                        limit: int, due: tuple[datetime, datetime] | None = None) -> list[dict[str, Any]]:
    """Newest first; ``subsidiary`` confines to one subsidiary's items (None: every item); ``due``
    to the items whose publication, embargo or expiry falls within [start, end)."""
    start, end = due or (None, None)
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM contents
            WHERE tenant = $1 AND ($2::text IS NULL OR owner_subsidiary = $2) AND ($3::text IS NULL OR state = $3)
              AND ($5::timestamptz IS NULL OR (publish_at >= $5 AND publish_at < $6)
                   OR (embargo_until >= $5 AND embargo_until < $6) OR (expire_at >= $5 AND expire_at < $6))
            ORDER BY created_at DESC LIMIT $4""", tenant, subsidiary, state, limit, start, end)
    return [_row(r) for r in rows]  # type: ignore[misc]


async def by_external_id(conn: asyncpg.Connection, tenant: str, source_system: str,
                         external_id: str) -> dict[str, Any] | None:
    return _row(await conn.fetchrow(
        f"SELECT {COLUMNS} FROM contents WHERE tenant = $1 AND source_system = $2 AND external_id = $3 FOR UPDATE",
        tenant, source_system, external_id))


async def update(conn: asyncpg.Connection, tenant: str, content_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the given columns (from WRITABLE) and return the row."""
    unknown = set(changes) - WRITABLE
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    columns = list(changes)
    assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(columns))
    record = await conn.fetchrow(
        f"UPDATE contents SET {assignments}, updated_at = now() WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}",
        tenant, content_id, *(_value(c, changes[c]) for c in columns))
    return _row(record)  # type: ignore[return-value]


async def record_transition(conn: asyncpg.Connection, tenant: str, content_id: UUID, revision: int, action: str,
                            from_state: str | None, to_state: str, actor: str, reason: str | None,
                            detail: Any = None) -> None:
    await conn.execute(
        """INSERT INTO content_transitions (tenant, content_id, revision, action, from_state, to_state, actor,
               reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        tenant, content_id, revision, action, from_state, to_state, actor, reason,
        None if detail is None else json.dumps(detail))


async def transitions(conn: asyncpg.Connection, tenant: str, content_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT revision, action, from_state, to_state, actor, reason, detail, at FROM content_transitions
           WHERE tenant = $1 AND content_id = $2 ORDER BY id""", tenant, content_id)
    return [{**dict(r), "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]


# --- the scheduler: rows locked, skipped by the other replicas ----------------------------------

async def due_expiries(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM contents WHERE state <> 'retired' AND expire_at IS NOT NULL AND expire_at <= now()
            ORDER BY expire_at LIMIT $1 FOR UPDATE SKIP LOCKED""", limit)
    return [_row(r) for r in rows]  # type: ignore[misc]


async def due_publications(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM contents
            WHERE state = 'scheduled' AND publish_at <= now()
              AND (embargo_until IS NULL OR embargo_until <= now())
              AND (expire_at IS NULL OR expire_at > now())
            ORDER BY publish_at LIMIT $1 FOR UPDATE SKIP LOCKED""", limit)
    return [_row(r) for r in rows]  # type: ignore[misc]


# --- tenant configuration ------------------------------------------------------------------------

async def charter_rules(conn: asyncpg.Connection, tenant: str, scope: str) -> dict[str, Any] | None:
    rules = await conn.fetchval("SELECT rules FROM charters WHERE tenant = $1 AND scope = $2", tenant, scope)
    return None if rules is None else json.loads(rules)


async def put_charter(conn: asyncpg.Connection, tenant: str, scope: str, rules: dict[str, Any], actor: str) -> None:
    await conn.execute(
        """INSERT INTO charters (tenant, scope, rules, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, scope) DO UPDATE SET rules = $3, updated_by = $4, updated_at = now()""",
        tenant, scope, json.dumps(rules), actor)


async def source(conn: asyncpg.Connection, tenant: str, source_system: str) -> dict[str, Any] | None:
    record = await conn.fetchrow(
        "SELECT source_system, auto_approve, webhook_secret FROM ingestion_sources"
        " WHERE tenant = $1 AND source_system = $2", tenant, source_system)
    return None if record is None else dict(record)


async def sources(conn: asyncpg.Connection, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT source_system, auto_approve, webhook_secret FROM ingestion_sources WHERE tenant = $1"
        " ORDER BY source_system", tenant)
    return [dict(r) for r in rows]


async def put_source(conn: asyncpg.Connection, tenant: str, source_system: str, auto_approve: bool,
                     actor: str) -> dict[str, Any]:
    record = await conn.fetchrow(
        """INSERT INTO ingestion_sources (tenant, source_system, auto_approve, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, source_system) DO UPDATE SET auto_approve = $3, updated_by = $4, updated_at = now()
           RETURNING source_system, auto_approve, webhook_secret""", tenant, source_system, auto_approve, actor)
    return dict(record)


async def set_webhook_secret(conn: asyncpg.Connection, tenant: str, source_system: str, secret: str,
                             actor: str) -> None:
    await conn.execute(
        """INSERT INTO ingestion_sources (tenant, source_system, webhook_secret, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, source_system) DO UPDATE SET webhook_secret = $3, updated_by = $4,
               updated_at = now()""", tenant, source_system, secret, actor)


# --- group → subsidiary cascade ------------------------------------------------------------------

OFFER_COLUMNS = """group_content_id, subsidiary, status, local_content_id, offered_by, offered_at, decided_by,
                   decided_at, reason"""


async def insert_offers(conn: asyncpg.Connection, tenant: str, group_content_id: UUID, subsidiaries: list[str],
                        actor: str) -> None:
    await conn.execute(
        """INSERT INTO cascade_offers (tenant, group_content_id, subsidiary, offered_by)
           SELECT $1, $2, s, $4 FROM unnest($3::text[]) AS s ON CONFLICT DO NOTHING""",
        tenant, group_content_id, subsidiaries, actor)


async def offers(conn: asyncpg.Connection, tenant: str, subsidiary: str | None,
                 group_content_id: UUID | None = None) -> list[dict[str, Any]]:
    """The offers (a subsidiary's own, or all), each with what the group item says: a subsidiary's
    staff read the group's item through its offer only."""
    rows = await conn.fetch(
        f"""SELECT {", ".join(f"o.{c.strip()}" for c in OFFER_COLUMNS.split(","))},
                   json_build_object('title', c.title, 'summary', c.summary, 'url', c.url, 'language', c.language,
                                     'image_url', c.image_url, 'image_alt', c.image_alt,
                                     'share_texts', c.share_texts::json, 'state', c.state) AS group_item
            FROM cascade_offers o JOIN contents c ON c.tenant = o.tenant AND c.id = o.group_content_id
            WHERE o.tenant = $1 AND ($2::text IS NULL OR o.subsidiary = $2)
              AND ($3::uuid IS NULL OR o.group_content_id = $3)
            ORDER BY o.offered_at DESC, o.subsidiary""", tenant, subsidiary, group_content_id)
    return [{**dict(r), "group_item": json.loads(r["group_item"])} for r in rows]


async def offer_for_update(conn: asyncpg.Connection, tenant: str, group_content_id: UUID,
                           subsidiary: str) -> dict[str, Any] | None:
    record = await conn.fetchrow(
        f"""SELECT {OFFER_COLUMNS} FROM cascade_offers WHERE tenant = $1 AND group_content_id = $2
            AND subsidiary = $3 FOR UPDATE""", tenant, group_content_id, subsidiary)
    return None if record is None else dict(record)


async def decide_offer(conn: asyncpg.Connection, tenant: str, group_content_id: UUID, subsidiary: str, status: str,
                       local_content_id: UUID | None, actor: str, reason: str | None) -> dict[str, Any]:
    record = await conn.fetchrow(
        f"""UPDATE cascade_offers SET status = $4, local_content_id = $5, decided_by = $6, decided_at = now(),
                reason = $7
            WHERE tenant = $1 AND group_content_id = $2 AND subsidiary = $3 RETURNING {OFFER_COLUMNS}""",
        tenant, group_content_id, subsidiary, status, local_content_id, actor, reason)
    return dict(record)


# --- the studio's images -------------------------------------------------------------------------

async def insert_image(conn: asyncpg.Connection, tenant: str, image_id: UUID, media_type: str, data: bytes,
                       actor: str) -> None:
    await conn.execute(
        "INSERT INTO images (tenant, image_id, media_type, data, created_by) VALUES ($1, $2, $3, $4, $5)",
        tenant, image_id, media_type, data, actor)


async def image(conn: asyncpg.Connection, tenant: str, image_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT media_type, data FROM images WHERE tenant = $1 AND image_id = $2",
                               tenant, image_id)
