"""Distribution use cases: parse, decide (domain), write (repository) — in that order."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.models import EnrolmentRequest
from shared import outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event
from shared.events import (
    AmbassadorEnrolled,
    AmbassadorWithdrawn,
    ContentPublished,
    ContentRetired,
    EmployeeDeparted,
    EmployeeUpserted,
    Network,
    NotificationSent,
    ShareText,
    TrackedLink,
)

SOURCE = "portevoix/distribution"
CHANNEL = "in_app"
AUDIENCE_PAGE = 1000  # ambassadors read, targeted and notified per round of a fan-out


class NotEnrolled(Exception):
    pass


# --- HR directory ------------------------------------------------------------------------------

async def on_employee_upserted(conn: asyncpg.Connection, event: CloudEvent[EmployeeUpserted]) -> None:
    """Newest version wins, whatever the arrival order: an older record is simply not applied."""
    await repository.upsert_employee(conn, event.tenantid, event.data)


async def on_employee_departed(conn: asyncpg.Connection, event: CloudEvent[EmployeeDeparted]) -> None:
    """A (newer) departure ends the employee's enrolment: he no longer speaks for the company."""
    if await repository.mark_departed(conn, event.tenantid, event.data):
        await _withdraw(conn, event.tenantid, event.data.employee_id, "departed", datetime.now(UTC))


# --- enrolment ---------------------------------------------------------------------------------

async def enrol(pool: asyncpg.Pool, principal: Principal, request: EnrolmentRequest) -> tuple[dict[str, Any], bool]:
    """Enrol the caller (an HR employee id); return the enrolment and whether it is new.
    The ambassador row and ``ambassador.enrolled`` commit together."""
    async with pool.acquire() as conn, conn.transaction():
        employee = await repository.employee_for_update(conn, principal.tenant, principal.subject)
        domain.check_enrolment(known=employee is not None, departed=bool(employee and employee["departed"]))
        assert employee is not None
        existing = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        if existing is not None:
            return existing, False
        networks = {str(network): size for network, size in request.networks.items()}
        ambassador = await repository.insert_ambassador(conn, principal.tenant, uuid.uuid4(), principal.subject,
                                                        request.consent_text_version, networks)
        assert ambassador is not None  # the employee row lock keeps a concurrent enrolment out
        await outbox.enqueue(conn, topics.AMBASSADORS, new_event(
            "ambassador.enrolled", source=SOURCE, subject=str(ambassador["ambassador_id"]), tenant=principal.tenant,
            data=AmbassadorEnrolled(
                ambassador_id=str(ambassador["ambassador_id"]), subsidiary=employee["subsidiary"],
                department=employee["department"], site=employee["site"], country=employee["country"],
                language=employee["language"], network_audience=networks, effective_at=ambassador["enrolled_at"],
            )))
        return ambassador, True


async def opt_out(pool: asyncpg.Pool, principal: Principal) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if not await _withdraw(conn, principal.tenant, principal.subject, "opted_out", datetime.now(UTC)):
            raise NotEnrolled(principal.subject)


async def _withdraw(conn: asyncpg.Connection, tenant: str, employee_id: str, reason: str, at: datetime) -> bool:
    ambassador_id = await repository.withdraw_ambassador(conn, tenant, employee_id, reason, at)
    if ambassador_id is None:
        return False
    await outbox.enqueue(conn, topics.AMBASSADORS, new_event(
        "ambassador.withdrawn", source=SOURCE, subject=str(ambassador_id), tenant=tenant,
        data=AmbassadorWithdrawn(ambassador_id=str(ambassador_id), reason=reason, effective_at=at)))
    return True


# --- notifications -----------------------------------------------------------------------------

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
        members = [domain.Member(str(r["ambassador_id"]), r["subsidiary"], r["department"], r["site"],
                                 r["country"], r["language"]) for r in page]
        targeted = [m for m in members if domain.in_audience(content.audience, m)]
        await _notify(conn, tenant, content, targeted, networks)


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


# --- feed --------------------------------------------------------------------------------------

async def feed(pool: asyncpg.Pool, principal: Principal, tracking_base_url: str, limit: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        ambassador = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        if ambassador is None:
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
