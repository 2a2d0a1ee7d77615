"""The ambassador's own HTTP API (/v1/me): thin, each route calls one handler. Everything here
acts on the token's subject only: nobody can enrol, or change, someone else."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.distribution.domain import (
    ConsentTextOutdated,
    EmployeeGone,
    EnrolmentRefused,
    NotEnrolled,
    UnknownEmployee,
)
from services.distribution.handlers import directory, enrolment, fanout
from services.distribution.models import (
    ConsentStatus,
    Enrolment,
    EnrolmentRequest,
    Erasure,
    Feed,
    NetworksRequest,
    Preferences,
    PreferencesView,
)
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/me", tags=["ambassador"])
Employee = Annotated[Principal, Depends(require("employee"))]
REFUSAL_STATUS: dict[type[EnrolmentRefused], int] = {UnknownEmployee: 404, EmployeeGone: 409, ConsentTextOutdated: 409}
NOT_ENROLLED: dict[int | str, dict[str, Any]] = {404: {"description": "Not enrolled (or the consent has lapsed)"}}


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


def _not_enrolled() -> HTTPException:
    return HTTPException(404, {"reason": "not_enrolled", "message": "you are not an ambassador"})


@router.post("/enrolment", status_code=201, response_model=Enrolment,
             summary="Become an ambassador, or renew my consent",
             responses={200: {"description": "Already enrolled: consent renewed (also after it lapsed: the same "
                                             "ambassador_id and networks)", "model": Enrolment},
                        404: {"description": "HR does not know this employee in this tenant"},
                        409: {"description": "The employee has left, or the consent text is not the one in force"}})
async def enrol(body: EnrolmentRequest, principal: Employee, request: Request, response: Response) -> dict:
    settings = request.app.state.service.settings
    try:
        result, created = await enrolment.enrol(
            _pool(request), principal, body, settings.consent_validity_days,
            settings.identity_key.get_secret_value() if settings.identity_key else None)
    except EnrolmentRefused as refusal:
        detail: dict[str, Any] = {"reason": refusal.reason, "message": str(refusal)}
        if isinstance(refusal, ConsentTextOutdated):
            detail["current_version"] = refusal.current
        raise HTTPException(REFUSAL_STATUS[type(refusal)], detail) from None
    if not created:
        response.status_code = 200
    return result


@router.delete("/enrolment", status_code=204, summary="Stop being an ambassador (opt out), at once",
               responses={404: {"description": "Not enrolled"}})
async def opt_out(principal: Employee, request: Request,
                  channel: Annotated[str, Query(pattern=r"^[a-z_]+$", max_length=50)] = "web") -> Response:
    try:
        await enrolment.opt_out(_pool(request), principal, channel)
    except NotEnrolled:
        raise _not_enrolled() from None
    return Response(status_code=204)


@router.get("/consent", response_model=ConsentStatus, summary="My consent record and the text in force")
async def consent(principal: Employee, request: Request) -> dict:
    return await enrolment.consent(_pool(request), principal)


@router.put("/networks", response_model=Enrolment, summary="My connected networks and audience sizes",
            responses=NOT_ENROLLED)
async def networks(body: NetworksRequest, principal: Employee, request: Request) -> dict:
    try:
        return await enrolment.set_networks(_pool(request), principal,
                                            {str(n): size for n, size in body.networks.items()})
    except NotEnrolled:
        raise _not_enrolled() from None


@router.get("/preferences", response_model=PreferencesView, summary="My notification preferences",
            responses=NOT_ENROLLED)
async def preferences(principal: Employee, request: Request) -> dict:
    try:
        return await enrolment.preferences(_pool(request), principal)
    except NotEnrolled:
        raise _not_enrolled() from None


@router.put("/preferences", response_model=PreferencesView,
            summary="Set my channels, languages, topics, frequency cap and quiet hours", responses=NOT_ENROLLED)
async def put_preferences(body: Preferences, principal: Employee, request: Request) -> dict:
    try:
        return await enrolment.put_preferences(_pool(request), principal, body)
    except NotEnrolled:
        raise _not_enrolled() from None


@router.post("/erasure", response_model=Erasure, summary="Erase my personal data (GDPR art. 17)",
             responses={404: {"description": "The directory does not know you"}})
async def erase_me(principal: Employee, request: Request) -> dict:
    tombstone = await directory.erase_on_request(_pool(request), principal.tenant, principal.subject)
    if tombstone is None:
        raise HTTPException(404, {"reason": "unknown_employee", "message": "nothing known about you"})
    return {"tombstone_id": tombstone}


@router.get("/feed", response_model=Feed, summary="My notifications, newest first, with links to share",
            responses=NOT_ENROLLED)
async def feed(principal: Employee, request: Request,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
    settings = request.app.state.service.settings
    try:
        return await fanout.feed(_pool(request), principal, settings.tracking_base_url, limit)
    except NotEnrolled:
        raise _not_enrolled() from None
