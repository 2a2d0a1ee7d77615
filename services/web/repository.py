"""All the web front's SQL (schema ``web``): the tenants' training kits and read confirmations."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def training_kit(conn: asyncpg.Connection, tenant: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT version, texts, updated_by, updated_at FROM training_kits WHERE tenant = $1",
                              tenant)
    return None if row is None else {**dict(row), "texts": json.loads(row["texts"])}


async def put_training_kit(conn: asyncpg.Connection, tenant: str, texts: dict[str, str], author: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        """INSERT INTO training_kits (tenant, version, texts, updated_by) VALUES ($1, 1, $2::jsonb, $3)
           ON CONFLICT (tenant) DO UPDATE SET version = training_kits.version + 1, texts = EXCLUDED.texts,
                                              updated_by = EXCLUDED.updated_by, updated_at = now()
           RETURNING version, texts, updated_by, updated_at""",
        tenant, json.dumps(texts), author)
    return {**dict(row), "texts": json.loads(row["texts"])}


async def read_version(conn: asyncpg.Connection, tenant: str, subject: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT version, read_at FROM training_reads WHERE tenant = $1 AND subject = $2",
                              tenant, subject)
    return dict(row) if row else None


async def record_read(conn: asyncpg.Connection, tenant: str, subject: str, version: int) -> dict[str, Any]:
    row = await conn.fetchrow(
        """INSERT INTO training_reads (tenant, subject, version) VALUES ($1, $2, $3)
           ON CONFLICT (tenant, subject) DO UPDATE SET version = EXCLUDED.version, read_at = now()
           RETURNING version, read_at""", tenant, subject, version)
    return dict(row)


async def forget_reader(conn: asyncpg.Connection, tenant: str, subject: str) -> None:
    """Erasure: the read confirmation is personal data too."""
    await conn.execute("DELETE FROM training_reads WHERE tenant = $1 AND subject = $2", tenant, subject)
