"""All of the tracking service's SQL."""

from __future__ import annotations

from datetime import timedelta

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


async def mark_click(conn: asyncpg.Connection, code: str, client: bytes, window: timedelta) -> bool:
    """Note a client's click on a code; return True if it opens a new window (a unique click).
    One statement, so two replicas seeing the same client at once count it once."""
    opened = await conn.fetchval(
        """INSERT INTO recent_clicks AS r (code, client, window_start) VALUES ($1, $2, now())
           ON CONFLICT (code, client) DO UPDATE SET window_start = now()
           WHERE r.window_start <= now() - $3::interval
           RETURNING true""", code, client, window)
    return bool(opened)


async def forget_click(conn: asyncpg.Connection, code: str, client: bytes) -> None:
    """Undo :func:`mark_click` when the click could not be recorded, so its retry still counts."""
    await conn.execute("DELETE FROM recent_clicks WHERE code = $1 AND client = $2", code, client)


async def prune_clicks(conn: asyncpg.Connection, window: timedelta) -> int:
    status = await conn.execute("DELETE FROM recent_clicks WHERE window_start <= now() - $1::interval", window)
    return int(status.split()[-1])
