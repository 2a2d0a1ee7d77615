"""The content HTTP API: thin, each route calls one handler."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request

from services.content import handlers
from services.content.domain import IllegalTransition
from services.content.models import Content, ContentDraft
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/contents", tags=["contents"])
Editor = Annotated[Principal, Depends(require("editor", "admin"))]
Approver = Annotated[Principal, Depends(require("approver", "admin"))]


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


@router.post("", status_code=201, response_model=Content, summary="Create a draft")
async def create(draft: ContentDraft, principal: Editor, request: Request) -> dict:
    return await handlers.create_content(_pool(request), principal, draft)


@router.get("/{content_id}", response_model=Content, summary="Read one content item")
async def read(content_id: UUID, principal: Editor, request: Request) -> dict:
    try:
        return await handlers.get_content(_pool(request), principal, content_id)
    except handlers.NotFound:
        raise HTTPException(404, "no such content") from None


@router.post("/{content_id}/publish", response_model=Content, summary="Publish now",
             responses={409: {"description": "Illegal transition: current state and allowed ones"}})
async def publish(content_id: UUID, principal: Approver, request: Request) -> dict:
    try:
        return await handlers.publish_content(_pool(request), principal, content_id)
    except handlers.NotFound:
        raise HTTPException(404, "no such content") from None
    except IllegalTransition as error:
        raise HTTPException(409, {"message": str(error), "state": error.current, "allowed": error.allowed}) from None
