"""The web front's own use cases: the training kit and its read confirmation, the demo login."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from services.web import domain, repository
from shared.auth import Principal, issue_token


class UnknownKitVersion(Exception):
    pass


def default_kit(path: Path) -> dict[str, str]:
    """The kit of a tenant whose comms team has written none: the settings file's."""
    texts = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in texts.items()}


async def training(pool: asyncpg.Pool, principal: Principal, defaults: dict[str, str], language: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        kit = await repository.training_kit(conn, principal.tenant)
        read = await repository.read_version(conn, principal.tenant, principal.subject)
    texts = kit["texts"] if kit else defaults
    shown_language, text = domain.training_text(texts, language)
    return {"version": kit["version"] if kit else 0, "language": shown_language, "text": text, "texts": texts,
            "written_in_studio": kit is not None, "updated_by": kit["updated_by"] if kit else None,
            "read_version": read["version"] if read else None, "read_at": read["read_at"] if read else None}


async def put_training(pool: asyncpg.Pool, principal: Principal, texts: dict[str, str]) -> dict[str, Any]:
    async with pool.acquire() as conn:
        kit = await repository.put_training_kit(conn, principal.tenant, texts, principal.subject)
    return {"version": kit["version"], "texts": kit["texts"], "updated_by": kit["updated_by"],
            "updated_at": kit["updated_at"]}


async def confirm_read(pool: asyncpg.Pool, principal: Principal, version: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        kit = await repository.training_kit(conn, principal.tenant)
        current = kit["version"] if kit else 0
        if not domain.kit_version_exists(version, current):  # versions only grow: no race to fear
            raise UnknownKitVersion(f"the training kit has no version {version} (the current one is {current})")
        return await repository.record_read(conn, principal.tenant, principal.subject, version)


async def may_share(pool: asyncpg.Pool, principal: Principal) -> bool:
    async with pool.acquire() as conn:
        read = await repository.read_version(conn, principal.tenant, principal.subject)
        kit = await repository.training_kit(conn, principal.tenant)
    return domain.may_record_share(read["version"] if read else None, kit["version"] if kit else 0)


async def forget(pool: asyncpg.Pool, principal: Principal) -> None:
    async with pool.acquire() as conn:
        await repository.forget_reader(conn, principal.tenant, principal.subject)


def local_token(secret: str, audience: str | None, tenant: str, subject: str, roles: list[str],
                subsidiary: str | None, ttl_seconds: int, issuer: str | None = None) -> str:
    """The demo's HS256 token (with the expected issuer when one is configured: the verifiers ask for it)."""
    return issue_token(secret, subject=subject, tenant=tenant, roles=roles, subsidiary=subsidiary,
                       audience=audience or "portevoix", issuer=issuer, ttl_seconds=ttl_seconds)

