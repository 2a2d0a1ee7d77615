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


# --- sessions (backend-for-frontend) and sign-ins under way ----------------------------------

SESSION_COLUMNS = ("id_hash, kind, tenant, subject, csrf_token, access_token, access_expires_at, refresh_token, "
                   "id_token, expires_at")


async def insert_session(conn: asyncpg.Connection, session: dict[str, Any]) -> None:
    await conn.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        *(session[c.strip()] for c in SESSION_COLUMNS.split(",")))


async def session(conn: asyncpg.Connection, id_hash: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A session not past its absolute end; ``lock``: held until the transaction ends (one refresh at a time)."""
    row = await conn.fetchrow(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > now()"
                              + (" FOR UPDATE" if lock else ""), id_hash)
    return dict(row) if row else None


async def refreshed_session(conn: asyncpg.Connection, id_hash: str, access_token: str, access_expires_at: Any,
                            refresh_token: str | None, id_token: str | None) -> None:
    await conn.execute(
        """UPDATE sessions SET access_token = $2, access_expires_at = $3,
                  refresh_token = coalesce($4, refresh_token), id_token = coalesce($5, id_token)
           WHERE id_hash = $1""", id_hash, access_token, access_expires_at, refresh_token, id_token)


async def delete_session(conn: asyncpg.Connection, id_hash: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"DELETE FROM sessions WHERE id_hash = $1 RETURNING {SESSION_COLUMNS}", id_hash)
    return dict(row) if row else None


async def purge_expired(conn: asyncpg.Connection, sign_in_max_age_seconds: int) -> None:
    await conn.execute("DELETE FROM sessions WHERE expires_at <= now()")
    await conn.execute("DELETE FROM sign_ins WHERE created_at < now() - make_interval(secs => $1)",
                       float(sign_in_max_age_seconds))


async def insert_sign_in(conn: asyncpg.Connection, id_hash: str, state: str, nonce: str, code_verifier: str,
                         return_to: str | None) -> None:
    await conn.execute("INSERT INTO sign_ins (id_hash, state, nonce, code_verifier, return_to) "
                       "VALUES ($1, $2, $3, $4, $5)", id_hash, state, nonce, code_verifier, return_to)


async def take_sign_in(conn: asyncpg.Connection, id_hash: str, max_age_seconds: int) -> dict[str, Any] | None:
    """The sign-in under way of this browser, removed (a callback is answered once)."""
    row = await conn.fetchrow(
        "DELETE FROM sign_ins WHERE id_hash = $1 RETURNING state, nonce, code_verifier, return_to, "
        "created_at > now() - make_interval(secs => $2) AS fresh", id_hash, float(max_age_seconds))
    return dict(row) if row and row["fresh"] else None
