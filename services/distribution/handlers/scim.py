"""The SCIM 2.0 server's use cases. A user change is kept as the IdP's resource (what SCIM
reads back) and emitted as an ``hr.employee.upserted`` / ``hr.employee.departed`` event on
``hr.employees.v1`` through the outbox: the directory learns it by consuming that topic, exactly
as from an HR system — one truth. Groups are the ambassador groups used for targeting."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from services.distribution import domain, repository, scim
from services.distribution.handlers import ambassadors
from services.distribution.scim import ScimError
from shared import outbox, topics
from shared.envelope import new_event
from shared.events import EmployeeDeparted, EmployeeUpserted

SOURCE = "portevoix/scim"


# --- credentials ---------------------------------------------------------------------------------

def token_hash(token: str) -> bytes:
    # 256 random bits: a plain SHA-256 is enough (nothing to brute-force), and lets us look it up.
    return hashlib.sha256(token.encode()).digest()


async def tenant_for_token(pool: asyncpg.Pool, token: str) -> str | None:
    async with pool.acquire() as conn:
        return await repository.tenant_of_scim_token(conn, token_hash(token))


async def issue_token(pool: asyncpg.Pool, tenant: str, description: str) -> dict[str, Any]:
    """A new token, shown once: only its hash is stored."""
    token = "scim_" + secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        row = await repository.insert_scim_token(conn, tenant, uuid.uuid4(), token_hash(token), description)
    return {**dict(row), "token": token}


# --- helpers -------------------------------------------------------------------------------------

def etag(version: int) -> str:
    return f'W/"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    if etag(version) not in [t.strip() for t in if_match.split(",")]:
        raise ScimError(412, f"the resource changed: its version is now {etag(version)}")


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ScimError(404, f"{what} {value!r} not found") from None


def _meta(kind: str, row: Any, base: str, path: str) -> dict[str, Any]:
    return {"resourceType": kind, "created": row["created_at"].isoformat(),
            "lastModified": row["updated_at"].isoformat(), "location": f"{base}/{path}/{row['id']}",
            "version": etag(row["version"])}


def user_resource(row: dict[str, Any], base: str) -> dict[str, Any]:
    resource = {k: v for k, v in row["resource"].items() if k != "password"}
    schemas = [scim.USER] + ([scim.ENTERPRISE] if scim.ENTERPRISE in resource else [])
    return {"schemas": schemas, "id": str(row["id"]), **resource, "meta": _meta("User", row, base, "Users")}


def page(start_index: int | None, count: int | None) -> tuple[int, int]:
    """(offset, limit) from SCIM's 1-based startIndex and count (RFC 7644 section 3.4.2.4)."""
    start = max(start_index or 1, 1)
    limit = min(max(count if count is not None else 100, 0), scim.MAX_RESULTS)
    return start - 1, limit


def parse_filter(text: str | None) -> domain.Filter | None:
    try:
        return domain.parse_filter(text) if text else None
    except domain.InvalidFilter as error:
        raise ScimError(400, str(error), "invalidFilter") from None


def list_response(total: int, offset: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [scim.LIST], "totalResults": total, "startIndex": offset + 1,
            "itemsPerPage": len(resources), "Resources": resources}


# --- users ---------------------------------------------------------------------------------------

async def _emit(conn: asyncpg.Connection, tenant: str, employee_id: str, resource: dict[str, Any] | None) -> None:
    """The HR event for the user's new state (None or inactive: a departure). Versions are
    milliseconds, raised past the last one SCIM emitted: increasing even across deletions."""
    version = await repository.next_scim_version(conn, tenant, employee_id, int(time.time() * 1000))
    now = datetime.now(UTC)
    if resource is None or not scim.is_active(resource):
        event_type, data = "hr.employee.departed", EmployeeDeparted(employee_id=employee_id, effective_at=now,
                                                                     version=version)
    else:
        record = scim.employee_record(resource, employee_id, await _manager_id(conn, tenant, resource))
        configured, known = await repository.subsidiary_status(conn, tenant, record["subsidiary"])
        if configured and not known:
            raise ScimError(400, f"organization {record['subsidiary']!r} is not a subsidiary of this tenant "
                                 "(enterprise extension 'organization' names the subsidiary's code)", "invalidValue")
        try:
            data = EmployeeUpserted(**record, effective_at=now, version=version)  # type: ignore[assignment]
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ScimError(400, f"the user cannot be a directory entry: {problems}", "invalidValue") from None
        event_type = "hr.employee.upserted"
    await outbox.enqueue(conn, topics.HR_EMPLOYEES, new_event(
        event_type, source=SOURCE, subject=employee_id, tenant=tenant, data=data))


async def _manager_id(conn: asyncpg.Connection, tenant: str, resource: dict[str, Any]) -> str | None:
    """The manager's HR id: a manager given by SCIM id is looked up, else taken as an HR id."""
    reference = scim.manager_reference(resource)
    if reference is None:
        return None
    try:
        rows = await repository.scim_users_by_ids(conn, tenant, [uuid.UUID(reference)])
    except ValueError:
        return reference
    return rows[0]["employee_id"] if rows else reference


async def create_user(pool: asyncpg.Pool, tenant: str, body: Any, base: str) -> dict[str, Any]:
    resource = scim.canonical(scim.USERS, body)
    scim.require_user_name(resource)
    employee_id = scim.employee_id_for(resource)
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.insert_scim_user(conn, tenant, uuid.uuid4(), employee_id, resource)
        if row is None:
            raise ScimError(409, "a user with this userName (or HR id) exists already", "uniqueness")
        await _emit(conn, tenant, employee_id, resource)
    return user_resource(row, base)


async def get_user(pool: asyncpg.Pool, tenant: str, user_id: str, base: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repository.scim_user(conn, tenant, _uuid(user_id, "User"))
    if row is None:
        raise ScimError(404, f"User {user_id} not found")
    return user_resource(row, base)


async def _change_user(pool: asyncpg.Pool, tenant: str, user_id: str, if_match: str | None, base: str,
                       change: Any) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.scim_user(conn, tenant, _uuid(user_id, "User"), for_update=True)
        if row is None:
            raise ScimError(404, f"User {user_id} not found")
        check_if_match(if_match, row["version"])
        resource = change(row["resource"])
        scim.require_user_name(resource)
        updated = await repository.replace_scim_user(conn, tenant, row["id"], resource)
        if updated is None:
            raise ScimError(409, "another user has this userName", "uniqueness")
        await _emit(conn, tenant, row["employee_id"], resource)
    return user_resource(updated, base)


async def replace_user(pool: asyncpg.Pool, tenant: str, user_id: str, body: Any, if_match: str | None,
                       base: str) -> dict[str, Any]:
    resource = scim.canonical(scim.USERS, body)
    return await _change_user(pool, tenant, user_id, if_match, base, lambda _: resource)


async def patch_user(pool: asyncpg.Pool, tenant: str, user_id: str, body: Any, if_match: str | None,
                     base: str) -> dict[str, Any]:
    return await _change_user(pool, tenant, user_id, if_match, base,
                              lambda current: scim.apply_patch(scim.USERS, current, body))


async def delete_user(pool: asyncpg.Pool, tenant: str, user_id: str, if_match: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.scim_user(conn, tenant, _uuid(user_id, "User"), for_update=True)
        if row is None:
            raise ScimError(404, f"User {user_id} not found")
        check_if_match(if_match, row["version"])
        await repository.delete_scim_user(conn, tenant, row["id"])
        await _emit(conn, tenant, row["employee_id"], None)


async def list_users(pool: asyncpg.Pool, tenant: str, filter_text: str | None, start_index: int | None,
                     count: int | None, base: str) -> tuple[int, int, list[dict[str, Any]]]:
    where = parse_filter(filter_text)
    offset, limit = page(start_index, count)
    async with pool.acquire() as conn:
        try:
            total, rows = await repository.list_scim_users(conn, tenant, where, offset, limit)
        except domain.InvalidFilter as error:
            raise ScimError(400, str(error), "invalidFilter") from None
    return total, offset, [user_resource(r, base) for r in rows]


# --- groups --------------------------------------------------------------------------------------

async def _group_resource(conn: asyncpg.Connection, tenant: str, row: asyncpg.Record, base: str) -> dict[str, Any]:
    employee_ids = await repository.group_member_ids(conn, tenant, row["group_id"])
    users = await repository.scim_users_by_employee(conn, tenant, employee_ids)
    resource: dict[str, Any] = {"schemas": [scim.GROUP], "id": str(row["group_id"]), "displayName": row["name"]}
    if row["external_id"]:
        resource["externalId"] = row["external_id"]
    resource["members"] = [{"value": str(u["id"]), "type": "User",
                            "$ref": f"{base}/Users/{u['id']}"} for u in sorted(users, key=lambda u: str(u["id"]))]
    resource["meta"] = _meta("Group", {**dict(row), "id": row["group_id"]}, base, "Groups")
    return resource


def _member_id(member: dict[str, Any]) -> uuid.UUID:
    """A member's User id: its value, else the last segment of its $ref. Members are Users:
    targeting reaches people, and a nested group would make membership a graph walk."""
    ref = member.get("$ref")
    if str(member.get("type", "")).lower() == "group" or (isinstance(ref, str) and "/groups/" in ref.lower()):
        raise ScimError(400, "a Group cannot be a member (nested groups are not supported): members are Users",
                        "invalidValue")
    value = member.get("value") or (ref.rstrip("/").rsplit("/", 1)[-1] if isinstance(ref, str) else None)
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ScimError(400, f"member {value!r} is not a User id", "invalidValue") from None


async def _member_employee_ids(conn: asyncpg.Connection, tenant: str, resource: dict[str, Any]) -> list[str]:
    ids = [_member_id(m) for m in resource.get("members") or []]
    rows = await repository.scim_users_by_ids(conn, tenant, ids)
    if len(rows) != len(set(ids)):
        missing = set(ids) - {r["id"] for r in rows}
        raise ScimError(400, f"unknown members: {', '.join(sorted(map(str, missing)))}", "invalidValue")
    return [r["employee_id"] for r in rows]


async def create_group(pool: asyncpg.Pool, tenant: str, body: Any, base: str) -> dict[str, Any]:
    resource = scim.canonical(scim.GROUPS, body)
    name = scim.require_display_name(resource)
    async with pool.acquire() as conn, conn.transaction():
        members = await _member_employee_ids(conn, tenant, resource)
        row = await repository.insert_group(conn, tenant, uuid.uuid4(), name, resource.get("externalId"))
        if row is None:
            raise ScimError(409, f"a group named {name!r} exists already", "uniqueness")
        await repository.set_group_members(conn, tenant, row["group_id"], members)
        await ambassadors.refresh_profiles(conn, tenant, members)
        return await _group_resource(conn, tenant, row, base)


async def get_group(pool: asyncpg.Pool, tenant: str, group_id: str, base: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repository.group(conn, tenant, _uuid(group_id, "Group"))
        if row is None:
            raise ScimError(404, f"Group {group_id} not found")
        return await _group_resource(conn, tenant, row, base)


async def _change_group(pool: asyncpg.Pool, tenant: str, group_id: str, if_match: str | None, base: str,
                        change: Any) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.group(conn, tenant, _uuid(group_id, "Group"), for_update=True)
        if row is None:
            raise ScimError(404, f"Group {group_id} not found")
        check_if_match(if_match, row["version"])
        current = await _group_resource(conn, tenant, row, base)
        resource = change({k: v for k, v in current.items() if k not in ("schemas", "id", "meta")})
        name = scim.require_display_name(resource)
        members = await _member_employee_ids(conn, tenant, resource)
        updated = await repository.update_group(conn, tenant, row["group_id"], name, resource.get("externalId"))
        if updated is None:
            raise ScimError(409, f"a group named {name!r} exists already", "uniqueness")
        before = await repository.group_member_ids(conn, tenant, row["group_id"])
        await repository.set_group_members(conn, tenant, row["group_id"], members)
        await ambassadors.refresh_profiles(conn, tenant, set(before) ^ set(members))
        return await _group_resource(conn, tenant, updated, base)


async def replace_group(pool: asyncpg.Pool, tenant: str, group_id: str, body: Any, if_match: str | None,
                        base: str) -> dict[str, Any]:
    resource = scim.canonical(scim.GROUPS, body)
    return await _change_group(pool, tenant, group_id, if_match, base, lambda _: resource)


async def patch_group(pool: asyncpg.Pool, tenant: str, group_id: str, body: Any, if_match: str | None,
                      base: str) -> dict[str, Any]:
    return await _change_group(pool, tenant, group_id, if_match, base,
                               lambda current: scim.apply_patch(scim.GROUPS, current, body))


async def delete_group(pool: asyncpg.Pool, tenant: str, group_id: str, if_match: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.group(conn, tenant, _uuid(group_id, "Group"), for_update=True)
        if row is None:
            raise ScimError(404, f"Group {group_id} not found")
        check_if_match(if_match, row["version"])
        members = await repository.delete_group(conn, tenant, row["group_id"])
        await ambassadors.refresh_profiles(conn, tenant, members)


async def search_all(pool: asyncpg.Pool, tenant: str, filter_text: str | None, start_index: int | None,
                     count: int | None, base: str) -> tuple[int, int, list[dict[str, Any]]]:
    """A search from the root (RFC 7644 section 3.4.3): Users, then Groups, paged as one list. A
    filter naming an attribute one type has not matches none of that type."""
    where = parse_filter(filter_text)
    offset, limit = page(start_index, count)
    async with pool.acquire() as conn:
        try:
            users_total, users = await repository.list_scim_users(conn, tenant, where, offset, limit)
        except domain.InvalidFilter:
            users_total, users = 0, []
        try:
            groups_total, groups = await repository.list_groups(conn, tenant, where, max(offset - users_total, 0),
                                                                limit - len(users))
        except domain.InvalidFilter:
            groups_total, groups = 0, []
        resources = [user_resource(r, base) for r in users] + [await _group_resource(conn, tenant, r, base)
                                                                for r in groups]
    return users_total + groups_total, offset, resources


async def list_groups(pool: asyncpg.Pool, tenant: str, filter_text: str | None, start_index: int | None,
                      count: int | None, base: str) -> tuple[int, int, list[dict[str, Any]]]:
    where = parse_filter(filter_text)
    offset, limit = page(start_index, count)
    async with pool.acquire() as conn:
        try:
            total, rows = await repository.list_groups(conn, tenant, where, offset, limit)
        except domain.InvalidFilter as error:
            raise ScimError(400, str(error), "invalidFilter") from None
        return total, offset, [await _group_resource(conn, tenant, r, base) for r in rows]
