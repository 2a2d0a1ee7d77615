"""Watch use cases: subscribe sources, poll them into suggestions, curate the queue."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from pydantic import ValidationError

from services.content import handlers as contents
from services.content.models import ContentDraft
from services.content.watch import domain, repository
from services.content.watch.models import Adoption, Dismissal, IdeaRequest, SourceEdit, SourceRequest
from shared import metrics
from shared.auth import Principal

log = logging.getLogger(__name__)
SAME_STORY_WINDOW = timedelta(days=14)  # a title seen in the scope's queue this recently is the same story
USER_AGENT = "Portevoix-Watch/1.0 (+employee advocacy; conditional polling)"


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


class Conflict(Exception):
    pass


class Invalid(Exception):
    """Valid JSON that cannot be acted on as it is: 422 with the reason."""


@dataclass(frozen=True)
class PollSettings:
    interval: timedelta
    max_failures: int
    timeout: float
    max_bytes: int
    allow_private_addresses: bool
    lease_seconds: float = 120.0
    batch: int = 20


def _scope(principal: Principal) -> str | None:
    """What the principal may see: a subsidiary's staff their subsidiary, the group's everything."""
    return principal.subsidiary


def _target_scope(principal: Principal, subsidiary: str | None) -> str:
    if principal.subsidiary is not None and subsidiary not in (None, principal.subsidiary):
        raise Forbidden(f"a {principal.subsidiary} editor watches for {principal.subsidiary} only")
    return principal.subsidiary or subsidiary or ""


# --- sources -------------------------------------------------------------------------------------

async def add_source(pool: asyncpg.Pool, principal: Principal, body: SourceRequest) -> dict[str, Any]:
    scope = _target_scope(principal, body.subsidiary)
    async with pool.acquire() as conn:
        source = await repository.add_source(conn, principal.tenant, uuid.uuid4(), scope, str(body.url), body.name,
                                             body.tags, body.language, principal.subject)
    if source is None:
        raise Conflict("this feed is already watched here")
    return _with_health(source)


async def list_sources(pool: asyncpg.Pool, principal: Principal) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [_with_health(s) for s in await repository.sources(conn, principal.tenant, _scope(principal))]


async def edit_source(pool: asyncpg.Pool, principal: Principal, source_id: uuid.UUID,
                      edit: SourceEdit) -> dict[str, Any]:
    changes = edit.model_dump(exclude_unset=True, exclude={"resume"})
    async with pool.acquire() as conn, conn.transaction():
        await _source(conn, principal, source_id)
        return _with_health(await repository.edit_source(conn, principal.tenant, source_id, changes,
                                                         resume=edit.resume or changes.get("active") is True))


async def delete_source(pool: asyncpg.Pool, principal: Principal, source_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _source(conn, principal, source_id)
        await repository.delete_source(conn, principal.tenant, source_id)


async def _source(conn: asyncpg.Connection, principal: Principal, source_id: uuid.UUID) -> dict[str, Any]:
    source = await repository.source(conn, principal.tenant, _scope(principal), source_id)
    if source is None:
        raise NotFound("no such source")
    return source


def _with_health(source: dict[str, Any]) -> dict[str, Any]:
    return {**source, "health": domain.health(source), "subsidiary": source["scope"] or None}


# --- polling -------------------------------------------------------------------------------------

async def run_watcher(pool_of: Any, settings: PollSettings, every: float) -> None:
    """Poll due sources for as long as the service runs (every replica; leases keep them apart)."""
    async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=True, max_redirects=5,
                                 headers={"User-Agent": USER_AGENT}) as client:
        while True:
            await asyncio.sleep(every)
            try:
                while await poll_due(pool_of(), client, settings) == settings.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away: try again at the next tick
                log.warning("watch: polling round failed: %r", error)


async def poll_due(pool: asyncpg.Pool, client: httpx.AsyncClient, settings: PollSettings) -> int:
    """Lease the sources due, poll them concurrently, store what they brought; return how many."""
    async with pool.acquire() as conn:
        due = await repository.lease_due(conn, settings.batch, settings.lease_seconds)
    await asyncio.gather(*(poll_one(pool, client, settings, source) for source in due))
    return len(due)


async def poll_one(pool: asyncpg.Pool, client: httpx.AsyncClient, settings: PollSettings,
                   source: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    status: int | None = None
    try:
        response = await _fetch(client, settings, source)
        status = response.status_code
        if status == 304:
            outcome = "not_modified"
            async with pool.acquire() as conn:
                await repository.polled(conn, source["id"], ok=True, failures=0, error=None, parked=False,
                                        next_poll_at=domain.next_poll(now, settings.interval, 0))
            metrics.WATCH_POLLS.labels(outcome).inc()
            return
        if status >= 400:
            raise domain.FeedRefused(f"HTTP {status} from the publisher")
        entries = domain.parse_feed(response.content, response.headers.get("content-type"))
    except (domain.FeedRefused, httpx.HTTPError, _TooLarge, _Private) as error:
        await _failed(pool, settings, source, now, status, _cause(error))
        return
    async with pool.acquire() as conn, conn.transaction():
        added = await _store(conn, source, entries)
        await repository.polled(conn, source["id"], ok=True, failures=0, error=None, parked=False,
                                next_poll_at=domain.next_poll(now, settings.interval, 0),
                                etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
                                entries=len(entries))
    metrics.WATCH_POLLS.labels("ok").inc()
    metrics.WATCH_SUGGESTIONS.labels("feed").inc(added)


async def _failed(pool: asyncpg.Pool, settings: PollSettings, source: dict[str, Any], now: datetime,
                  status: int | None, cause: str) -> None:
    failures = source["failures"] + 1
    parked = domain.parks(failures, settings.max_failures, status)
    async with pool.acquire() as conn:
        await repository.polled(conn, source["id"], ok=False, failures=failures, error=cause[:2000], parked=parked,
                                next_poll_at=domain.next_poll(now, settings.interval, failures))
    metrics.WATCH_POLLS.labels("parked" if parked else "failed").inc()
    log.info("watch: source %s failed (%d in a row%s): %s", source["id"], failures, ", parked" if parked else "", cause)


class _TooLarge(Exception):
    pass


class _Private(Exception):
    pass


def _cause(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "the publisher did not answer in time"
    if isinstance(error, httpx.HTTPError):
        return f"could not reach the publisher: {type(error).__name__}: {error}"
    return str(error)


async def _fetch(client: httpx.AsyncClient, settings: PollSettings, source: dict[str, Any]) -> httpx.Response:
    """GET the feed conditionally, its body bounded; refuse addresses inside the network unless
    allowed (a feed URL must not turn the poller into a way into the intranet)."""
    if not settings.allow_private_addresses:
        await _refuse_private(source["url"])
    headers = {name: value for name, value in (("If-None-Match", source["etag"]),
                                               ("If-Modified-Since", source["last_modified"])) if value}
    async with client.stream("GET", source["url"], headers=headers) as response:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > settings.max_bytes:
                raise _TooLarge(f"the feed is larger than {settings.max_bytes} bytes")
            chunks.append(chunk)
    response._content = b"".join(chunks)  # read within the bound above
    return response


async def _refuse_private(url: str) -> None:
    host = urlsplit(url).hostname or ""
    with contextlib.suppress(ValueError):
        if _private(ipaddress.ip_address(host)):
            raise _Private(f"{host} is an internal address")
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as error:
        raise _Private(f"{host} does not resolve: {error}") from error
    if any(_private(ipaddress.ip_address(info[4][0])) for info in infos):
        raise _Private(f"{host} resolves to an internal address")


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
            or address.is_multicast or address.is_unspecified)


async def _store(conn: asyncpg.Connection, source: dict[str, Any], entries: list[domain.Entry]) -> int:
    """The entries as suggestions of the source's scope, each story once: a link already in the
    queue, or a near-identical title from the last two weeks, only notes this source too."""
    recent = await repository.recent_titles(conn, source["tenant"], source["scope"],
                                            datetime.now(UTC) - SAME_STORY_WINDOW)
    added = 0
    for entry in entries:
        title_key = domain.title_key(entry.title)
        if (seen := domain.similar_title(title_key, recent)) is not None:
            await repository.note_also_from(conn, source, "title_key", seen)
            continue
        values = {"link": entry.link, "link_key": domain.link_key(entry.link), "title": entry.title,
                  "title_key": title_key, "summary": entry.summary, "image_url": entry.image_url,
                  "published_at": entry.published_at}
        if await repository.add_suggestion(conn, source, uuid.uuid4(), values):
            added += 1
            recent.append(title_key)
    return added


# --- the queue -----------------------------------------------------------------------------------

async def list_suggestions(pool: asyncpg.Pool, principal: Principal, state: str | None,
                           limit: int) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [_suggestion(s) for s in await repository.suggestions(conn, principal.tenant, _scope(principal),
                                                                     state, limit)]


async def adopt(pool: asyncpg.Pool, principal: Principal, suggestion_id: uuid.UUID,
                body: Adoption) -> dict[str, Any]:
    """The suggestion becomes a draft in one action (title, summary, image and link from the
    entry, the angle as its suggested text), once: a second adoption is a conflict. An idea's
    proposer is credited with the name they chose, if they chose one."""
    async with pool.acquire() as conn, conn.transaction():
        suggestion = await _pending(conn, principal, suggestion_id)
        language = body.language or suggestion["language"]
        url = str(body.url) if body.url else suggestion["link"]
        if not url:
            raise Invalid("this idea came without a link: give the url of the page to share")
        try:
            draft = ContentDraft.model_validate({
                "title": suggestion["title"], "summary": suggestion["summary"], "url": url,
                "image_url": suggestion["image_url"], "language": language, "tags": suggestion["tags"],
                "image_alt": (body.image_alt or suggestion["title"]) if suggestion["image_url"] else None,
                "owner_subsidiary": suggestion["scope"] or None,
                "share_texts": [{"network": network, "language": language, "text": body.angle}
                                for network in dict.fromkeys(body.networks)]})
        except ValidationError as error:
            raise Invalid(f"this entry cannot become a content as it is: {error.errors()[0]['msg']}") from None
        content = await contents.insert_draft(conn, principal, draft, credit=suggestion["credit_name"])
        await repository.decide(conn, suggestion_id, "adopted", principal.subject, content["id"])
    metrics.WATCH_CURATED.labels("adopted").inc()
    return content


async def dismiss(pool: asyncpg.Pool, principal: Principal, suggestion_id: uuid.UUID,
                  body: Dismissal | None) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await _pending(conn, principal, suggestion_id)
        decided = await repository.decide(conn, suggestion_id, "dismissed", principal.subject,
                                          reason=body.reason if body else None)
    metrics.WATCH_CURATED.labels("dismissed").inc()
    return _suggestion(decided)


# --- ambassadors' ideas --------------------------------------------------------------------------

async def propose(pool: asyncpg.Pool, principal: Principal, idea: IdeaRequest) -> dict[str, Any]:
    """An ambassador's idea joins the comms team's queue of their subsidiary (or the group's)."""
    idea_id = uuid.uuid4()
    url = str(idea.url) if idea.url else None
    values = {"link": url or "", "link_key": domain.idea_link_key(url, str(idea_id)), "title": idea.title,
              "title_key": domain.title_key(idea.title), "summary": idea.story, "language": idea.language,
              "credit_name": idea.credit_name}
    async with pool.acquire() as conn, conn.transaction():
        if await repository.waiting_ideas(conn, principal.tenant, principal.subject) >= domain.MAX_WAITING_IDEAS:
            raise Conflict(f"you have {domain.MAX_WAITING_IDEAS} ideas waiting: wait for the comms team's answer")
        if not await repository.add_idea(conn, principal.tenant, principal.subsidiary or "", idea_id,
                                         principal.subject, values):
            raise Conflict("this link is already in the comms team's queue: thank you!")
    metrics.WATCH_SUGGESTIONS.labels("idea").inc()
    return _my_idea({"id": idea_id, "title": idea.title, "story": idea.story, "url": url, "reason": None,
                     "credit_name": idea.credit_name, "state": "new", "content_state": None, "content_id": None,
                     "published_at": None, "created_at": datetime.now(UTC)})


async def my_ideas(pool: asyncpg.Pool, principal: Principal, limit: int) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [_my_idea(i) for i in await repository.ideas_of(conn, principal.tenant, principal.subject, limit)]


def _my_idea(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "outcome": domain.idea_outcome(row["state"], row["content_state"], row["published_at"])}


async def _pending(conn: asyncpg.Connection, principal: Principal, suggestion_id: uuid.UUID) -> dict[str, Any]:
    suggestion = await repository.suggestion_for_update(conn, principal.tenant, _scope(principal), suggestion_id)
    if suggestion is None:
        raise NotFound("no such suggestion")
    if suggestion["state"] != "new":
        raise Conflict(f"this suggestion was {suggestion['state']} already")
    return suggestion


def _suggestion(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "subsidiary": row["scope"] or None}
