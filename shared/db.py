"""PostgreSQL: one asyncpg pool per service, confined to the service's own schema, and its
numbered SQL migrations applied at start-up (recorded, idempotent, safe from two replicas)."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
MIGRATION_NAME = re.compile(r"^(\d{3,})_[\w-]+\.sql$")
SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


async def create_pool(dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see only ``schema`` (then ``public`` for extensions)."""
    _check_schema(schema)
    await _ensure_schema(dsn, schema)
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, reset=_keep_session,
        server_settings={"search_path": f"{schema},public", "application_name": f"portevoix-{schema}"},
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool without asyncpg's reset query, a round trip on every
    release (every request and batch): asyncpg still rolls back an open transaction and drops
    the listeners. Our code keeps no other session state: advisory locks are transaction-scoped
    (but the migrations', released in their ``finally``), nothing is SET for the session, and
    the outbox relay unlistens before giving its connection back."""


async def _ensure_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # A role that owns only its schema (no CREATE on the database) may not even run CREATE SCHEMA
        # IF NOT EXISTS: look first.
        if await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
            return
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # another replica created it at the same instant
    finally:
        await conn.close()


def _check_schema(schema: str) -> None:
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")


def discover(folder: Path) -> list[tuple[int, str, str]]:
    """The migrations in ``folder``: (version, file name, SQL), in order, versions unique."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNN_description.sql")
        found.append((int(match.group(1)), path.name, path.read_text()))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {folder}")
    return found


async def migrate(pool: asyncpg.Pool, schema: str, folder: Path) -> list[str]:
    """Apply the mechanism tables (outbox, inbox) then the service's own migrations from
    ``folder``, those not yet recorded; return the names applied now.

    A session advisory lock per schema serialises replicas starting together; each migration
    runs in its own transaction with its record, so a failure leaves nothing half-applied.
    """
    _check_schema(schema)
    migrations = [("shared", *m) for m in discover(SHARED_TABLES)] + [("service", *m) for m in discover(folder)]
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        try:
            await conn.execute(f"""
                CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
                    component text NOT NULL,
                    version integer NOT NULL,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (component, version))""")
            done = {(r["component"], r["version"]): r for r in await conn.fetch(
                f'SELECT component, version, name, checksum FROM "{schema}".schema_migrations')}
            for component, version, name, sql in migrations:
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if (component, version) in done:
                    if done[(component, version)]["checksum"] != checksum:
                        log.warning("migration %s changed after it was applied; not re-run", name)
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    await conn.execute(sql)
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (component, version, name, checksum)'
                        ' VALUES ($1, $2, $3, $4)', component, version, name, checksum)
                applied_now.append(name)
                log.info("applied migration %s: %s/%s", schema, component, name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrate:{schema}")
    return applied_now


SHARED_TABLES = Path(__file__).parent / "migrations"
