"""The KPI HTTP API: thin, each route calls one handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.reporting import handlers
from services.reporting.domain import ScopeType
from services.reporting.models import KpiReport, Kpis
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])
Reader = Annotated[Principal, Depends(require("analyst", "editor", "admin"))]
FORBIDDEN = {403: {"description": "Missing role, or a scope outside the token's subsidiary"}}


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


@router.get("", response_model=Kpis, summary="KPIs of one scope of the caller's tenant", responses=FORBIDDEN)
async def read(principal: Reader, request: Request, scope_type: ScopeType = ScopeType.tenant,
               scope_id: Annotated[str | None, Query(min_length=1, max_length=200,
                                                     description="Optional for scope_type tenant")] = None) -> dict:
    try:
        return await handlers.read_kpis(_pool(request), principal, scope_type, scope_id)
    except handlers.MissingScopeId as error:
        raise HTTPException(422, str(error)) from None
    except handlers.Forbidden as error:
        raise HTTPException(403, str(error)) from None


@router.get("/report", response_model=KpiReport, summary="Tenant KPIs and the contents with the most clicks",
            responses=FORBIDDEN)
async def report(principal: Reader, request: Request,
                 top: Annotated[int, Query(ge=1, le=100, description="How many contents to rank")] = 10) -> dict:
    try:
        return await handlers.report(_pool(request), principal, top)
    except handlers.Forbidden as error:
        raise HTTPException(403, str(error)) from None
