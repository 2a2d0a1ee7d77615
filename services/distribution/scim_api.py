"""The SCIM 2.0 endpoints (RFC 7644) at /scim/v2: thin. Bodies are read as raw JSON so that
every error — bad JSON included — comes back as a SCIM error body, in application/scim+json; so
do an unknown path or method under /scim/ and the HTTP guard's refusals there (429, 413, a body
nested too deep), once ``install`` has wired them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def guard_refusal(status: int, detail: str) -> tuple[int, bytes, bytes]:
    """The HTTP guard's refusals under /scim/ as SCIM errors (its 422s are SCIM's 400 invalidSyntax)."""
    error = ScimError(400, detail, "invalidSyntax") if status == 422 else ScimError(status, detail)
    return error.status, scim.MEDIA_TYPE.encode(), json.dumps(error.body()).encode()


def install(app: FastAPI) -> None:
    """Wire SCIM's error shape: its own errors, the HTTP errors of any path under /scim/ (an
    unknown path: 404, a method a path has not: 405) and the guard's refusals there."""
    app.add_exception_handler(ScimError, scim_error_response)
    # FastAPI's own handler for HTTP errors: asynchronous.
    default = cast(Callable[[Request, Exception], Awaitable[Response]], app.exception_handlers[StarletteHTTPException])

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if request.url.path.startswith("/scim/"):
            return await scim_error_response(request, ScimError(error.status_code, str(error.detail),
                                                                headers=dict(error.headers or {})))
        return await default(request, error)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.guard_policy.error_shapes["/scim/"] = guard_refusal  # type: ignore[attr-defined]


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
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, an integer of 4300+ digits; depth is
        raise ScimError(400, f"the body is not valid JSON: {error}", "invalidSyntax") from None  # the guard's


@dataclass(frozen=True)
class Query:
    """A list request: from the query string (GET) or a SearchRequest body (POST .search)."""
    filter: str | None = None
    start_index: int | None = None
    count: int | None = None
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def of(cls, request: Request) -> Query:
        params = request.query_params
        return cls(params.get("filter"), _int(params.get("startIndex"), "startIndex"),
                   _int(params.get("count"), "count"), _names(params.get("attributes")),
                   _names(params.get("excludedAttributes")))

    @classmethod
    def searched(cls, body: Any) -> Query:
        if not isinstance(body, dict) or scim.SEARCH_REQUEST not in (body.get("schemas") or []):
            raise ScimError(400, f"a search body lists {scim.SEARCH_REQUEST} in 'schemas'", "invalidSyntax")
        text = body.get("filter")
        if text is not None and not isinstance(text, str):
            raise ScimError(400, "filter must be a string", "invalidFilter")
        return cls(text, _int(body.get("startIndex"), "startIndex"), _int(body.get("count"), "count"),
                   _listed(body.get("attributes"), "attributes"),
                   _listed(body.get("excludedAttributes"), "excludedAttributes"))


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value) if not isinstance(value, bool | float) else None
    except ValueError:
        number = None
    if number is None or abs(number) > 2**31 - 1:
        raise ScimError(400, f"{name} must be an integer (32 bits)", "invalidValue")
    return number


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (text or "").split(",") if a.strip())


def _listed(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScimError(400, f"{name} must be a list of attribute names", "invalidValue")
    return tuple(v.strip() for v in value if v.strip())


def _resource(request: Request, resource: dict[str, Any], status: int = 200) -> Response:
    params = request.query_params
    shown = scim.project(resource, list(_names(params.get("attributes"))),
                         list(_names(params.get("excludedAttributes"))))
    return ScimResponse(shown, status_code=status, headers={"ETag": resource["meta"]["version"],
                                                           "Location": resource["meta"]["location"]})


Lister = Callable[..., Awaitable[tuple[int, int, list[dict]]]]


async def _list(request: Request, tenant: str, lister: Lister, query: Query) -> Response:
    total, offset, resources = await lister(_pool(request), tenant, query.filter, query.start_index, query.count,
                                            _base(request))
    attributes, excluded = list(query.attributes), list(query.excluded)
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


@router.post("/.search", summary="Search Users and Groups at once with a SearchRequest body (RFC 7644 section 3.4.3)")
async def search_all(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.search_all, Query.searched(await _body(request)))


# --- Users ---------------------------------------------------------------------------------------

@router.post("/Users", status_code=201, summary="Create a user (emits hr.employee.upserted)")
async def create_user(request: Request, tenant: Tenant) -> Response:
    user = await handlers.create_user(_pool(request), tenant, await _body(request), _base(request))
    return _resource(request, user, 201)


@router.get("/Users", summary="List or filter users")
async def list_users(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.list_users, Query.of(request))


@router.post("/Users/.search", summary="Search users with a SearchRequest body (RFC 7644 section 3.4.3)")
async def search_users(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.list_users, Query.searched(await _body(request)))


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
    return await _list(request, tenant, handlers.list_groups, Query.of(request))


@router.post("/Groups/.search", summary="Search groups with a SearchRequest body (RFC 7644 section 3.4.3)")
async def search_groups(request: Request, tenant: Tenant) -> Response:
    return await _list(request, tenant, handlers.list_groups, Query.searched(await _body(request)))


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
