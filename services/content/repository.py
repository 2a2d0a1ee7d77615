"""All of the content service's SQL."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

COLUMNS = """id, title, summary, url, image_url, language, tags, campaign, owner_subsidiary, audience,
             share_texts, state, revision, created_by, created_at, published_at, external_version"""


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    row["audience"] = json.loads(row["audience"])
    row["share_texts"] = json.loads(row["share_texts"])
    return row


async def insert(conn: asyncpg.Connection, tenant: str, content_id: UUID, draft: dict[str, Any], actor: str,
                 source_system: str | None = None, external_id: str | None = None,
                 external_version: int | None = None) -> dict[str, Any]:
    record = await conn.fetchrow(
        f"""INSERT INTO contents (tenant, id, title, summary, url, image_url, language, tags, campaign,
                owner_subsidiary, audience, share_texts, created_by, source_system, external_id, external_version)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            RETURNING {COLUMNS}""",
        tenant, content_id, draft["title"], draft.get("summary", ""), str(draft["url"]),
        str(draft["image_url"]) if draft.get("image_url") else None, draft["language"], draft.get("tags", []),
        draft.get("campaign"), draft.get("owner_subsidiary"), json.dumps(draft.get("audience", {})),
        json.dumps(draft.get("share_texts", [])), actor, source_system, external_id, external_version)
    await record_transition(conn, tenant, content_id, None, "draft", actor, None)
    return _row(record)  # type: ignore[return-value]


async def get(conn: asyncpg.Connection, tenant: str, content_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _row(await conn.fetchrow(f"SELECT {COLUMNS} FROM contents WHERE tenant = $1 AND id = $2{lock}",
                                    tenant, content_id))


async def by_external_id(conn: asyncpg.Connection, tenant: str, source_system: str,
                         external_id: str) -> dict[str, Any] | None:
    return _row(await conn.fetchrow(
        f"SELECT {COLUMNS} FROM contents WHERE tenant = $1 AND source_system = $2 AND external_id = $3 FOR UPDATE",
        tenant, source_system, external_id))


async def update_from_source(conn: asyncpg.Connection, tenant: str, content_id: UUID, draft: dict[str, Any],
                             external_version: int) -> None:
    await conn.execute(
        """UPDATE contents SET title = $3, summary = $4, url = $5, image_url = $6, language = $7, tags = $8,
               share_texts = $9, external_version = $10, revision = revision + 1
           WHERE tenant = $1 AND id = $2""",
        tenant, content_id, draft["title"], draft.get("summary", ""), str(draft["url"]),
        str(draft["image_url"]) if draft.get("image_url") else None, draft["language"], draft.get("tags", []),
        json.dumps(draft.get("share_texts", [])), external_version)


async def set_state(conn: asyncpg.Connection, tenant: str, content_id: UUID, current: str, wanted: str,
                    actor: str, reason: str | None) -> dict[str, Any]:
    record = await conn.fetchrow(
        f"""UPDATE contents SET state = $3,
                published_at = CASE WHEN $3 = 'published' THEN now() ELSE published_at END
            WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}""", tenant, content_id, wanted)
    await record_transition(conn, tenant, content_id, current, wanted, actor, reason)
    return _row(record)  # type: ignore[return-value]


async def record_transition(conn: asyncpg.Connection, tenant: str, content_id: UUID, from_state: str | None,
                            to_state: str, actor: str, reason: str | None) -> None:
    await conn.execute(
        "INSERT INTO content_transitions (tenant, content_id, from_state, to_state, actor, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)", tenant, content_id, from_state, to_state, actor, reason)


async def transitions(conn: asyncpg.Connection, tenant: str, content_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT from_state, to_state, actor, reason, at FROM content_transitions"
        " WHERE tenant = $1 AND content_id = $2 ORDER BY id", tenant, content_id)
    return [dict(r) for r in rows]
