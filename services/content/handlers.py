"""Content use cases: parse, decide (domain), write (repository) — in that order."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.content import domain, repository
from services.content.models import ContentDraft
from shared import outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event
from shared.events import ContentPublished, IntranetContentSubmitted

SOURCE = "portevoix/content"


class NotFound(Exception):
    pass


async def create_content(pool: asyncpg.Pool, principal: Principal, draft: ContentDraft) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        return await repository.insert(conn, principal.tenant, uuid.uuid4(), draft.model_dump(mode="json"),
                                       principal.subject)


async def get_content(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        item = await repository.get(conn, principal.tenant, content_id)
    if item is None:
        raise NotFound(content_id)
    return item


async def publish_content(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    """Publish: the state change and the ``content.published`` event commit together."""
    async with pool.acquire() as conn, conn.transaction():
        item = await repository.get(conn, principal.tenant, content_id, for_update=True)
        if item is None:
            raise NotFound(content_id)
        domain.check_transition(item["state"], "published")
        item = await repository.set_state(conn, principal.tenant, content_id, item["state"], "published",
                                          principal.subject, None)
        await outbox.enqueue(conn, topics.CONTENT_LIFECYCLE, new_event(
            "content.published", source=SOURCE, subject=str(content_id), tenant=principal.tenant,
            data=published_event(item)))
        return item


def published_event(item: dict[str, Any]) -> ContentPublished:
    return ContentPublished(
        content_id=str(item["id"]), revision=item["revision"], title=item["title"], summary=item["summary"],
        url=item["url"], image_url=item["image_url"], language=item["language"], tags=item["tags"],
        campaign=item["campaign"], owner_subsidiary=item["owner_subsidiary"], audience=item["audience"],
        share_texts=item["share_texts"], published_at=item["published_at"],
    )


async def on_intranet_content(conn: asyncpg.Connection, event: CloudEvent[IntranetContentSubmitted]) -> None:
    """An intranet or PR tool submitted content: a draft, updated by higher source versions only."""
    data = event.data
    draft = {
        "title": data.title, "summary": data.summary, "url": str(data.url),
        "image_url": str(data.image_url) if data.image_url else None, "language": data.language,
        "tags": data.tags, "owner_subsidiary": data.subsidiary,
        "share_texts": [{"network": n, "language": data.language, "text": t, "variant": 0}
                        for n, t in (data.suggested_texts or {}).items()],
    }
    existing = await repository.by_external_id(conn, event.tenantid, data.source_system, data.external_id)
    if existing is None:
        await repository.insert(conn, event.tenantid, uuid.uuid4(), draft, f"source:{data.source_system}",
                                data.source_system, data.external_id, data.version)
    elif domain.newer(data.version, existing["external_version"]):
        await repository.update_from_source(conn, event.tenantid, existing["id"], draft, data.version)
