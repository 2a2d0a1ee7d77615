"""Tracking's HTTP API: the redirector, engagement webhooks, share confirmations and the
webhook secrets' administration. Thin: each route calls one handler."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.tracking import domain, handlers
from services.tracking.domain import SignatureRejected
from services.tracking.models import (
    MyShares,
    NewWebhookSecret,
    ShareConfirmation,
    ShareRecorded,
    WebhookAnswer,
    WebhookBatch,
    WebhookSecret,
)
from shared import metrics
from shared.auth import Principal, require
from shared.service import raw_body

router = APIRouter(tags=["redirector"])
webhooks = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
admin = APIRouter(prefix="/v1/webhook-sources", tags=["webhook sources"])
shares = APIRouter(prefix="/v1/shares", tags=["shares"])
Admin = Annotated[Principal, Depends(require("admin"))]
Employee = Annotated[Principal, Depends(require("employee"))]

NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title></head>
<body><h1>Link not found</h1><p>This link does not exist or is no longer available.</p></body></html>
"""


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.service.pool


def _refusal(status: int, reason: str, message: str) -> HTTPException:
    return HTTPException(status, {"reason": reason, "message": message})


# --- the redirector ----------------------------------------------------------------------------

REDIRECT_RESPONSES: dict[int | str, dict[str, object]] = {
    302: {"description": "To the link's stored destination, UTM parameters appended"},
    404: {"description": "Unknown or malformed code", "content": {"text/html": {}}}}


@router.get(
    "/r/{code}", status_code=302, response_class=RedirectResponse, responses=REDIRECT_RESPONSES,
    summary="Follow a tracked link: count the click, redirect to the destination with UTM parameters",
    description="The click is stored with its engagement event in one transaction; Kafka gets it from there, "
                "so the redirect does not depend on Kafka being up.")
async def follow(code: str, request: Request) -> Response:
    # Served by RedirectFastPath in the running service; this route documents it (and serves it
    # in an app built without the fast path).
    status, headers, body = await answer_click(request.app.state.redirector, code, request.scope, request.method)
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


@router.head("/r/{code}", status_code=302, response_class=RedirectResponse, responses=REDIRECT_RESPONSES,
             summary="What GET would answer, for link-preview tools; counted as a non-human click")
async def preview(code: str, request: Request) -> Response:
    return await follow(code, request)


NOT_FOUND_BODY = NOT_FOUND_PAGE.encode()
NO_STORE = (b"cache-control", b"no-store")  # every click must reach us to be counted
NOT_FOUND_HEADERS = [(b"content-length", str(len(NOT_FOUND_BODY)).encode()),
                     (b"content-type", b"text/html; charset=utf-8"), NO_STORE]


async def answer_click(redirector: handlers.Redirector, code: str, scope: Scope,
                       method: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The redirector's answer to a click: status, raw headers, body."""
    client = scope.get("client")
    user_agent = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"user-agent"), None)
    click = handlers.Click(code=code, ip=client[0] if client else "", user_agent=user_agent, preview=method == "HEAD")
    try:
        location = await redirector.follow(click)
    except handlers.UnknownLink:
        return 404, NOT_FOUND_HEADERS, NOT_FOUND_BODY
    return 302, [(b"content-length", b"0"), NO_STORE, (b"location", location.encode())], b""


class RedirectFastPath:
    """Pure ASGI, in front of FastAPI: GET and HEAD under /r/ answered without routing, request
    validation and response objects, which took most of a redirect's CPU (see
    bench/results/tracking.md). Same answers as the routes above, same request metrics. Paths
    that are no valid code (a slash, control characters) get the 404 page, as they would there."""

    ROUTE = "/r/{code}"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not scope["path"].startswith("/r/"):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        try:
            status, headers, body = await answer_click(scope["app"].state.redirector, scope["path"][3:], scope,
                                                       scope["method"])
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})  # the server drops it for HEAD
        finally:
            requests, latency = self._metrics(scope["method"], status)
            requests.inc()
            latency.observe(time.perf_counter() - started)

    def _metrics(self, method: str, status: int) -> tuple[Any, Any]:
        if (method, status) not in self.metrics:
            self.metrics[(method, status)] = (metrics.HTTP_REQUESTS.labels(method, self.ROUTE, str(status)),
                                              metrics.HTTP_LATENCY.labels(method, self.ROUTE))
        return self.metrics[(method, status)]


def link_not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers={"Cache-Control": "no-store"})


async def not_found_page(request: Request, error: Exception) -> Response:
    """People follow links in browsers: a path under /r/ that matches no route at all (slashes
    or control characters in the code) gets the same page as an unknown code."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (404, 405) and request.url.path.startswith("/r/"):
        return link_not_found()
    return await http_exception_handler(request, error)


# --- engagement webhooks -----------------------------------------------------------------------

@webhooks.post(
    "/{source}", status_code=202, response_model=WebhookAnswer,
    summary="Engagements from a connector: a signed batch, each event validated on its own",
    description="Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`: "
                "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with one of the source's secrets), 5-minute "
                "tolerance. Body: `{\"events\": [{\"type\": \"reaction|comment|reshare|impression|click\", "
                "\"content_id\", \"network\", \"count\", \"ambassador_id\"?, \"link_code\"?, \"occurred_at\"}]}`. "
                "202 once the accepted events are stored (with the webhook-id, in one transaction; published to "
                "Kafka right after); the answer lists the rejected ones. A webhook-id already accepted, even "
                "by a call whose answer was lost in a crash, gets its first answer again, `duplicate: true`, "
                "counting nothing.",
    responses={400: {"description": "Not a batch (not JSON, no events list)"},
               401: {"description": "Signature missing, not matching, or timestamp outside the tolerance"},
               413: {"description": "Body or event count over the limit"},
               422: {"description": "Every event rejected: nothing recorded (the answer lists why); or a body the "
                                    "HTTP guard refuses (NUL characters)",
                     "content": {"application/json": {"schema": {"anyOf": [
                         {"$ref": "#/components/schemas/WebhookAnswer"},
                         {"$ref": "#/components/schemas/HTTPValidationError"}]}}}},
               503: {"description": "Storage unavailable: nothing recorded, retry after Retry-After"}},
    openapi_extra=raw_body(WebhookBatch))
async def receive(source: str, request: Request) -> WebhookAnswer | JSONResponse:
    settings = request.app.state.service.settings
    body = await request.body()  # its size is bounded by the HTTP guard (http_max_body_bytes / http_body_limits)
    call = handlers.WebhookCall(source=source, webhook_id=request.headers.get("webhook-id"),
                                timestamp=request.headers.get("webhook-timestamp"),
                                signatures=request.headers.get("webhook-signature"), body=body)
    try:
        return await handlers.receive_webhook(_pool(request), call, known=request.app.state.known_contents,
                                              max_events=settings.webhook_max_events)
    except SignatureRejected as error:
        metrics.WEBHOOK_SIGNATURE_FAILURES.labels("engagements").inc()
        raise _refusal(401, "signature", str(error)) from None
    except handlers.MalformedBatch as error:
        raise _refusal(400, "malformed", str(error)) from None
    except handlers.BatchTooLarge as error:
        raise _refusal(413, "too_large", str(error)) from None
    except handlers.NothingAccepted as error:
        return JSONResponse(error.answer.model_dump(mode="json"), status_code=422)


# --- webhook secrets ---------------------------------------------------------------------------

def _group_level(principal: Principal) -> None:
    if principal.subsidiary is not None:
        raise _refusal(403, "group_level", "webhook sources are managed at group level")


# Source names are global (the webhook URL carries no tenant): 2 to 63 of a-z 0-9 _ -, starting
# with a letter or digit. Anything else is refused with 422 before any lookup.
SourceName = Annotated[str, PathParam(pattern=f"^{domain.SOURCE_NAME.pattern}$", description=(
    "The connector's source name: 2-63 characters of a-z 0-9 _ -, starting with a letter or digit; global, "
    "first come first served"))]


@admin.post("/{source}/secrets", status_code=201, response_model=NewWebhookSecret,
            summary="Add a signing secret to a source (created with its first secret); shown once",
            responses={409: {"description": "The source name is another tenant's, or it has 5 active secrets"},
                       422: {"description": "Invalid source name"}})
async def add_secret(source: SourceName, principal: Admin, request: Request) -> NewWebhookSecret:
    _group_level(principal)
    try:
        return await handlers.add_webhook_secret(_pool(request), principal, source)
    except handlers.SourceTaken:
        raise _refusal(409, "source_taken", "this source name is already in use") from None
    except handlers.TooManySecrets:
        raise _refusal(409, "too_many_secrets", "revoke an old secret first") from None


@admin.get("/{source}/secrets", response_model=list[WebhookSecret], summary="The source's secrets (never their values)",
           responses={404: {"description": "Unknown source"}, 422: {"description": "Invalid source name"}})
async def list_secrets(source: SourceName, principal: Admin, request: Request) -> list[WebhookSecret]:
    _group_level(principal)
    try:
        return await handlers.webhook_secrets(_pool(request), principal, source)
    except handlers.UnknownSource:
        raise _refusal(404, "unknown_source", "no such webhook source") from None


@admin.delete("/{source}/secrets/{secret_id}", status_code=204, summary="Revoke a secret (end of a rotation)",
              responses={404: {"description": "Unknown source or secret"}, 422: {"description": "Invalid source name"}})
async def revoke_secret(source: SourceName, secret_id: UUID, principal: Admin, request: Request) -> Response:
    _group_level(principal)
    try:
        await handlers.revoke_webhook_secret(_pool(request), principal, source, secret_id)
    except handlers.UnknownSource:
        raise _refusal(404, "unknown_source", "no such webhook source or secret") from None
    return Response(status_code=204)


# --- share confirmations -----------------------------------------------------------------------

SHARE_REFUSALS = {
    domain.ShareClaim.NOT_OWNER: (403, "this link was sent to another ambassador: only they may confirm it"),
    domain.ShareClaim.NOT_ACTIVE: (403, "you are no longer an ambassador: shares are not counted"),
    domain.ShareClaim.NOT_YET_KNOWN: (409, "your enrolment is still being processed: retry in a few seconds"),
}


def _share_refusal(claim: domain.ShareClaim) -> HTTPException:
    status, message = SHARE_REFUSALS[claim]
    refusal = _refusal(status, claim.value, message)
    if status == 409:
        refusal.headers = {"Retry-After": "2"}
    return refusal

@shares.post("", status_code=201, response_model=ShareRecorded,
             summary="I shared this content: counted once per (content, ambassador, network, post)",
             description="Only the ambassador the link was sent to may confirm it, from his own session "
                         "(tracked links are public in posts: the code proves nothing). Connectors report "
                         "engagement through the signed webhooks instead.",
             responses={200: {"description": "Confirmed before: not counted again", "model": ShareRecorded},
                        403: {"description": "The link was sent to another ambassador, or you withdrew"},
                        404: {"description": "Not a link code of this tenant"},
                        409: {"description": "Your enrolment is still being processed: retry after Retry-After"},
                        422: {"description": "The post URL is not on that network"},
                        503: {"description": "PORTEVOIX_IDENTITY_KEY is not configured: shares cannot be "
                                             "attributed to their owner"}})
async def confirm_share(body: ShareConfirmation, principal: Employee, request: Request,
                        response: Response) -> ShareRecorded:
    key = request.app.state.service.settings.identity_key
    if key is None:
        raise _refusal(503, "not_configured", "PORTEVOIX_IDENTITY_KEY is not set: shares cannot be attributed")
    try:
        recorded = await handlers.confirm_share(_pool(request), principal, body, key.get_secret_value())
    except handlers.UnknownLink:
        raise _refusal(404, "unknown_link", "no such tracked link") from None
    except handlers.InvalidShare as error:
        raise _refusal(422, "invalid_post_url", str(error)) from None
    except handlers.ShareRefused as error:
        raise _share_refusal(error.claim) from None
    if not recorded.counted:
        response.status_code = 200
    return recorded


@shares.get("/mine", response_model=MyShares, summary="What I confirmed sharing (to mark it in the hub, on any device)",
            responses={503: {"description": "PORTEVOIX_IDENTITY_KEY is not configured"}})
async def my_shares(principal: Employee, request: Request,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> MyShares:
    key = request.app.state.service.settings.identity_key
    if key is None:
        raise _refusal(503, "not_configured", "PORTEVOIX_IDENTITY_KEY is not set: shares cannot be attributed")
    found = await handlers.my_shares(_pool(request), principal, key.get_secret_value(), limit)
    return MyShares.model_validate({"shares": found})
