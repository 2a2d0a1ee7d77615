"""Tenant administration API (/v1/admin) and the directory (/v1/directory: headcount, the org for audience
pickers): thin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from services.distribution.handlers import admin, directory, scim
from services.distribution.models import (
    ChannelEndpoint,
    ChannelEndpointRequest,
    ConsentText,
    ConsentTextRequest,
    Erasure,
    ErasureRequest,
    Group,
    GroupRequest,
    Headcount,
    IssuedScimToken,
    OrgDirectory,
    People,
    PublishedConsentText,
    ScimToken,
    ScimTokenRequest,
    Subsidiary,
    SubsidiaryView,
)
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/admin", tags=["admin"])
directory_router = APIRouter(prefix="/v1/directory", tags=["directory"])
Admin = Annotated[Principal, Depends(require("admin"))]
Privacy = Annotated[Principal, Depends(require("admin", "privacy_officer"))]
Reader = Annotated[Principal, Depends(require("analyst", "editor", "admin"))]
Staff = Annotated[Principal, Depends(require("editor", "approver", "analyst", "admin"))]
Code = Annotated[str, Path(min_length=1, max_length=200)]


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


def _group_level(principal: Principal) -> None:
    """Tenant-wide settings: a subsidiary-scoped admin may not change them."""
    if principal.subsidiary is not None:
        raise HTTPException(403, "requires a group-level admin (no subsidiary claim)")


@router.put("/subsidiaries/{code}", response_model=SubsidiaryView, summary="Add or rename an org unit of the tree")
async def put_subsidiary(code: Code, body: Subsidiary, principal: Admin, request: Request) -> dict:
    _group_level(principal)
    return await admin.put_subsidiary(_pool(request), principal.tenant, code, body.name, body.parent)


@router.get("/subsidiaries", response_model=list[SubsidiaryView], summary="The org tree")
async def subsidiaries(principal: Admin, request: Request) -> list[dict]:
    return await admin.subsidiaries(_pool(request), principal.tenant)


@router.put("/consent-texts/{version}", status_code=201, response_model=PublishedConsentText,
            summary="Publish a new consent text version (consents to older ones must be renewed)",
            responses={409: {"description": "This version exists already"}})
async def publish_consent_text(version: Code, body: ConsentTextRequest, principal: Admin, request: Request) -> dict:
    _group_level(principal)
    try:
        return await admin.publish_consent_text(_pool(request), principal.tenant, version, body.text,
                                                body.reconsent_within_days)
    except admin.Conflict as conflict:
        raise HTTPException(409, {"reason": "version_exists", "message": str(conflict)}) from None


@router.get("/consent-texts/current", response_model=ConsentText, summary="The consent text in force",
            responses={404: {"description": "None published"}})
async def current_consent_text(principal: Admin, request: Request) -> dict:
    text = await admin.current_consent_text(_pool(request), principal.tenant)
    if text is None:
        raise HTTPException(404, "no consent text published")
    return text


@router.post("/scim-tokens", status_code=201, response_model=IssuedScimToken,
             summary="Issue a SCIM bearer token for this tenant (shown once)")
async def issue_scim_token(body: ScimTokenRequest, principal: Admin, request: Request) -> dict:
    _group_level(principal)
    return await scim.issue_token(_pool(request), principal.tenant, body.description)


@router.get("/scim-tokens", response_model=list[ScimToken], summary="SCIM tokens (never their value)")
async def scim_tokens(principal: Admin, request: Request) -> list[dict]:
    return await admin.scim_tokens(_pool(request), principal.tenant)


@router.delete("/scim-tokens/{token_id}", status_code=204, summary="Revoke a SCIM token",
               responses={404: {"description": "No such active token"}})
async def revoke_scim_token(token_id: UUID, principal: Admin, request: Request) -> Response:
    _group_level(principal)
    try:
        await admin.revoke_scim_token(_pool(request), principal.tenant, token_id)
    except admin.NotFound:
        raise HTTPException(404, "no such active token") from None
    return Response(status_code=204)


@router.put("/groups/{name}", response_model=Group, summary="Create an ambassador group or set its members",
            responses={404: {"description": "Unknown employees"}})
async def put_group(name: Code, body: GroupRequest, principal: Admin, request: Request) -> dict:
    _group_level(principal)
    try:
        return await admin.put_group(_pool(request), principal.tenant, name, body.members)
    except admin.NotFound as missing:
        raise HTTPException(404, {"reason": "unknown_employees", "message": str(missing)}) from None


@router.get("/groups/{name}", response_model=Group, summary="An ambassador group and its members",
            responses={404: {"description": "No such group"}})
async def get_group(name: Code, principal: Admin, request: Request) -> dict:
    try:
        return await admin.get_group(_pool(request), principal.tenant, name)
    except admin.NotFound:
        raise HTTPException(404, "no such group") from None


@router.post("/erasures", response_model=Erasure, summary="Erase a person's personal data (GDPR art. 17)",
             responses={404: {"description": "The directory does not know this employee"}})
async def erase(body: ErasureRequest, principal: Privacy, request: Request) -> dict:
    _group_level(principal)
    tombstone = await directory.erase_on_request(_pool(request), principal.tenant, body.employee_id)
    if tombstone is None:
        raise HTTPException(404, {"reason": "unknown_employee", "message": "nothing known about this employee"})
    return {"tombstone_id": tombstone}


ChatChannel = Annotated[str, Path(pattern="^(slack|teams|webhook)$")]


@router.put("/channels/{channel}", response_model=ChannelEndpoint,
            summary="Set the tenant's Slack-compatible API, Teams-compatible webhook or generic signed webhook")
async def put_channel(channel: ChatChannel, body: ChannelEndpointRequest, principal: Admin, request: Request) -> dict:
    _group_level(principal)
    if channel == "webhook" and body.secret is not None and not body.secret.startswith("whsec_"):
        raise HTTPException(422, {"reason": "invalid_secret", "message": "a webhook secret is whsec_ + base64"})
    return await admin.put_channel_endpoint(_pool(request), principal.tenant, channel, str(body.url), body.secret)


@router.get("/channels", response_model=list[ChannelEndpoint], summary="The tenant's chat and webhook endpoints "
                                                                      "(never their secrets)")
async def channel_endpoints(principal: Admin, request: Request) -> list[dict]:
    return await admin.channel_endpoints(_pool(request), principal.tenant)


@router.delete("/channels/{channel}", status_code=204, summary="Remove a chat or webhook endpoint",
               responses={404: {"description": "Not configured"}})
async def delete_channel(channel: ChatChannel, principal: Admin, request: Request) -> Response:
    _group_level(principal)
    if not await admin.delete_channel_endpoint(_pool(request), principal.tenant, channel):
        raise HTTPException(404, "no such endpoint")
    return Response(status_code=204)


@directory_router.get("/headcount", response_model=Headcount,
                      summary="Headcount and enrolled ambassadors at an instant (each person's placement then)",
                      responses={403: {"description": "Outside the caller's subsidiary"}})
async def headcount(principal: Reader, request: Request, at: Annotated[datetime, Query()],
                    subsidiary: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    if at.tzinfo is None:
        raise HTTPException(422, "at must carry a time zone offset (RFC 3339)")
    try:
        at = at.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 is before year 1 in UTC
        raise HTTPException(422, "at is out of range") from None
    try:
        return await admin.headcount(_pool(request), principal, at, subsidiary)
    except admin.OutOfScope as error:
        raise HTTPException(403, str(error)) from None


@directory_router.get("/org", response_model=OrgDirectory,
                      summary="The org tree, sites, countries, languages and groups with headcounts, to pick an "
                              "audience (a subsidiary's staff see their own subtree only)")
async def org(principal: Staff, request: Request) -> dict:
    return await admin.org_directory(_pool(request), principal)


@directory_router.get("/people", response_model=People,
                      summary="The people HR and SCIM told of, searched by id, name or e-mail, with their enrolment "
                              "and consent state (a subsidiary-scoped admin: his subtree)")
async def people(principal: Admin, request: Request,
                 q: Annotated[str, Query(max_length=200, description="Part of an id, name or e-mail")] = "",
                 limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict:
    return await admin.people(_pool(request), principal, q.strip(), limit, offset)
