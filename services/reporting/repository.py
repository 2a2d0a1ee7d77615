"""All of the reporting service's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.reporting.domain import Attribution, Increment


async def add(conn: asyncpg.Connection, tenant: str, increments: Sequence[Increment]) -> None:
    """Add the deltas to their counters in one statement (the increments are distinct and
    sorted, as ON CONFLICT DO UPDATE may touch a row only once and locks in input order)."""
    if not increments:
        return
    await conn.execute(
        """INSERT INTO counters (tenant, scope_type, scope_id, kpi, value)
           SELECT $1, s, i, k, d FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(s, i, k, d)
           ON CONFLICT (tenant, scope_type, scope_id, kpi)
           DO UPDATE SET value = counters.value + EXCLUDED.value, updated_at = now()""",
        tenant, [str(i.scope_type) for i in increments], [i.scope_id for i in increments],
        [i.kpi for i in increments], [i.delta for i in increments])


async def remember_content(conn: asyncpg.Connection, tenant: str, content_id: str, title: str,
                           owner_subsidiary: str | None, campaign: str | None) -> None:
    await conn.execute(
        """INSERT INTO contents (tenant, content_id, title, owner_subsidiary, campaign) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant, content_id) DO UPDATE SET title = EXCLUDED.title,
               owner_subsidiary = EXCLUDED.owner_subsidiary, campaign = EXCLUDED.campaign, updated_at = now()""",
        tenant, content_id, title, owner_subsidiary, campaign)


async def content_attribution(conn: asyncpg.Connection, tenant: str, content_id: str) -> Attribution:
    row = await conn.fetchrow(
        "SELECT owner_subsidiary, campaign FROM contents WHERE tenant = $1 AND content_id = $2", tenant, content_id)
    return Attribution(subsidiary=row["owner_subsidiary"], campaign=row["campaign"]) if row else Attribution()


async def remember_ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: str, subsidiary: str,
                              enrolled_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO ambassadors (tenant, ambassador_id, subsidiary, enrolled_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant, ambassador_id)
           DO UPDATE SET subsidiary = EXCLUDED.subsidiary, enrolled_at = EXCLUDED.enrolled_at""",
        tenant, ambassador_id, subsidiary, enrolled_at)


async def ambassador_attribution(conn: asyncpg.Connection, tenant: str, ambassador_id: str) -> Attribution:
    subsidiary = await conn.fetchval(
        "SELECT subsidiary FROM ambassadors WHERE tenant = $1 AND ambassador_id = $2", tenant, ambassador_id)
    return Attribution(subsidiary=subsidiary)


async def counters(conn: asyncpg.Connection, tenant: str, scope_type: str, scope_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT kpi, value FROM counters WHERE tenant = $1 AND scope_type = $2 AND scope_id = $3",
        tenant, scope_type, scope_id)
    return {r["kpi"]: r["value"] for r in rows}


async def top_contents(conn: asyncpg.Connection, tenant: str, kpi: str, limit: int) -> list[dict[str, Any]]:
    """The contents with the highest ``kpi``, with what reporting knows of them."""
    rows = await conn.fetch(
        """SELECT c.scope_id AS content_id, m.title, m.owner_subsidiary, m.campaign
           FROM counters c
           LEFT JOIN contents m ON m.tenant = c.tenant AND m.content_id = c.scope_id
           WHERE c.tenant = $1 AND c.scope_type = 'content' AND c.kpi = $2
           ORDER BY c.value DESC, c.scope_id LIMIT $3""",
        tenant, kpi, limit)
    return [dict(r) for r in rows]


async def counters_of_many(conn: asyncpg.Connection, tenant: str, scope_type: str,
                           scope_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = await conn.fetch(
        """SELECT scope_id, kpi, value FROM counters
           WHERE tenant = $1 AND scope_type = $2 AND scope_id = ANY($3::text[])""",
        tenant, scope_type, scope_ids)
    found: dict[str, dict[str, int]] = {}
    for r in rows:
        found.setdefault(r["scope_id"], {})[r["kpi"]] = r["value"]
    return found
