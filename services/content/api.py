"""The content HTTP API: thin, each route calls one handler. Refusals are answered in main.py:
404 not found (or outside the caller's subsidiary), 403 role/scope/four eyes, 409 illegal
transition (with the current state and the allowed ones), 422 invalid or charter violations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response

from services.content import handlers, images
from services.content.charter import Charter
from services.content.models import (
    ApproveRequest,
    AuditTrail,
    CharterDocument,
    CheckResult,
    Content,
    ContentDraft,
    ContentEdit,
    ContentList,
    Decline,
    DescribedDraft,
    ImageUpload,
    Localisation,
    Offer,
    OfferList,
    OfferRequest,
    RejectRequest,
    RetireRequest,
    ScheduleRequest,
    Source,
    SourceSettings,
    UploadedImage,
    WebhookSecret,
)
from shared.auth import Principal, require
from shared.events import IntranetContentSubmitted
from shared.service import raw_body

router = APIRouter(tags=["contents"])
admin = APIRouter(prefix="/v1/admin", tags=["configuration"])
webhooks = APIRouter(prefix="/v1/webhooks", tags=["ingestion"])

Staff = Annotated[Principal, Depends(require("editor", "approver", "admin"))]
Editor = Annotated[Principal, Depends(require("editor", "admin"))]
Approver = Annotated[Principal, Depends(require("approver", "admin"))]
Admin = Annotated[Principal, Depends(require("admin"))]
SourceName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Role, subsidiary scope, or four eyes (the author of a version cannot approve it)"},
    404: {"description": "No such content in the caller's tenant and subsidiary"},
    409: {"description": "Illegal transition: `state` (current) and `allowed` (next states)"},
    422: {"description": "Invalid input (field at fault), or brand charter `violations`"},
}


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


# --- contents ------------------------------------------------------------------------------------

@router.post("/v1/contents", status_code=201, response_model=Content, summary="Create a draft", responses=REFUSALS)
async def create(draft: DescribedDraft, principal: Editor, request: Request) -> dict:
    return await handlers.create_content(_pool(request), principal, draft)


@router.get("/v1/contents", response_model=ContentList, summary="List contents (newest first)",
            responses={422: {"description": "due_from without due_to (or the reverse), or an empty window"}})
async def list_contents(principal: Staff, request: Request, state: Annotated[str | None, Query(max_length=50)] = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100,
                        due_from: Annotated[datetime | None, Query(description="With due_to: only items whose "
                                            "publication, embargo or expiry falls in [due_from, due_to)")] = None,
                        due_to: Annotated[datetime | None, Query()] = None) -> dict:
    due = _window(due_from, due_to)
    return {"items": await handlers.list_contents(_pool(request), principal, state, limit, due)}


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise HTTPException(422, "give both due_from and due_to")
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "due_from and due_to carry a time zone offset (RFC 3339)")
    if end <= start:
        raise HTTPException(422, "due_to must be after due_from")
    return start, end


# --- images --------------------------------------------------------------------------------------

@router.post("/v1/images", response_model=UploadedImage, status_code=201, tags=["images"],
             summary="Upload an image for a content (PNG, JPEG, GIF or WebP; size bounded)",
             responses={422: {"description": "Not base64, too large, or not an accepted image type"}})
async def upload_image(body: ImageUpload, principal: Editor, request: Request) -> dict:
    try:
        return await images.upload(_pool(request), principal, body.data, request.app.state.settings.image_max_bytes)
    except images.ImageRefused as refused:
        raise HTTPException(422, {"reason": refused.reason, "message": str(refused)}) from None


@router.get("/v1/images/{tenant}/{image_id}", tags=["images"], response_class=Response,
            summary="An uploaded image (public: ambassadors and networks load it)",
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/gif": {}, "image/webp": {}}},
                       404: {"description": "No such image"}})
async def image(tenant: Annotated[str, Path(max_length=100)], image_id: UUID, request: Request) -> Response:
    found = await images.read(_pool(request), tenant, image_id)
    if found is None:
        raise HTTPException(404, "no such image")
    media_type, data = found
    return Response(data, media_type=media_type, headers={
        "Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Content-Disposition": "inline"})


@router.post("/v1/contents/check", response_model=CheckResult, summary="Check a draft against the brand charter")
async def check_draft(draft: ContentDraft, principal: Staff, request: Request) -> dict:
    return await handlers.check_draft(_pool(request), principal, draft)


@router.get("/v1/contents/{content_id}", response_model=Content, summary="Read one content item", responses=REFUSALS)
async def read(content_id: UUID, principal: Staff, request: Request) -> dict:
    return await handlers.get_content(_pool(request), principal, content_id)


@router.patch("/v1/contents/{content_id}", response_model=Content, responses=REFUSALS,
              summary="Edit (a new revision; an approved, scheduled or published item goes back to review)")
async def edit(content_id: UUID, changes: ContentEdit, principal: Editor, request: Request) -> dict:
    return await handlers.edit_content(_pool(request), principal, content_id, changes)


@router.get("/v1/contents/{content_id}/check", response_model=CheckResult, responses=REFUSALS,
            summary="Every brand charter violation (field, position, rule) and near-duplicate warning")
async def check(content_id: UUID, principal: Staff, request: Request) -> dict:
    return await handlers.check_content(_pool(request), principal, content_id)


@router.get("/v1/contents/{content_id}/audit", response_model=AuditTrail, responses=REFUSALS,
            summary="The audit trail: every transition, who, when, from, to, why")
async def audit(content_id: UUID, principal: Staff, request: Request) -> dict:
    return {"content_id": content_id,
            "transitions": await handlers.audit_trail(_pool(request), principal, content_id)}


@router.post("/v1/contents/{content_id}/submit", response_model=Content, summary="Submit for review",
             responses=REFUSALS)
async def submit(content_id: UUID, principal: Editor, request: Request) -> dict:
    return await handlers.submit(_pool(request), principal, content_id)


@router.post("/v1/contents/{content_id}/approve", response_model=Content, responses=REFUSALS,
             summary="Approve (four eyes; the charter must pass unless an admin overrides with a reason)")
async def approve(content_id: UUID, principal: Approver, request: Request,
                  body: Annotated[ApproveRequest | None, Body()] = None) -> dict:
    return await handlers.approve(_pool(request), principal, content_id, body.override_reason if body else None)


@router.post("/v1/contents/{content_id}/reject", response_model=Content, summary="Reject back to draft, with a reason",
             responses=REFUSALS)
async def reject(content_id: UUID, body: RejectRequest, principal: Approver, request: Request) -> dict:
    return await handlers.reject(_pool(request), principal, content_id, body.reason)


@router.post("/v1/contents/{content_id}/schedule", response_model=Content, summary="Schedule an approved item",
             responses=REFUSALS)
async def schedule(content_id: UUID, body: ScheduleRequest, principal: Approver, request: Request) -> dict:
    return await handlers.schedule(_pool(request), principal, content_id, body.publish_at, body.expire_at)


@router.post("/v1/contents/{content_id}/unschedule", response_model=Content, summary="Back to approved",
             responses=REFUSALS)
async def unschedule(content_id: UUID, principal: Approver, request: Request) -> dict:
    return await handlers.unschedule(_pool(request), principal, content_id)


@router.post("/v1/contents/{content_id}/publish", response_model=Content, responses=REFUSALS,
             summary="Publish now (an item not yet approved is reviewed and approved in the same step)")
async def publish(content_id: UUID, principal: Approver, request: Request,
                  body: Annotated[ApproveRequest | None, Body()] = None) -> dict:
    return await handlers.publish(_pool(request), principal, content_id, body.override_reason if body else None)


@router.post("/v1/contents/{content_id}/retire", response_model=Content, summary="Withdraw", responses=REFUSALS)
async def retire(content_id: UUID, principal: Approver, request: Request,
                 body: Annotated[RetireRequest | None, Body()] = None) -> dict:
    return await handlers.retire(_pool(request), principal, content_id, body.reason if body else None)


# --- group → subsidiary cascade ------------------------------------------------------------------

@router.post("/v1/contents/{content_id}/offers", response_model=OfferList, tags=["cascade"], responses=REFUSALS,
             summary="Offer a group item to subsidiaries")
async def offer(content_id: UUID, body: OfferRequest, principal: Staff, request: Request) -> dict:
    return {"offers": await handlers.offer(_pool(request), principal, content_id, body.subsidiaries)}


@router.get("/v1/offers", response_model=OfferList, tags=["cascade"],
            summary="Offers: a subsidiary's own, or (group staff) all, with the local item of each")
async def list_offers(principal: Staff, request: Request, group_content_id: UUID | None = None) -> dict:
    return {"offers": await handlers.list_offers(_pool(request), principal, group_content_id)}


@router.post("/v1/offers/{group_content_id}/adopt", response_model=Content, status_code=201, tags=["cascade"],
             responses=REFUSALS, summary="Adopt as is, or localise (given fields), into a local item in review")
async def adopt(group_content_id: UUID, principal: Editor, request: Request,
                body: Annotated[Localisation | None, Body()] = None) -> dict:
    return await handlers.adopt(_pool(request), principal, group_content_id, body)


@router.post("/v1/offers/{group_content_id}/decline", response_model=Offer, tags=["cascade"], responses=REFUSALS,
             summary="Decline an offer, with a reason")
async def decline(group_content_id: UUID, body: Decline, principal: Editor, request: Request) -> dict:
    return await handlers.decline(_pool(request), principal, group_content_id, body.reason)


# --- tenant configuration ------------------------------------------------------------------------

@admin.get("/charter", response_model=CharterDocument, summary="The tenant's brand charter, or a subsidiary's")
async def get_charter(principal: Staff, request: Request,
                      subsidiary: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    return await handlers.get_charter(_pool(request), principal, subsidiary)


@admin.put("/charter", response_model=CharterDocument, summary="Replace the tenant's brand charter")
async def put_charter(rules: Charter, principal: Admin, request: Request) -> dict:
    return await handlers.put_charter(_pool(request), principal, None, rules)


@admin.put("/charter/subsidiaries/{subsidiary}", response_model=CharterDocument,
           summary="Replace a subsidiary's override (rules left out are inherited)")
async def put_subsidiary_charter(subsidiary: SourceName, rules: Charter, principal: Admin, request: Request) -> dict:
    return await handlers.put_charter(_pool(request), principal, subsidiary, rules)


@admin.get("/sources", response_model=list[Source], summary="Ingestion sources")
async def list_sources(principal: Admin, request: Request) -> list[dict]:
    return await handlers.list_sources(_pool(request), principal)


@admin.put("/sources/{source_system}", response_model=Source, summary="Whether a source's items are auto-approved")
async def put_source(source_system: SourceName, body: SourceSettings, principal: Admin, request: Request) -> dict:
    return await handlers.put_source(_pool(request), principal, source_system, body.auto_approve)


@admin.post("/sources/{source_system}/webhook-secret", response_model=WebhookSecret, status_code=201,
            summary="A new webhook signing secret for a source (replaces the old one; shown once)")
async def rotate_secret(source_system: SourceName, principal: Admin, request: Request) -> dict:
    return await handlers.rotate_webhook_secret(_pool(request), principal, source_system)


# --- signed webhook for tools that cannot produce to Kafka ---------------------------------------

@webhooks.post(
    "/intranet/{tenant}/{source_system}", status_code=202,
    summary="Submit content (intranet.content.submitted data), signed with Standard Webhooks",
    responses={401: {"description": "Missing, stale or invalid signature"}, 413: {"description": "Body too large"},
               422: {"description": "Invalid content (field at fault)"}, 503: {"description": "Kafka unavailable"}},
    openapi_extra=raw_body(IntranetContentSubmitted),
)
async def intranet_webhook(tenant: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")],
                           source_system: SourceName, request: Request) -> dict:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.webhook_max_bytes:
        raise HTTPException(413, f"body larger than {settings.webhook_max_bytes} bytes")
    headers = {name: request.headers.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    event_id = await handlers.receive_webhook(
        _pool(request), request.app.state.service.broker, tenant, source_system, headers, body,
        tolerance=settings.webhook_tolerance_seconds, timeout=settings.kafka_send_timeout_seconds)
    return {"accepted": event_id}
