"""The tracked-link redirector: thin, it calls one handler."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from services.tracking import handlers

router = APIRouter(tags=["redirector"])

NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title></head>
<body><h1>Link not found</h1><p>This link does not exist or is no longer available.</p></body></html>
"""


@router.get("/r/{code}", status_code=302, response_class=RedirectResponse,
            summary="Follow a tracked link: count the click, redirect to the destination with UTM parameters",
            responses={302: {"description": "To the link's stored destination, UTM parameters appended"},
                       404: {"description": "Unknown or malformed code", "content": {"text/html": {}}},
                       503: {"description": "Kafka unavailable: the click could not be recorded; retry"}})
async def follow(code: str, request: Request) -> Response:
    service = request.app.state.service
    click = handlers.Click(code=code, ip=request.client.host if request.client else "",
                           user_agent=request.headers.get("user-agent"))
    try:
        location = await handlers.follow_link(service.pool, service.broker, click,
                                              kafka_timeout=service.settings.kafka_send_timeout_seconds)
    except handlers.UnknownLink:
        return link_not_found()
    # no-store: every click must reach us to be counted.
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def link_not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404)


async def not_found_page(request: Request, error: Exception) -> Response:
    """People follow links in browsers: a path under /r/ that matches no route at all (slashes
    or control characters in the code) gets the same page as an unknown code."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404 and request.url.path.startswith("/r/"):
        return link_not_found()
    return await http_exception_handler(request, error)
