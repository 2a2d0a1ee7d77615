"""The distribution HTTP API: thin, each route calls one handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.distribution import handlers
from services.distribution.domain import EmployeeGone, EnrolmentRefused, UnknownEmployee
from services.distribution.models import Enrolment, EnrolmentRequest, Feed
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/me", tags=["ambassador"])
Employee = Annotated[Principal, Depends(require("employee"))]
REFUSAL_STATUS: dict[type[EnrolmentRefused], int] = {UnknownEmployee: 404, EmployeeGone: 409}


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


@router.post("/enrolment", status_code=201, response_model=Enrolment, summary="Become an ambassador",
             responses={200: {"description": "Already enrolled: the current enrolment", "model": Enrolment},
                        404: {"description": "HR does not know this employee in this tenant"},
                        409: {"description": "The employee has left the company"}})
async def enrol(body: EnrolmentRequest, principal: Employee, request: Request, response: Response) -> dict:
    try:
        enrolment, created = await handlers.enrol(_pool(request), principal, body)
    except EnrolmentRefused as refusal:
        detail = {"reason": refusal.reason, "message": str(refusal)}
        raise HTTPException(REFUSAL_STATUS[type(refusal)], detail) from None
    if not created:
        response.status_code = 200
    return enrolment


@router.delete("/enrolment", status_code=204, summary="Stop being an ambassador (opt out)",
               responses={404: {"description": "Not enrolled"}})
async def opt_out(principal: Employee, request: Request) -> Response:
    try:
        await handlers.opt_out(_pool(request), principal)
    except handlers.NotEnrolled:
        raise HTTPException(404, {"reason": "not_enrolled", "message": "you are not an ambassador"}) from None
    return Response(status_code=204)


@router.get("/feed", response_model=Feed, summary="My notifications, newest first, with links to share",
            responses={404: {"description": "Not enrolled"}})
async def feed(principal: Employee, request: Request,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
    settings = request.app.state.service.settings
    try:
        return await handlers.feed(_pool(request), principal, settings.tracking_base_url, limit)
    except handlers.NotEnrolled:
        raise HTTPException(404, {"reason": "not_enrolled", "message": "you are not an ambassador"}) from None
