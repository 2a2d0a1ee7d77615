"""All of the tracking service's SQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.events import NotificationSent


async def save_links(conn: asyncpg.Connection, tenant: str, data: NotificationSent) -> None:
    """Learn a notification's links; a code we hold already keeps its first destination."""
    links = data.links
    await conn.execute(
        """INSERT INTO links (code, tenant, notification_id, content_id, ambassador_id, network, destination_url,
                campaign)
           SELECT c, $1, $2, $3, $4, n, d, $5 FROM unnest($6::text[], $7::text[], $8::text[]) AS t(c, n, d)
           ON CONFLICT (code) DO NOTHING""",
        tenant, data.notification_id, data.content_id, data.ambassador_id, data.campaign,
        [link.code for link in links], [str(link.network) for link in links],
        [str(link.destination_url) for link in links])


async def link(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT tenant, content_id, ambassador_id, network, destination_url, campaign FROM links WHERE code = $1",
        code)


async def open_click_windows(conn: asyncpg.Connection, clients: list[tuple[str, bytes]],
                             window: timedelta) -> set[tuple[str, bytes]]:
    """Note clicks of (code, client) pairs, each pair once; return those that opened a new
    window (unique clicks). One statement, so two replicas seeing the same client at once count
    it once; rows are locked in (code, client) order, so two concurrent groups cannot deadlock."""
    rows = await conn.fetch(
        """INSERT INTO recent_clicks AS r (code, client, window_start)
           SELECT code, client, now() FROM unnest($1::text[], $2::bytea[]) AS t(code, client) ORDER BY code, client
           ON CONFLICT (code, client) DO UPDATE SET window_start = now()
           WHERE r.window_start <= now() - $3::interval
           RETURNING code, client""", [code for code, _ in clients], [client for _, client in clients], window)
    return {(r["code"], r["client"]) for r in rows}


async def prune_clicks(conn: asyncpg.Connection, window: timedelta) -> int:
    status = await conn.execute("DELETE FROM recent_clicks WHERE window_start <= now() - $1::interval", window)
    return int(status.split()[-1])


async def prune_deliveries(conn: asyncpg.Connection, keep: timedelta) -> int:
    status = await conn.execute("DELETE FROM webhook_deliveries WHERE received_at <= now() - $1::interval", keep)
    return int(status.split()[-1])


# --- webhook sources and secrets ---------------------------------------------------------------

async def source_tenant(conn: asyncpg.Connection, source: str) -> str | None:
    return await conn.fetchval("SELECT tenant FROM webhook_sources WHERE source = $1", source)


async def claim_source(conn: asyncpg.Connection, source: str, tenant: str) -> str:
    """Create the source for ``tenant`` unless it exists; return its owner."""
    await conn.execute("INSERT INTO webhook_sources (source, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       source, tenant)
    return str(await source_tenant(conn, source))


async def active_secrets(conn: asyncpg.Connection, source: str) -> tuple[str | None, list[str]]:
    """The source's tenant and its secrets not revoked (None, [] for an unknown source)."""
    rows = await conn.fetch(
        """SELECT s.tenant, k.secret FROM webhook_sources s
           LEFT JOIN webhook_secrets k ON k.source = s.source AND k.revoked_at IS NULL
           WHERE s.source = $1""", source)
    if not rows:
        return None, []
    return rows[0]["tenant"], [r["secret"] for r in rows if r["secret"] is not None]


async def count_active_secrets(conn: asyncpg.Connection, source: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM webhook_secrets WHERE source = $1 AND revoked_at IS NULL", source))


async def add_secret(conn: asyncpg.Connection, secret_id: UUID, source: str, secret: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO webhook_secrets (secret_id, source, secret) VALUES ($1, $2, $3)
           RETURNING secret_id, source, created_at, revoked_at""", secret_id, source, secret)


async def list_secrets(conn: asyncpg.Connection, source: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT secret_id, source, created_at, revoked_at FROM webhook_secrets WHERE source = $1
           ORDER BY created_at, secret_id""", source)


async def revoke_secret(conn: asyncpg.Connection, source: str, secret_id: UUID) -> bool:
    status = await conn.execute(
        """UPDATE webhook_secrets SET revoked_at = coalesce(revoked_at, now())
           WHERE source = $1 AND secret_id = $2""", source, secret_id)
    return status != "UPDATE 0"


# --- webhook deliveries ------------------------------------------------------------------------

async def claim_delivery(conn: asyncpg.Connection, source: str, webhook_id: str, answer: dict[str, Any]) -> bool:
    """Record a delivery with its answer; False if this webhook-id was recorded before. A second
    replica receiving the same id waits here until the first commits or rolls back."""
    claimed = await conn.fetchval(
        """INSERT INTO webhook_deliveries (source, webhook_id, answer) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING true""", source, webhook_id, json.dumps(answer))
    return bool(claimed)


async def delivery_answer(conn: asyncpg.Connection, source: str, webhook_id: str) -> dict[str, Any]:
    answer = await conn.fetchval(
        "SELECT answer FROM webhook_deliveries WHERE source = $1 AND webhook_id = $2", source, webhook_id)
    return json.loads(answer)


async def known_contents(conn: asyncpg.Connection, tenant: str, content_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT content_id FROM links WHERE tenant = $1 AND content_id = ANY($2::text[])",
        tenant, content_ids)
    return {r["content_id"] for r in rows}


async def tenant_links(conn: asyncpg.Connection, tenant: str, codes: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        """SELECT code, content_id, ambassador_id, network FROM links
           WHERE tenant = $1 AND code = ANY($2::text[])""", tenant, codes)
    return {r["code"]: r for r in rows}


# --- shares ------------------------------------------------------------------------------------

async def record_share(conn: asyncpg.Connection, tenant: str, link: asyncpg.Record, network: str, post_key: str,
                       post_url: str | None, code: str) -> bool:
    """Note a share; False if this (content, ambassador, network, post) was confirmed before."""
    inserted = await conn.fetchval(
        """INSERT INTO shares (tenant, content_id, ambassador_id, network, post_key, post_url, link_code)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true""",
        tenant, link["content_id"], link["ambassador_id"], network, post_key, post_url, code)
    return bool(inserted)


async def holder_shares(conn: asyncpg.Connection, tenant: str, holder: str, limit: int) -> list[asyncpg.Record]:
    """The shares confirmed under every ambassador id this holder had, newest first."""
    return await conn.fetch(
        """SELECT s.content_id, s.network, s.link_code, s.confirmed_at FROM shares s
           JOIN ambassadors a ON a.tenant = s.tenant AND a.ambassador_id = s.ambassador_id
           WHERE s.tenant = $1 AND a.holder = $2
           ORDER BY s.confirmed_at DESC LIMIT $3""", tenant, holder, limit)


# --- ambassadors (from ambassadors.v1) ---------------------------------------------------------

async def save_ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: str, holder: str | None,
                          active: bool | None, effective_at: datetime) -> None:
    """Learn an ambassador's holder and state (``active`` None: as it was; new: active); an older
    event than the one known changes nothing."""
    await conn.execute(
        """INSERT INTO ambassadors AS a (tenant, ambassador_id, holder, active, effective_at)
           VALUES ($1, $2, $3, coalesce($4, true), $5)
           ON CONFLICT (tenant, ambassador_id) DO UPDATE
           SET holder = coalesce(excluded.holder, a.holder), active = coalesce($4, a.active),
               effective_at = excluded.effective_at
           WHERE excluded.effective_at >= a.effective_at""", tenant, ambassador_id, holder, active, effective_at)


async def ambassador(conn: asyncpg.Connection, tenant: str, ambassador_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT holder, active FROM ambassadors WHERE tenant = $1 AND ambassador_id = $2",
                               tenant, ambassador_id)


async def known_ambassadors(conn: asyncpg.Connection, tenant: str, ambassador_ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT ambassador_id FROM ambassadors WHERE tenant = $1 AND ambassador_id = ANY($2)",
                            tenant, ambassador_ids)
    return {row["ambassador_id"] for row in rows}
