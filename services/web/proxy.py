"""The same-origin reverse proxy: ``/api/{service}/{path}`` → the service, so the browser talks
to one origin and no service needs CORS. Status, headers and body are streamed both ways; the
caller's Authorization header goes through unchanged, or the bearer of the caller's browser session
(each service checks it itself)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from services.web import domain

log = logging.getLogger(__name__)


async def forward(client: httpx.AsyncClient, bases: Mapping[str, str], service: str, path: str,
                  request: Request, authorization: str | None = None) -> Response:
    try:
        url = domain.upstream_url(bases, service, path, request.url.query)
    except domain.UnknownService:
        return JSONResponse({"detail": f"no service {service!r}: one of {', '.join(domain.SERVICES)}"}, 404)
    headers = domain.forwarded_request_headers(request.headers.items())
    if authorization:
        headers["authorization"] = authorization
    if request.client:
        headers["x-forwarded-for"] = request.client.host
    body = _body(request) if request.method in ("POST", "PUT", "PATCH", "DELETE") else None
    upstream = client.build_request(request.method, url, headers=headers, content=body)
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.HTTPError as error:
        log.warning("proxy: %s unreachable: %s", service, type(error).__name__)
        return JSONResponse({"detail": f"the {service} service is unavailable"}, 502, headers={"Retry-After": "5"})
    return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                             headers=dict(domain.forwarded_response_headers(answer.headers.multi_items())),
                             background=BackgroundTask(answer.aclose))


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk
