"""Fan-out: a published content becomes one notification per targeted ambassador (whose consent
is in force), page by page; a retired content leaves the feeds. And the feed itself."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.domain import NotEnrolled
from services.distribution.handlers.ambassadors import SOURCE
from shared import outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event
from shared.events import ContentPublished, ContentRetired, Network, NotificationSent, ShareText, TrackedLink

CHANNEL = "in_app"
AUDIENCE_PAGE = 1000  # ambassadors read, targeted and notified per round of a fan-out


async def on_content_published(conn: asyncpg.Connection, event: CloudEvent[ContentPublished]) -> None:
    """Notify every enrolled ambassador in the content's audience once, page by page; the rows
    and their ``notification.sent`` events commit with the consumer's transaction."""
    tenant, content = event.tenantid, event.data
    if not await repository.save_content(conn, tenant, content):
        return
    networks = domain.link_networks(content.share_texts)
    after: uuid.UUID | None = None
    while page := await repository.audience_candidates(conn, tenant, content.content_id, after, AUDIENCE_PAGE):
        after = page[-1]["ambassador_id"]
        members = [_member(r) for r in page]
        targeted = [m for m in members if domain.in_audience(content.audience, m, content.language, content.tags)]
        await _notify(conn, tenant, content, targeted, networks)


def _member(row: asyncpg.Record) -> domain.Member:
    return domain.Member(str(row["ambassador_id"]), row["subsidiary"], row["department"], row["site"],
                         row["country"], row["language"], groups=frozenset(row["groups"]),
                         languages=frozenset(row["languages"]), topics=frozenset(row["topics"]))


async def _notify(conn: asyncpg.Connection, tenant: str, content: ContentPublished, members: list[domain.Member],
                  networks: list[Network]) -> None:
    if not members:
        return
    sent_at = datetime.now(UTC)
    planned = {
        uuid.uuid4(): (member, [TrackedLink(code=secrets.token_urlsafe(12), network=network,
                                            destination_url=content.url) for network in networks])
        for member in members
    }
    inserted = await repository.insert_notifications(
        conn, tenant, content.content_id, CHANNEL, sent_at,
        [(nid, uuid.UUID(member.ambassador_id), [link.model_dump(mode="json") for link in links])
         for nid, (member, links) in planned.items()])
    await outbox.enqueue(conn, topics.NOTIFICATIONS, [
        new_event("notification.sent", source=SOURCE, subject=str(nid), tenant=tenant, data=NotificationSent(
            notification_id=str(nid), content_id=content.content_id, ambassador_id=member.ambassador_id,
            subsidiary=member.subsidiary, department=member.department, campaign=content.campaign,
            channel=CHANNEL, links=links, at=sent_at))
        for nid, (member, links) in planned.items() if nid in inserted
    ])


async def on_content_retired(conn: asyncpg.Connection, event: CloudEvent[ContentRetired]) -> None:
    """A retired content leaves the feeds: nobody should share it any more."""
    await repository.retire_content(conn, event.tenantid, event.data.content_id, event.data.retired_at)


async def feed(pool: asyncpg.Pool, principal: Principal, tracking_base_url: str, limit: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        ambassador = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        if ambassador is None or ambassador["consent_expires_at"] <= datetime.now(UTC):
            raise NotEnrolled(principal.subject)
        rows = await repository.feed(conn, principal.tenant, ambassador["ambassador_id"], limit)
    return {"items": [_feed_item(row, tracking_base_url) for row in rows]}


def _feed_item(row: dict[str, Any], tracking_base_url: str) -> dict[str, Any]:
    share_texts = [ShareText.model_validate(t) for t in row["share_texts"]]
    links = []
    for link in row["links"]:
        network = Network(link["network"])
        url = domain.tracked_url(tracking_base_url, link["code"])
        text = domain.share_text_for(share_texts, network, row["language"])
        links.append({"network": network, "tracked_url": url, "share_url": domain.share_intent(network, url, text)})
    return {"notification_id": row["notification_id"], "content_id": row["content_id"], "title": row["title"],
            "url": row["url"], "share_texts": share_texts, "links": links, "sent_at": row["sent_at"]}
