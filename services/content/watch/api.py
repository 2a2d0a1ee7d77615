"""The watch's HTTP API: sources (subscribe, health, pause, resume, remove), the curation
queue (list, adopt as a draft, dismiss) and ambassadors' ideas. Thin: each route calls one
handler; its refusals are answered with the content service's others (main.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from services.content.models import Content
from services.content.watch import handlers
from services.content.watch.models import (
    Adoption,
    Dismissal,
    IdeaRequest,
    MyIdea,
    Source,
    SourceEdit,
    SourceRequest,
    Suggestion,
)
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/watch", tags=["industry watch"])
ideas = APIRouter(prefix="/v1", tags=["ambassadors' ideas"])
Editor = Annotated[Principal, Depends(require("editor", "admin"))]
Employee = Annotated[Principal, Depends(require("employee"))]
Staff = Annotated[Principal, Depends(require("editor", "approver", "admin"))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such source or suggestion in your scope"}}


def _pool(request: Request):  # noqa: ANN202
    return request.app.state.service.pool


@router.post("/sources", status_code=201, response_model=Source, summary="Watch an RSS or Atom feed",
             responses={403: {"description": "Outside your subsidiary"},
                        409: {"description": "This feed is already watched in that scope"}})
async def add_source(body: SourceRequest, principal: Editor, request: Request) -> dict[str, Any]:
    return await handlers.add_source(_pool(request), principal, body)


@router.get("/sources", response_model=list[Source], summary="The watched feeds and their health")
async def list_sources(principal: Staff, request: Request) -> list[dict[str, Any]]:
    return await handlers.list_sources(_pool(request), principal)


@router.patch("/sources/{source_id}", response_model=Source, responses=NOT_FOUND,
              summary="Rename, retag, pause, or resume a feed (resuming un-parks it and polls it now)")
async def edit_source(source_id: UUID, body: SourceEdit, principal: Editor, request: Request) -> dict[str, Any]:
    return await handlers.edit_source(_pool(request), principal, source_id, body)


@router.delete("/sources/{source_id}", status_code=204, responses=NOT_FOUND,
               summary="Stop watching a feed (its pending suggestions go with it)")
async def delete_source(source_id: UUID, principal: Editor, request: Request) -> Response:
    await handlers.delete_source(_pool(request), principal, source_id)
    return Response(status_code=204)


@router.get("/suggestions", response_model=list[Suggestion],
            summary="The curation queue: newest entries first, each story once")
async def list_suggestions(principal: Staff, request: Request,
                           state: Literal["new", "adopted", "dismissed"] | None = "new",
                           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    return await handlers.list_suggestions(_pool(request), principal, state, limit)


@router.post("/suggestions/{suggestion_id}/adopt", status_code=201, response_model=Content,
             summary="Turn a suggestion into a draft: title, summary, image and link from the entry, "
                     "your angle as its suggested text",
             responses={**NOT_FOUND, 409: {"description": "Already adopted or dismissed"},
                        422: {"description": "An idea without a link and no url given, or an entry that cannot be a "
                                             "content as it is"}})
async def adopt(suggestion_id: UUID, body: Adoption, principal: Editor, request: Request) -> dict[str, Any]:
    return await handlers.adopt(_pool(request), principal, suggestion_id, body)


@router.post("/suggestions/{suggestion_id}/dismiss", response_model=Suggestion,
             summary="Not for us: leaves the queue (an idea's proposer is told, with the reason if given)",
             responses={**NOT_FOUND, 409: {"description": "Already adopted or dismissed"}})
async def dismiss(suggestion_id: UUID, principal: Editor, request: Request,
                  body: Dismissal | None = None) -> dict[str, Any]:
    return await handlers.dismiss(_pool(request), principal, suggestion_id, body)


@ideas.post("/ideas", status_code=201, response_model=MyIdea,
            summary="Propose an idea to the comms team: a link worth sharing, or a story of your team",
            responses={409: {"description": "That link is in the queue already, or you have 20 ideas waiting"}})
async def propose(body: IdeaRequest, principal: Employee, request: Request) -> dict[str, Any]:
    return await handlers.propose(_pool(request), principal, body)


@ideas.get("/me/ideas", response_model=list[MyIdea], summary="My ideas and what became of them")
async def my_ideas(principal: Employee, request: Request,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    return await handlers.my_ideas(_pool(request), principal, limit)
