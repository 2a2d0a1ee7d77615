"""Fan-out: a published content becomes one notification per targeted ambassador (whose consent
is in force), streamed page by page; an updated content refreshes what they see; a retired one
leaves the feeds, what is pending is cancelled and chat messages already sent are retracted.
And the feed itself.

Nothing here talks to the outside world: the consumer's transaction records the notifications,
their events (outbox) and the deliveries to make; the delivery worker sends them.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.domain import NotEnrolled
from services.distribution.handlers.ambassadors import SOURCE
from shared import metrics, outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event
from shared.events import ContentPublished, ContentRetired, ContentUpdated, Network, ShareText


@dataclass(frozen=True)
class Policy:
    weekly_budget: int  # alerts per ambassador in any 7 days, whatever the channel
    digest_hour: int  # local hour of the daily e-mail digest
    page_size: int  # ambassadors read, targeted and recorded per round of a fan-out


class Fanout:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def on_content_published(self, conn: asyncpg.Connection, event: CloudEvent[ContentPublished]) -> None:
        """Notify every enrolled ambassador in the content's audience once, page by page (never
        the whole audience in memory); rows, deliveries and events commit with the consumer's
        transaction."""
        tenant, content = event.tenantid, event.data
        if not await repository.save_content(conn, tenant, content):
            return
        networks = domain.link_networks(content.share_texts)
        now = datetime.now(UTC)
        after: uuid.UUID | None = None
        while page := await repository.audience_candidates(conn, tenant, content.content_id, after,
                                                           self.policy.page_size):
            after = page[-1]["ambassador_id"]
            targeted = [r for r in page
                        if domain.in_audience(content.audience, _member(r), content.language, content.tags)]
            await self._notify(conn, tenant, content, targeted, networks, now)

    async def _notify(self, conn: asyncpg.Connection, tenant: str, content: ContentPublished,
                      targeted: list[asyncpg.Record], networks: list[Network], now: datetime) -> None:
        if not targeted:
            return
        planned = [self._plan(row, content, networks, now) for row in targeted]
        inserted = await repository.insert_notifications(conn, tenant, content.content_id, [
            (p.notification_id, p.ambassador_id, p.channel, p.links_json, p.status, p.variant,
             now if p.status == "sent" else None) for p in planned])
        planned = [p for p in planned if p.notification_id in inserted]
        await repository.insert_deliveries(conn, tenant, [
            (uuid.uuid4(), p.notification_id, p.ambassador_id, content.content_id, p.channel, "alert",
             p.deferral.until if p.deferral else now) for p in planned if p.status != "sent"])
        events = [self._event(tenant, content, p, now) for p in planned if p.status in ("sent", "deferred")]
        await outbox.enqueue(conn, topics.NOTIFICATIONS, events)
        for (channel, status), count in Counter((p.channel, p.status) for p in planned
                                                if p.status in ("sent", "deferred")).items():
            metrics.NOTIFICATIONS.labels(channel, status).inc(count)

    def _plan(self, row: asyncpg.Record, content: ContentPublished, networks: list[Network],
              now: datetime) -> Planned:
        channel = domain.alert_channel(row["channels"])
        fatigue = domain.Fatigue(self.policy.weekly_budget, row["max_per_day"], row["quiet_start"],
                                 row["quiet_end"], row["time_zone"])
        deferral = domain.when_to_alert(now, channel, fatigue, row["recently_sent"], self.policy.digest_hour)
        # The in-app feed needs nothing sent: an alert due now on it is sent at once.
        status = "deferred" if deferral else ("sent" if channel == "in_app" else "pending")
        ambassador_id = row["ambassador_id"]
        links = [{"code": secrets.token_urlsafe(12), "network": network.value, "destination_url": str(content.url)}
                 for network in networks]
        return Planned(uuid.uuid4(), ambassador_id, row["subsidiary"], row["department"], channel, links,
                       json.dumps(links), status, domain.variant_for(content.content_id, str(ambassador_id),
                                                                     content.share_texts), deferral)

    def _event(self, tenant: str, content: ContentPublished, p: Planned, now: datetime) -> CloudEvent[Any]:
        # Built as a plain dict (the NotificationSent / NotificationDeferred contract): validating
        # a model per ambassador would dominate a 100k fan-out.
        data: dict[str, Any] = {
            "notification_id": str(p.notification_id), "content_id": content.content_id,
            "ambassador_id": str(p.ambassador_id), "subsidiary": p.subsidiary, "department": p.department,
            "campaign": content.campaign, "channel": p.channel, "links": p.links, "reason": None,
            "at": now.isoformat()}
        if p.deferral:
            data.update(reason=p.deferral.reason, due_at=p.deferral.until.isoformat())
        return new_event(f"notification.{p.status}", source=SOURCE, subject=str(p.notification_id), tenant=tenant,
                         data=data, time=now)

    async def on_content_updated(self, conn: asyncpg.Connection, event: CloudEvent[ContentUpdated]) -> None:
        """What ambassadors see follows the newest revision (feed, alerts still to send, chat
        messages already sent where the channel allows an edit), without a new alert."""
        tenant, content = event.tenantid, event.data
        if await repository.update_content(conn, tenant, content):
            await repository.follow_up_sent_messages(conn, tenant, content.content_id, "update",
                                                     domain.EDITABLE_CHANNELS)

    async def on_content_retired(self, conn: asyncpg.Connection, event: CloudEvent[ContentRetired]) -> None:
        """A retired content leaves the feeds (nobody should share it any more); alerts still to
        send are cancelled; chat messages already sent are retracted where the channel allows."""
        tenant, content_id, at = event.tenantid, event.data.content_id, event.data.retired_at
        await repository.retire_content(conn, tenant, content_id, at)
        cancelled = await repository.cancel_content_notifications(conn, tenant, content_id, at)
        await repository.follow_up_sent_messages(conn, tenant, content_id, "retract", domain.EDITABLE_CHANNELS)
        await outbox.enqueue(conn, topics.NOTIFICATIONS, [
            new_event("notification.cancelled", source=SOURCE, subject=str(n["notification_id"]), tenant=tenant, data={
                "notification_id": str(n["notification_id"]), "content_id": content_id,
                "ambassador_id": str(n["ambassador_id"]), "subsidiary": n["subsidiary"],
                "department": n["department"], "campaign": n["campaign"], "channel": n["channel"],
                "links": json.loads(n["links"]), "reason": f"content_{event.data.reason}", "at": at.isoformat()})
            for n in cancelled])
        for n in cancelled:
            metrics.NOTIFICATIONS.labels(n["channel"], "cancelled").inc()


@dataclass(frozen=True)
class Planned:
    notification_id: uuid.UUID
    ambassador_id: uuid.UUID
    subsidiary: str
    department: str
    channel: str
    links: list[dict[str, str]]
    links_json: str
    status: str
    variant: int
    deferral: domain.Deferral | None


def _member(row: asyncpg.Record) -> domain.Member:
    return domain.Member(str(row["ambassador_id"]), row["subsidiary"], row["department"], row["site"],
                         row["country"], row["language"], groups=frozenset(row["groups"]),
                         languages=frozenset(row["languages"]), topics=frozenset(row["topics"]))


async def feed(pool: asyncpg.Pool, principal: Principal, tracking_base_url: str, limit: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        ambassador = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        if ambassador is None or ambassador["consent_expires_at"] <= datetime.now(UTC):
            raise NotEnrolled(principal.subject)
        rows = await repository.feed(conn, principal.tenant, ambassador["ambassador_id"], limit)
    return {"items": [_feed_item(row, tracking_base_url) for row in rows]}


def share_links(links: list[dict[str, str]], share_texts: list[ShareText], tracking_base_url: str,
                reader_language: str, content_language: str, variant: int) -> list[dict[str, Any]]:
    """Each network's tracked link, share-intent URL and text, in the reader's language and with
    his variant of the share texts."""
    result = []
    for link in links:
        network = Network(link["network"])
        url = domain.tracked_url(tracking_base_url, link["code"])
        text = domain.share_text_for(share_texts, network, reader_language, variant, content_language)
        result.append({"network": network, "tracked_url": url, "share_url": domain.share_intent(network, url, text),
                       "text": text})
    return result


def _feed_item(row: dict[str, Any], tracking_base_url: str) -> dict[str, Any]:
    share_texts = [ShareText.model_validate(t) for t in row["share_texts"]]
    links = share_links(row["links"], share_texts, tracking_base_url, row["reader_language"] or row["language"],
                        row["language"], row["variant"])
    return {"notification_id": row["notification_id"], "content_id": row["content_id"], "title": row["title"],
            "url": row["url"], "share_texts": share_texts, "links": links, "sent_at": row["sent_at"]}
