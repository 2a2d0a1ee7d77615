"""The KPI HTTP API: thin, each route calls one handler. Every table can be had as CSV
(``format=csv``); the digest also as e-mail-ready HTML (``format=html``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator

from services.reporting import domain, handlers, views
from services.reporting.domain import ScopeType, Window
from services.reporting.models import (
    Definitions,
    Delivery,
    Digest,
    KpiReport,
    Kpis,
    KpiSeries,
    Leaderboard,
    MediaRates,
    MyResults,
    NewWebhook,
    Webhook,
    WebhookChange,
    WebhookRequest,
)
from shared.auth import Principal, current_principal, require

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])
me = APIRouter(prefix="/v1/me", tags=["me"])
Anyone = Annotated[Principal, Depends(current_principal)]
Reader = Annotated[Principal, Depends(require("analyst", "editor", "admin"))]
Admin = Annotated[Principal, Depends(require("admin"))]
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "Missing role, or a scope outside the token's subsidiary"}}
CSV_OR_JSON = Annotated[Literal["json", "csv"], Query(description="csv: the same table as text/csv")]
ScopeId = Annotated[str | None, Query(min_length=1, max_length=200, description="Optional for scope_type tenant")]


def _readable(at: datetime | None) -> datetime | None:
    if at is None:
        return at
    if at.tzinfo is None:  # its meaning would be the server's time zone
        raise ValueError("must carry a time zone offset (RFC 3339)")
    if not domain.readable(at):
        raise ValueError(f"must lie from {domain.ALL_TIME_START:%Y-%m-%d} to before {domain.LATEST:%Y-%m-%d}")
    return at


Instant = AfterValidator(_readable)
At = Annotated[datetime | None, Query(description="An instant inside the window wanted (default: now)"), Instant]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
T = TypeVar("T")


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


async def _call(call: Awaitable[T]) -> T:
    """Run a handler, its refusals as HTTP errors with their reason."""
    try:
        return await call
    except handlers.MissingScopeId as error:
        raise HTTPException(422, str(error)) from None
    except handlers.Forbidden as error:
        raise HTTPException(403, str(error)) from None
    except handlers.NotEnrolled as error:
        raise HTTPException(404, {"reason": "not_enrolled", "message": str(error)}) from None
    except handlers.NotFound as error:
        raise HTTPException(404, str(error)) from None
    except handlers.NoIdentityKey as error:
        raise HTTPException(503, str(error)) from None


def _csv(rows: list[dict[str, Any]], columns: list[str], name: str) -> Response:
    return Response(views.to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@router.get("", response_model=Kpis, summary="KPIs of one scope in one window of the caller's tenant",
            responses=FORBIDDEN)
async def read(principal: Reader, request: Request, scope_type: ScopeType = ScopeType.tenant, scope_id: ScopeId = None,
               window: Window = Window.all, at: At = None, format: CSV_OR_JSON = "json") -> Any:  # noqa: A002
    body = await _call(handlers.read_kpis(_pool(request), principal, scope_type, scope_id, window, at))
    if format == "csv":
        return _csv([{"kpi": k, "value": v} for k, v in body["kpis"].items()], ["kpi", "value"], "kpis")
    return body


@router.get("/series", response_model=KpiSeries, summary="KPIs of one scope, one point per window of a time range",
            responses=FORBIDDEN)
async def series(principal: Reader, request: Request, scope_type: ScopeType = ScopeType.tenant,
                 scope_id: ScopeId = None, window: Window = Window.day,
                 start: Annotated[datetime | None, Query(alias="from", description="Default: `to`"), Instant] = None,
                 end: Annotated[datetime | None, Query(alias="to", description="Default: now"), Instant] = None,
                 limit: Annotated[int, Query(ge=1, le=1000, description="At most this many points: the newest "
                                             "windows of a longer range (flagged truncated)")] = 400,
                 format: CSV_OR_JSON = "json") -> Any:  # noqa: A002
    if start and end and start > end:
        raise HTTPException(422, "from must not be after to")
    body = await _call(handlers.read_series(_pool(request), principal, scope_type, scope_id, window, start, end, limit))
    if format == "csv":
        answer = _csv(*views.series_rows(body, domain.KPI_NAMES), "kpi-series")
        answer.headers["X-Portevoix-Truncated"] = str(body["truncated"]).lower()
        answer.headers["X-Portevoix-Windows-In-Range"] = str(body["windows_in_range"])
        return answer
    return body


@router.get("/definitions", response_model=Definitions, summary="The versioned definition of every KPI")
async def definitions(principal: Reader) -> dict[str, Any]:
    return handlers.definitions()


@router.get("/leaderboards/{board}", response_model=Leaderboard, summary="Ambassadors, contents or subsidiaries "
            "ranked by one KPI (ambassadors: only those who chose to be named, by their display name, never by id)",
            responses=FORBIDDEN)
async def leaderboard(principal: Reader, request: Request,
                      board: Annotated[Literal["ambassadors", "contents", "subsidiaries"], Path()],
                      kpi: Annotated[Literal[domain.RANKABLE], Query(description="The KPI ranked")] = "shares",  # type: ignore[valid-type]
                      window: Window = Window.all, at: At = None,
                      top: Annotated[int, Query(ge=1, le=1000,
                                                description="Ranks kept (ties at the cut all kept)")] = 10,
                      format: CSV_OR_JSON = "json") -> Any:  # noqa: A002
    body = await _call(handlers.leaderboard(_pool(request), principal, board, kpi, window, at, top))
    if format == "csv":
        columns = ["rank", "label", "value"] if board == "ambassadors" else ["rank", "id", "value", "title"]
        return _csv(body["entries"], columns, f"leaderboard-{board}")
    return body


@router.get("/digest", response_model=Digest, summary="The monthly digest: KPIs vs the previous month, best posts, "
            "best named ambassadors", responses={**FORBIDDEN, 200: {"content": {"text/html": {}, "text/csv": {}}}})
async def digest(principal: Reader, request: Request,
                 month: Annotated[str, Query(max_length=7, description="YYYY-MM")],
                 format: Annotated[Literal["json", "html", "csv"], Query()] = "json") -> Any:  # noqa: A002
    if not MONTH.match(month) or not f"{domain.ALL_TIME_START:%Y-%m}" <= month < f"{domain.LATEST:%Y-%m}":
        raise HTTPException(422, f"month must be YYYY-MM, from {domain.ALL_TIME_START:%Y-%m} to before "
                                 f"{domain.LATEST:%Y-%m}")
    body = await _call(handlers.digest(_pool(request), principal, month))
    if format == "html":
        return HTMLResponse(views.digest_html(body))
    if format == "csv":
        return _csv(body["kpis"], ["kpi", "value", "previous", "change", "kind"], f"digest-{month}")
    return body


@router.get("/report", response_model=KpiReport, summary="Tenant KPIs (all time) and the contents with the most clicks",
            responses=FORBIDDEN)
async def report(principal: Reader, request: Request,
                 top: Annotated[int, Query(ge=1, le=100, description="How many ranks of contents")] = 10) -> Any:
    return await _call(handlers.report(_pool(request), principal, top))


@router.get("/media-rates", response_model=MediaRates, summary="The tenant's CPM/CPC rates for earned media value",
            responses={404: {"description": "No rates configured"}})
async def read_media_rates(principal: Reader, request: Request) -> Any:
    return await _call(handlers.read_media_rates(_pool(request), principal))


@router.put("/media-rates", response_model=MediaRates, summary="Set the tenant's CPM/CPC rates and currency",
            responses=FORBIDDEN)
async def set_media_rates(principal: Admin, request: Request, body: MediaRates) -> Any:
    rates = {str(n): r.model_dump() for n, r in body.rates.items()}
    return await _call(handlers.set_media_rates(_pool(request), principal, body.currency, rates))


@router.post("/webhooks", response_model=NewWebhook, status_code=201, responses=FORBIDDEN,
             summary="Subscribe an endpoint to KPI changes and milestones (Standard Webhooks signed)")
async def add_webhook(principal: Admin, request: Request, body: WebhookRequest) -> Any:
    return await _call(handlers.add_webhook(_pool(request), principal, str(body.url), list(body.event_types)))


@router.get("/webhooks", response_model=list[Webhook], summary="The tenant's webhook subscriptions",
            responses=FORBIDDEN)
async def list_webhooks(principal: Admin, request: Request) -> Any:
    return await _call(handlers.webhooks(_pool(request), principal))


@router.patch("/webhooks/{subscription_id}", response_model=Webhook, summary="Pause or resume a subscription",
              responses={**FORBIDDEN, 404: {"description": "No such subscription in the caller's tenant"}})
async def change_webhook(principal: Admin, request: Request, subscription_id: uuid.UUID, body: WebhookChange) -> Any:
    return await _call(handlers.set_webhook_active(_pool(request), principal, subscription_id, body.active))


@router.delete("/webhooks/{subscription_id}", status_code=204, summary="Delete a subscription and its deliveries",
               responses={**FORBIDDEN, 404: {"description": "No such subscription in the caller's tenant"}})
async def delete_webhook(principal: Admin, request: Request, subscription_id: uuid.UUID) -> Response:
    await _call(handlers.delete_webhook(_pool(request), principal, subscription_id))
    return Response(status_code=204)


@router.get("/webhooks/deliveries", response_model=list[Delivery], summary="Recent deliveries, newest first",
            responses=FORBIDDEN)
async def list_deliveries(principal: Admin, request: Request,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return await _call(handlers.deliveries(_pool(request), principal, limit))


@router.post("/webhooks/deliveries/{delivery_id}/replay", status_code=202, summary="Send a delivery again",
             responses={**FORBIDDEN, 404: {"description": "No such delivery in the caller's tenant"}})
async def replay_delivery(principal: Admin, request: Request, delivery_id: uuid.UUID) -> dict[str, str]:
    await _call(handlers.replay_delivery(_pool(request), principal, delivery_id))
    return {"status": "pending"}


@me.get("/results", response_model=MyResults, summary="My own KPIs and rank, and the ambassadors' leaderboard "
        "(any signed-in employee: the ambassador is the caller's own, found by his holder digest)",
        responses={404: {"description": "The caller is not an enrolled ambassador"},
                   503: {"description": "PORTEVOIX_IDENTITY_KEY is not configured"}})
async def my_results(principal: Anyone, request: Request) -> Any:
    key = request.app.state.service.settings.identity_key
    return await _call(handlers.my_results(_pool(request), principal, key.get_secret_value() if key else None))
