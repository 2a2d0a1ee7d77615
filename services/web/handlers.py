"""The web front's own use cases: the training kit and its read confirmation, the demo login,
and an ambassador's own results (read from reporting on his behalf)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.web import domain, repository
from shared.auth import Principal, issue_token


class NotConfigured(Exception):
    pass


class UnknownKitVersion(Exception):
    pass


class NotEnrolled(Exception):
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
    return domain.may_record_share(read["version"] if read else None)


async def forget(pool: asyncpg.Pool, principal: Principal) -> None:
    async with pool.acquire() as conn:
        await repository.forget_reader(conn, principal.tenant, principal.subject)


def local_token(secret: str, audience: str | None, tenant: str, subject: str, roles: list[str],
                subsidiary: str | None, ttl_seconds: int) -> str:
    return issue_token(secret, subject=subject, tenant=tenant, roles=roles, subsidiary=subsidiary,
                       audience=audience or "portevoix", ttl_seconds=ttl_seconds)


async def my_results(client: httpx.AsyncClient, bases: dict[str, str], authorization: str, principal: Principal,
                     reader_token: str | None) -> dict[str, Any]:
    """The caller's own KPIs and the ambassadors' leaderboard. Reporting lets only staff read
    KPIs, so the web front asks it with a reader credential, for this ambassador's scope only:
    his pseudonymous id comes from distribution, asked with his own token."""
    if reader_token is None:
        raise NotConfigured("ambassador results need PORTEVOIX_JWT_HS256_SECRET (or a reporting reader token)")
    consent = await client.get(f"{bases['distribution']}/v1/me/consent", headers={"authorization": authorization})
    consent.raise_for_status()
    enrolment = consent.json().get("enrolment")
    if not enrolment:
        raise NotEnrolled(principal.subject)
    ambassador_id = enrolment["ambassador_id"]
    staff = {"authorization": f"Bearer {reader_token}"}
    kpis = await client.get(f"{bases['reporting']}/v1/kpis", headers=staff,
                            params={"scope_type": "ambassador", "scope_id": ambassador_id})
    kpis.raise_for_status()
    board = await client.get(f"{bases['reporting']}/v1/kpis/leaderboards/ambassadors", headers=staff,
                             params={"kpi": "shares", "top": 10})
    board.raise_for_status()
    return {"ambassador_id": ambassador_id, "kpis": kpis.json()["kpis"],
            "leaderboard": [{**e, "me": e["id"] == ambassador_id} for e in board.json()["entries"]]}
