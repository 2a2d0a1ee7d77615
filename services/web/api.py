"""The web front's HTTP API: the pages, the training kit, the ambassador's results, and the
same-origin proxy to the four services (signing in: ``auth_api``). Thin: each route calls one
handler. Callers are a browser session (cookie + CSRF token) or a bearer client (``sessions``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from services.web import domain, handlers, proxy, sessions
from services.web.models import (
    FrontConfig,
    Me,
    ReadConfirmation,
    ReadRecorded,
    TrainingKit,
    TrainingKitRequest,
    TrainingKitWritten,
)
from shared.auth import Principal, require

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "hub.html", "/studio": "studio.html", "/dashboard": "dashboard.html", "/watch": "watch.html",
         "/admin": "admin.html", "/login": "login.html"}

pages = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/web", tags=["web"])
gateway = APIRouter(prefix="/api", tags=["proxy"])

Anyone = Annotated[Principal, Depends(require(source=sessions.principal))]
Employee = Annotated[Principal, Depends(require("employee", source=sessions.principal))]
Author = Annotated[Principal, Depends(require("editor", "admin", source=sessions.principal))]


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


def _settings(request: Request):  # noqa: ANN202
    return request.app.state.settings


def _client(request: Request) -> httpx.AsyncClient:
    return request.app.state.http


def _page(name: str):  # noqa: ANN202
    async def page() -> FileResponse:
        # no-cache: a new release's pages are picked up at once (they are small).
        return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
    return page


for route, file in PAGES.items():
    pages.add_api_route(route, _page(file), methods=["GET"])


@pages.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/config", response_model=FrontConfig, summary="What the pages need to know about this front")
async def config(request: Request) -> dict:
    s = _settings(request)
    return {"local_login": s.web_local_login and s.jwt_hs256_secret is not None,
            "oidc": getattr(request.app.state, "oidc", None) is not None,
            "kpi_poll_seconds": s.web_kpi_poll_seconds}


@router.get("/me", response_model=Me, summary="Who is signed in: roles, scope, display language, landing page and "
            "the pages these roles may open")
async def me(principal: Anyone, request: Request) -> dict:
    roles = sorted(principal.roles)
    return {"subject": principal.subject, "tenant": principal.tenant, "roles": roles,
            "subsidiary": principal.subsidiary,
            "language": domain.language_of(request.headers.get("accept-language")),
            "landing": domain.landing(roles),
            "pages": [{"page": page, "path": domain.PAGES[page][0], "roles": sorted(domain.PAGES[page][1]),
                       "allowed": page in domain.pages_for(roles)} for page in domain.NAVIGATION]}


@router.get("/training", response_model=TrainingKit, summary="The tenant's charter and training kit, in the "
            "caller's language, and whether he confirmed reading it")
async def training(principal: Anyone, request: Request,
                   lang: Annotated[str | None, Query(max_length=35)] = None) -> dict:
    language = domain.language_of(lang or request.headers.get("accept-language"))
    return await handlers.training(_pool(request), principal, request.app.state.default_kit, language)


@router.put("/training", response_model=TrainingKitWritten, summary="Write the tenant's training kit (studio)")
async def put_training(body: TrainingKitRequest, principal: Author, request: Request) -> dict:
    if principal.subsidiary is not None:
        raise HTTPException(403, "the training kit is the tenant's: requires a group-level editor")
    return await handlers.put_training(_pool(request), principal, body.texts)


@router.post("/training/read", response_model=ReadRecorded, summary="I have read the training kit",
             responses={422: {"description": "A version the kit never had (reason unknown_version)"}})
async def confirm_read(body: ReadConfirmation, principal: Employee, request: Request) -> dict:
    try:
        return await handlers.confirm_read(_pool(request), principal, body.version)
    except handlers.UnknownKitVersion as error:
        raise HTTPException(422, {"reason": "unknown_version", "message": str(error)}) from None


@router.get("/me/results", summary="My shares, clicks, reactions and reach, and the ambassadors' leaderboard: "
            "reporting's GET /v1/me/results, asked with the caller's own token (no other credential)",
            responses={404: {"description": "Not enrolled"}, 502: {"description": "Reporting unavailable"}})
async def my_results(principal: Employee, request: Request) -> Response:
    return await proxy.forward(_client(request), request.app.state.bases, "reporting", "v1/me/results", request,
                               (await sessions.caller(request)).authorization)


# Not in this OpenAPI document: it forwards to the four services, whose documents describe the
# calls (and FastAPI would name one route with five methods non-deterministically).
@gateway.api_route("/{service}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   summary="Same-origin proxy to content, distribution, tracking or reporting",
                   include_in_schema=False)
async def forward(service: str, path: str, request: Request) -> Response:
    pool = _pool(request)
    authorization = None
    principal: Principal | None = None
    if request.headers.get("authorization") is None and sessions.read_cookie(sessions.SESSION_COOKIE, request):
        caller = await sessions.caller(request)  # the browser's session: its bearer, CSRF-checked
        authorization, principal = caller.authorization, caller.principal
    if domain.is_share_confirmation(service, request.method, path) or _is_erasure(service, request.method, path):
        principal = principal or (await sessions.caller(request)).principal
    if (domain.is_share_confirmation(service, request.method, path) and principal is not None
            and not await handlers.may_share(pool, principal)):
        return JSONResponse({"detail": {"reason": "training_not_read",
                                        "message": "read the charter and training kit before your first share"}}, 409)
    answer = await proxy.forward(_client(request), request.app.state.bases, service, path, request, authorization)
    if principal is not None and _is_erasure(service, request.method, path) and answer.status_code == 200:
        await handlers.forget(pool, principal)
    return answer


def _is_erasure(service: str, method: str, path: str) -> bool:
    return service == "distribution" and method == "POST" and path.strip("/") == "v1/me/erasure"
