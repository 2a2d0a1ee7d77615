"""All of the watch's SQL (tables watch_sources and suggestions of the content schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

SOURCE = """id, scope, url, name, tags, language, active, failures, last_error, parked_at, last_polled_at,
            last_ok_at, next_poll_at, entries_seen, created_by, created_at"""
SUGGESTION = """id, scope, origin, source_id, proposed_by, credit_name, reason, link, title, summary, image_url,
                published_at, language, tags, also_from, state, content_id, decided_by, decided_at, created_at"""
EDITABLE = frozenset({"name", "tags", "language", "active"})


def _scoped(scope: str | None) -> str:
    """A subsidiary's staff see their subsidiary's rows; the group's see every row ($2 NULL)."""
    return "tenant = $1 AND ($2::text IS NULL OR scope = $2)"


async def add_source(conn: asyncpg.Connection, tenant: str, source_id: UUID, scope: str, url: str, name: str,
                     tags: list[str], language: str, actor: str) -> dict[str, Any] | None:
    """The new source, or None when the scope already watches that URL."""
    row = await conn.fetchrow(
        f"""INSERT INTO watch_sources (id, tenant, scope, url, name, tags, language, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, scope, url) DO NOTHING
            RETURNING {SOURCE}""", source_id, tenant, scope, url, name, tags, language, actor)
    return dict(row) if row else None


async def sources(conn: asyncpg.Connection, tenant: str, scope: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {SOURCE} FROM watch_sources WHERE {_scoped(scope)} ORDER BY name, id",
                            tenant, scope)
    return [dict(r) for r in rows]


async def source(conn: asyncpg.Connection, tenant: str, scope: str | None, source_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {SOURCE} FROM watch_sources WHERE {_scoped(scope)} AND id = $3",
                              tenant, scope, source_id)
    return dict(row) if row else None


async def edit_source(conn: asyncpg.Connection, tenant: str, source_id: UUID, changes: dict[str, Any],
                      resume: bool) -> dict[str, Any]:
    """Apply ``changes``; ``resume`` clears the failures and the parking and polls at once."""
    assert set(changes) <= EDITABLE
    sets = [f"{column} = ${i}" for i, column in enumerate(changes, start=3)]
    if resume:
        sets += ["failures = 0", "parked_at = NULL", "last_error = NULL", "next_poll_at = now()"]
    row = await conn.fetchrow(
        f"UPDATE watch_sources SET {', '.join(sets) or 'id = id'} WHERE tenant = $1 AND id = $2 RETURNING {SOURCE}",
        tenant, source_id, *changes.values())
    return dict(row)


async def delete_source(conn: asyncpg.Connection, tenant: str, source_id: UUID) -> None:
    await conn.execute("DELETE FROM watch_sources WHERE tenant = $1 AND id = $2", tenant, source_id)


# --- polling -------------------------------------------------------------------------------------

async def lease_due(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
    """Up to ``limit`` sources due for polling, leased to the caller: another replica skips them
    until the lease ends (a poller that died leaves them to the next one when it does)."""
    rows = await conn.fetch(
        """UPDATE watch_sources SET lease_until = now() + make_interval(secs => $2)
           WHERE id IN (SELECT id FROM watch_sources
                        WHERE active AND parked_at IS NULL AND next_poll_at <= now()
                          AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY next_poll_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING id, tenant, scope, url, tags, language, etag, last_modified, failures""", limit, lease_seconds)
    return [dict(r) for r in rows]


async def polled(conn: asyncpg.Connection, source_id: UUID, *, ok: bool, next_poll_at: datetime,
                 failures: int, error: str | None, parked: bool, etag: str | None = None,
                 last_modified: str | None = None, entries: int = 0) -> None:
    """The outcome of one poll; the lease ends. A 304 or a failure keeps the validators known."""
    await conn.execute(
        """UPDATE watch_sources SET lease_until = NULL, last_polled_at = now(), next_poll_at = $2,
               failures = $3, last_error = $4, parked_at = CASE WHEN $5 THEN now() END,
               last_ok_at = CASE WHEN $6 THEN now() ELSE last_ok_at END,
               etag = coalesce($7, etag), last_modified = coalesce($8, last_modified),
               entries_seen = entries_seen + $9
           WHERE id = $1""", source_id, next_poll_at, failures, error, parked, ok, etag, last_modified, entries)


async def recent_titles(conn: asyncpg.Connection, tenant: str, scope: str, since: datetime) -> list[str]:
    rows = await conn.fetch("""SELECT title_key FROM suggestions WHERE tenant = $1 AND scope = $2
                               AND created_at >= $3 ORDER BY created_at DESC LIMIT 2000""", tenant, scope, since)
    return [r["title_key"] for r in rows]


async def add_suggestion(conn: asyncpg.Connection, source: dict[str, Any], suggestion_id: UUID,
                         values: dict[str, Any]) -> bool:
    """A new suggestion; False when the scope has one for that link already (that suggestion
    then notes this source too)."""
    inserted = await conn.fetchval(
        """INSERT INTO suggestions (id, tenant, scope, source_id, link, link_key, title, title_key, summary,
                                    image_url, published_at, language, tags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (tenant, scope, link_key) DO NOTHING RETURNING true""",
        suggestion_id, source["tenant"], source["scope"], source["id"], values["link"], values["link_key"],
        values["title"], values["title_key"], values["summary"], values["image_url"], values["published_at"],
        source["language"], source["tags"])
    if not inserted:
        await note_also_from(conn, source, "link_key", values["link_key"])
    return bool(inserted)


async def note_also_from(conn: asyncpg.Connection, source: dict[str, Any], column: str, key: str) -> None:
    """The suggestion of that link (or title) was carried by ``source`` as well."""
    assert column in ("link_key", "title_key")
    await conn.execute(
        f"""UPDATE suggestions SET also_from = array_append(also_from, $3)
            WHERE id = (SELECT id FROM suggestions WHERE tenant = $1 AND scope = $2 AND {column} = $4
                        ORDER BY created_at LIMIT 1)
              AND source_id <> $3 AND NOT ($3 = ANY(also_from))""",
        source["tenant"], source["scope"], source["id"], key)


# --- the queue -----------------------------------------------------------------------------------

async def suggestions(conn: asyncpg.Connection, tenant: str, scope: str | None, state: str | None,
                      limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {SUGGESTION} FROM suggestions WHERE {_scoped(scope)} AND ($3::text IS NULL OR state = $3)
            ORDER BY coalesce(published_at, created_at) DESC, id LIMIT $4""", tenant, scope, state, limit)
    return [dict(r) for r in rows]


async def suggestion_for_update(conn: asyncpg.Connection, tenant: str, scope: str | None,
                                suggestion_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {SUGGESTION} FROM suggestions WHERE {_scoped(scope)} AND id = $3 FOR UPDATE",
                              tenant, scope, suggestion_id)
    return dict(row) if row else None


async def decide(conn: asyncpg.Connection, suggestion_id: UUID, state: str, actor: str,
                 content_id: UUID | None = None, reason: str | None = None) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""UPDATE suggestions SET state = $2, decided_by = $3, decided_at = now(), content_id = $4, reason = $5
            WHERE id = $1 RETURNING {SUGGESTION}""", suggestion_id, state, actor, content_id, reason)
    return dict(row)


# --- ambassadors' ideas --------------------------------------------------------------------------

async def add_idea(conn: asyncpg.Connection, tenant: str, scope: str, idea_id: UUID, proposer: str,
                   values: dict[str, Any]) -> bool:
    """False when the scope's queue has that link already."""
    return bool(await conn.fetchval(
        """INSERT INTO suggestions (id, tenant, scope, origin, proposed_by, credit_name, link, link_key, title,
                                    title_key, summary, language)
           VALUES ($1, $2, $3, 'idea', $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (tenant, scope, link_key) DO NOTHING RETURNING true""",
        idea_id, tenant, scope, proposer, values["credit_name"], values["link"], values["link_key"],
        values["title"], values["title_key"], values["summary"], values["language"]))


async def waiting_ideas(conn: asyncpg.Connection, tenant: str, proposer: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM suggestions WHERE tenant = $1 AND proposed_by = $2 AND state = 'new'", tenant, proposer))


async def ideas_of(conn: asyncpg.Connection, tenant: str, proposer: str, limit: int) -> list[dict[str, Any]]:
    """A person's ideas, newest first, with the state of the content each became."""
    rows = await conn.fetch(
        """SELECT s.id, s.title, s.summary AS story, nullif(s.link, '') AS url, s.credit_name, s.state, s.reason,
                  s.content_id, s.created_at, c.state AS content_state, c.published_at
           FROM suggestions s LEFT JOIN contents c ON c.tenant = s.tenant AND c.id = s.content_id
           WHERE s.tenant = $1 AND s.proposed_by = $2 AND s.origin = 'idea'
           ORDER BY s.created_at DESC, s.id LIMIT $3""", tenant, proposer, limit)
    return [dict(r) for r in rows]
