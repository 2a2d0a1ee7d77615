"""The SCIM 2.0 endpoints (RFC 7644) at /scim/v2: thin. Bodies are read as raw JSON so that
every error — bad JSON included — comes back as a SCIM error body, in application/scim+json."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.distribution import scim
from services.distribution.handlers import scim as handlers
from services.distribution.scim import ScimError

PREFIX = "/scim/v2"
router = APIRouter(prefix=PREFIX, tags=["scim"])


class ScimResponse(JSONResponse):
    media_type = scim.MEDIA_TYPE


async def scim_error_response(_: Request, error: Exception) -> Response:
    assert isinstance(error, ScimError)
    return ScimResponse(error.body(), status_code=error.status, headers=error.headers)


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


async def scim_tenant(request: Request) -> str:
    """The tenant of the bearer token (a per-tenant SCIM credential)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="scim"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ScimError(401, "a bearer token is required", headers=challenge)
    tenant = await handlers.tenant_for_token(_pool(request), token.strip())
    if tenant is None:
        raise ScimError(401, "unknown or revoked token", headers=challenge)
    return tenant


Tenant = Annotated[str, Depends(scim_tenant)]


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ScimError(400, f"the body is not valid JSON: {error}", "invalidSyntax") from None


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer", "invalidValue") from None


def _names(request: Request, name: str) -> list[str]:
    return [a.strip() for a in (request.query_params.get(name) or "").split(",") if a.strip()]


def _resource(request: Request, resource: dict[str, Any], status: int = 200) -> Response:
    shown = scim.project(resource, _names(request, "attributes"), _names(request, "excludedAttributes"))
    return ScimResponse(shown, status_code=status, headers={"ETag": resource["meta"]["version"],
                                                           "Location": resource["meta"]["location"]})


async def _list(request: Request, tenant: str, lister: Callable[..., Awaitable[tuple[int, int, list[dict]]]]) -> Response:
    total, offset, resources = await lister(_pool(request), tenant, request.query_params.get("filter"),
                                            _int(request, "startIndex"), _int(request, "count"), _base(request))
    attributes, excluded = _names(request, "attributes"), _names(request, "excludedAttributes")
    return ScimResponse(handlers.list_response(total, offset, [scim.project(r, attributes, excluded)
                                                               for r in resources]))


# --- discovery (no tenant data: no credentials needed) -------------------------------------------

@router.get("/ServiceProviderConfig", summary="SCIM service provider configuration")
async def service_provider_config(request: Request) -> Response:
    return ScimResponse(scim.service_provider_config(_base(request)))


@router.get("/ResourceTypes", summary="SCIM resource types")
async def resource_types(request: Request) -> Response:
    types = scim.resource_types(_base(request))
    return ScimResponse(handlers.list_response(len(types), 0, types))


@router.get("/ResourceTypes/{name}", summary="One SCIM resource type")
async def resource_type(name: str, request: Request) -> Response:
    found = [t for t in scim.resource_types(_base(request)) if t["id"] == name]
    if not found:
        raise ScimError(404, f"resource type {name} not found")
    return ScimResponse(found[0])


@router.get("/Schemas", summary="SCIM schemas")
async def schemas(request: Request) -> Response:
    documents = scim.schemas(_base(request))
    return ScimResponse(handlers.list_response(len(documents), 0, documents))


@router.get("/Schemas/{urn}", summary="One SCIM schema")
async def schema(urn: str, request: Request) -> Response:
    found = [s for s in scim.schemas(_base(request)) if s["id"] == urn]
    if not found:
        raise ScimError(404, f"schema {urn} not found")
    return ScimResponse(found[0])


# --- Users ---------------------------------------------------------------------------------------

@router.post("/Users", status_code=201, summary="Create a user (emits hr.employee.upserted)")
async def create_user(request: Request, tenant: Tenant) -> Response:
    user = await handlers.create_user(_pool(request), tenant, await _body(request), _base(request))
    return _resource(request, user, 201)


@router.get("/Users", summary="List or filter users")
async def list_users(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.list_users)


@router.get("/Users/{user_id}", summary="A user")
async def get_user(user_id: str, request: Request, tenant: Tenant) -> Response:
    user = await handlers.get_user(_pool(request), tenant, user_id, _base(request))
    if request.headers.get("if-none-match") == user["meta"]["version"]:
        return Response(status_code=304, headers={"ETag": user["meta"]["version"]})
    return _resource(request, user)


@router.put("/Users/{user_id}", summary="Replace a user")
async def replace_user(user_id: str, request: Request, tenant: Tenant) -> Response:
    user = await handlers.replace_user(_pool(request), tenant, user_id, await _body(request),
                                       request.headers.get("if-match"), _base(request))
    return _resource(request, user)


@router.patch("/Users/{user_id}", summary="Patch a user (active=false is a departure)")
async def patch_user(user_id: str, request: Request, tenant: Tenant) -> Response:
    user = await handlers.patch_user(_pool(request), tenant, user_id, await _body(request),
                                     request.headers.get("if-match"), _base(request))
    return _resource(request, user)


@router.delete("/Users/{user_id}", status_code=204, summary="Delete a user (emits hr.employee.departed)")
async def delete_user(user_id: str, request: Request, tenant: Tenant) -> Response:
    await handlers.delete_user(_pool(request), tenant, user_id, request.headers.get("if-match"))
    return Response(status_code=204)


# --- Groups --------------------------------------------------------------------------------------

@router.post("/Groups", status_code=201, summary="Create an ambassador group")
async def create_group(request: Request, tenant: Tenant) -> Response:
    group = await handlers.create_group(_pool(request), tenant, await _body(request), _base(request))
    return _resource(request, group, 201)


@router.get("/Groups", summary="List or filter groups")
async def list_groups(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.list_groups)


@router.get("/Groups/{group_id}", summary="A group")
async def get_group(group_id: str, request: Request, tenant: Tenant) -> Response:
    return _resource(request, await handlers.get_group(_pool(request), tenant, group_id, _base(request)))


@router.put("/Groups/{group_id}", summary="Replace a group")
async def replace_group(group_id: str, request: Request, tenant: Tenant) -> Response:
    group = await handlers.replace_group(_pool(request), tenant, group_id, await _body(request),
                                         request.headers.get("if-match"), _base(request))
    return _resource(request, group)


@router.patch("/Groups/{group_id}", summary="Patch a group (members add/remove)")
async def patch_group(group_id: str, request: Request, tenant: Tenant) -> Response:
    group = await handlers.patch_group(_pool(request), tenant, group_id, await _body(request),
                                       request.headers.get("if-match"), _base(request))
    return _resource(request, group)


@router.delete("/Groups/{group_id}", status_code=204, summary="Delete a group")
async def delete_group(group_id: str, request: Request, tenant: Tenant) -> Response:
    await handlers.delete_group(_pool(request), tenant, group_id, request.headers.get("if-match"))
    return Response(status_code=204)
