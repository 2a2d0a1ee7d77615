"""Tenant administration: the org tree, consent texts, SCIM credentials, ambassador groups,
erasure requests, and the effective-dated headcount."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.handlers import ambassadors
from shared.auth import Principal


class Conflict(Exception):
    pass


class OutOfScope(Exception):
    pass


class NotFound(Exception):
    pass


async def put_subsidiary(pool: asyncpg.Pool, tenant: str, code: str, name: str, parent: str | None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return dict(await repository.put_subsidiary(conn, tenant, code, name, parent))


async def subsidiaries(pool: asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await repository.subsidiaries(conn, tenant)]


async def publish_consent_text(pool: asyncpg.Pool, tenant: str, version: str, text: str,
                               reconsent_within_days: float) -> dict[str, Any]:
    """A new text in force: consents to older texts lapse after ``reconsent_within_days``
    (0: at once) unless renewed; the sweep withdraws those not renewed."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.insert_consent_text(conn, tenant, version, text, reconsent_within_days)
        if row is None:
            raise Conflict(f"consent text version {version!r} exists already: publish a new version")
        deadline = domain.reconsent_deadline(row["published_at"], reconsent_within_days)
        affected = await repository.shorten_consents(conn, tenant, version, deadline)
    return {**dict(row), "reconsent_deadline": deadline, "ambassadors_to_reconsent": affected}


async def current_consent_text(pool: asyncpg.Pool, tenant: str) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await repository.current_consent_text(conn, tenant)
    return dict(row) if row else None


async def scim_tokens(pool: asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await repository.scim_tokens(conn, tenant)]


async def revoke_scim_token(pool: asyncpg.Pool, tenant: str, token_id: uuid.UUID) -> None:
    async with pool.acquire() as conn:
        if not await repository.revoke_scim_token(conn, tenant, token_id):
            raise NotFound(str(token_id))


async def put_group(pool: asyncpg.Pool, tenant: str, name: str, employee_ids: list[str]) -> dict[str, Any]:
    """Create the group or set its members (HR ids of the tenant's current directory)."""
    async with pool.acquire() as conn, conn.transaction():
        unknown = set(employee_ids) - await repository.known_employees(conn, tenant, employee_ids)
        if unknown:
            raise NotFound(f"unknown employees: {', '.join(sorted(unknown))}")
        row = await repository.group_by_name(conn, tenant, name)
        if row is None:
            row = await repository.insert_group(conn, tenant, uuid.uuid4(), name, None)
            if row is None:  # created meanwhile
                row = await repository.group_by_name(conn, tenant, name)
        assert row is not None
        before = await repository.group_member_ids(conn, tenant, row["group_id"])
        await repository.set_group_members(conn, tenant, row["group_id"], sorted(set(employee_ids)))
        await ambassadors.refresh_profiles(conn, tenant, set(before) ^ set(employee_ids))
        return {"group_id": row["group_id"], "name": name, "members": sorted(set(employee_ids))}


async def get_group(pool: asyncpg.Pool, tenant: str, name: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repository.group_by_name(conn, tenant, name)
        if row is None:
            raise NotFound(name)
        members = await repository.group_member_ids(conn, tenant, row["group_id"])
    return {"group_id": row["group_id"], "name": name, "members": members}


async def headcount(pool: asyncpg.Pool, principal: Principal, at: datetime, subsidiary: str | None) -> dict[str, Any]:
    """Headcount and enrolled at ``at`` (each person's placement then), in a subtree; a
    subsidiary-scoped caller stays in his own subtree."""
    scope = subsidiary or principal.subsidiary
    async with pool.acquire() as conn:
        if principal.subsidiary is not None and scope not in await repository.subtree(
                conn, principal.tenant, principal.subsidiary):
            raise OutOfScope(f"{scope!r} is outside your subsidiary {principal.subsidiary!r}")
        units = await repository.subtree(conn, principal.tenant, scope) if scope else None
        row = await repository.headcount(conn, principal.tenant, at, units)
    return {"at": at, "subsidiary": scope, "headcount": row["headcount"], "enrolled": row["enrolled"]}



async def org_directory(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    """What an audience can be made of, with headcounts: the org tree, sites, countries,
    languages and groups; a subsidiary-scoped caller sees his own subtree only (the root of
    which has no parent in the answer)."""
    tenant = principal.tenant
    async with pool.acquire() as conn:
        units = await repository.subtree(conn, tenant, principal.subsidiary) if principal.subsidiary else None
        tree = await repository.subsidiaries(conn, tenant)
        facets = await repository.org_facets(conn, tenant, units)
        groups = await repository.group_headcounts(conn, tenant, units)
    counted: dict[str, list[dict[str, Any]]] = {"subsidiaries": [], "sites": [], "countries": [], "languages": []}
    for row in facets:
        if row["value"]:
            counted[row["facet"]].append({"value": row["value"], "headcount": row["headcount"],
                                          "ambassadors": row["ambassadors"]})
    people = {f["value"]: f for f in counted.pop("subsidiaries")}
    visible = [r for r in tree if units is None or r["code"] in units]
    known = {r["code"] for r in visible}
    nodes = [{"code": r["code"], "name": r["name"],
              "parent": None if r["code"] == principal.subsidiary else r["parent"]} for r in visible]
    # Codes HR places people in that the tree does not list (no tree configured yet).
    nodes += [{"code": code, "name": code, "parent": None} for code in sorted(people) if code not in known]
    for node in nodes:
        found = people.get(node["code"], {})
        node["headcount"], node["ambassadors"] = found.get("headcount", 0), found.get("ambassadors", 0)
    return {"scope": principal.subsidiary, "subsidiaries": nodes, **counted,
            "groups": [dict(g) for g in groups if units is None or g["headcount"]]}

async def put_channel_endpoint(pool: asyncpg.Pool, tenant: str, channel: str, url: str,
                               secret: str | None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return dict(await repository.put_channel_endpoint(conn, tenant, channel, url, secret))


async def channel_endpoints(pool: asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await repository.channel_endpoints(conn, tenant)]


async def delete_channel_endpoint(pool: asyncpg.Pool, tenant: str, channel: str) -> bool:
    async with pool.acquire() as conn:
        return await repository.delete_channel_endpoint(conn, tenant, channel)


async def people(pool: asyncpg.Pool, principal: Principal, query: str, limit: int, offset: int) -> dict[str, Any]:
    """The directory (people HR and SCIM told us of), searched by id, name or e-mail, with each
    one's enrolment and consent state; a subsidiary-scoped admin sees his subtree only."""
    async with pool.acquire() as conn:
        units = await repository.subtree(conn, principal.tenant, principal.subsidiary) if principal.subsidiary else None
        current = await repository.current_consent_text(conn, principal.tenant)
        rows = await repository.people(conn, principal.tenant, units, query, limit, offset)
    total = rows[0]["total"] if rows else await _count_past_page(pool, principal, units, query, offset)
    now = datetime.now(UTC)
    return {"total": total, "limit": limit, "offset": offset,
            "people": [_person(dict(r), current["version"] if current else None, now) for r in rows]}


async def _count_past_page(pool: asyncpg.Pool, principal: Principal, units: list[str] | None, query: str,
                           offset: int) -> int:
    """A page past the end has no row to carry the total: count alone (rare)."""
    if offset == 0:
        return 0
    async with pool.acquire() as conn:
        return await repository.count_people(conn, principal.tenant, units, query)


def _person(row: dict[str, Any], current_version: str | None, now: datetime) -> dict[str, Any]:
    row.pop("total", None)
    row["consent"] = domain.consent_state(row["consent_text_version"], row["consent_expires_at"], current_version, now)
    return row
