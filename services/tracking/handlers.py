"""Tracking use cases: parse, decide (domain), write (repository) — in that order."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.tracking import domain, repository
from services.tracking.models import (
    NewWebhookSecret,
    Rejection,
    ShareConfirmation,
    ShareRecorded,
    WebhookAnswer,
    WebhookEvent,
    WebhookSecret,
)
from shared import outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event, record_key
from shared.events import EngagementKind, EngagementRecorded, NotificationSent
from shared.kafka import publish_now

log = logging.getLogger(__name__)
SOURCE = "portevoix/tracking"
DELIVERIES_KEPT = timedelta(days=1)  # far past the 5-minute signature tolerance


class UnknownLink(Exception):
    pass


async def on_notification_sent(conn: asyncpg.Connection, event: CloudEvent[NotificationSent]) -> None:
    await repository.save_links(conn, event.tenantid, event.data)


# --- the redirector ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Click:
    code: str
    ip: str
    user_agent: str | None
    preview: bool = False  # a HEAD request: a link checker or unfurler, never a person


async def follow_link(pool: asyncpg.Pool, click: Click) -> str:
    """Record a click on a tracked link and return where to send the browser.

    The click and its engagement event are committed in one small transaction (the event in the
    outbox, published by the relay): the redirect never waits for Kafka, and a click made while
    Kafka is down is kept and sent when it is back."""
    if not domain.valid_code(click.code):
        raise UnknownLink(click.code)
    client = domain.client_fingerprint(click.code, click.ip, click.user_agent)
    async with pool.acquire() as conn, conn.transaction():
        link = await repository.link(conn, click.code)
        if link is None:
            raise UnknownLink(click.code)
        location = domain.with_utm(link["destination_url"], network=link["network"], content_id=link["content_id"],
                                   campaign=link["campaign"], ambassador_id=link["ambassador_id"])
        if not domain.safe_location(location):
            log.warning("link %s has a destination we will not redirect to", click.code)
            raise UnknownLink(click.code)
        unique = await repository.mark_click(conn, click.code, client, domain.UNIQUE_WINDOW)
        engagement = new_event(
            "engagement.recorded", source=SOURCE, subject=link["content_id"], tenant=link["tenant"],
            data=EngagementRecorded(
                content_id=link["content_id"], kind=EngagementKind.click, network=link["network"],
                ambassador_id=link["ambassador_id"], link_code=click.code,
                human=not click.preview and domain.is_human(click.user_agent), unique=unique,
                occurred_at=datetime.now(UTC)))
        await outbox.enqueue(conn, topics.ENGAGEMENTS, engagement, key=record_key(link["tenant"], link["content_id"]))
    return location


async def prune_forever(pool: asyncpg.Pool, every_seconds: float = 300.0) -> None:
    """Clicks older than the uniqueness window and deliveries older than the replay window only
    take room: drop them now and then."""
    while True:
        try:
            async with pool.acquire() as conn:
                clicks = await repository.prune_clicks(conn, domain.UNIQUE_WINDOW)
                deliveries = await repository.prune_deliveries(conn, DELIVERIES_KEPT)
            log.debug("pruned %d expired clicks and %d old deliveries", clicks, deliveries)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("pruning failed, next round in %.0fs: %r", every_seconds, error)
        await asyncio.sleep(every_seconds)


# --- engagement webhooks -----------------------------------------------------------------------

class MalformedBatch(Exception):
    """Not a batch at all (not JSON, no events list): 400."""


class BatchTooLarge(Exception):
    """More bytes or events than one call may carry: 413."""


class NothingAccepted(Exception):
    """Every event of the batch was rejected: 422 with the reasons, nothing recorded."""

    def __init__(self, answer: WebhookAnswer) -> None:
        super().__init__("every event of the batch was rejected")
        self.answer = answer


@dataclass(frozen=True)
class WebhookCall:
    source: str
    webhook_id: str | None
    timestamp: str | None
    signatures: str | None
    body: bytes


async def receive_webhook(pool: asyncpg.Pool, broker: KafkaBroker, call: WebhookCall, *, max_events: int,
                          kafka_timeout: float) -> WebhookAnswer:
    """Verify the signature, validate each event, and record the valid ones once per webhook-id:
    the answer is given only after Kafka acknowledged them (else KafkaUnavailable: 503)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        tenant, secrets = (await repository.active_secrets(conn, call.source) if domain.valid_source(call.source)
                           else (None, []))
        domain.verify_signature(secrets, webhook_id=call.webhook_id, timestamp=call.timestamp,
                                signatures=call.signatures, body=call.body, now=now)
        assert tenant is not None and call.webhook_id is not None  # a signature matched a secret of the source
        items = parse_batch(call.body, max_events)
        valid, rejected = validate_events(items, now)
        async with conn.transaction():
            engagements, unknown = await _resolve(conn, tenant, call.source, call.webhook_id, valid)
            answer = WebhookAnswer(webhook_id=call.webhook_id, accepted=len(engagements),
                                   rejected=sorted([*rejected, *unknown], key=lambda r: r.index))
            if items and not engagements:
                raise NothingAccepted(answer)
            if not await repository.claim_delivery(conn, call.source, call.webhook_id, answer.model_dump()):
                stored = await repository.delivery_answer(conn, call.source, call.webhook_id)
                return WebhookAnswer.model_validate({**stored, "duplicate": True})
            # Keyed by content (to_binary's default key: tenant/subject), pipelined, acks=all.
            await publish_now(broker, topics.ENGAGEMENTS, engagements, timeout=kafka_timeout)
    return answer


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedBatch(f"body is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise MalformedBatch('body must be a JSON object with an "events" list')
    items: list[Any] = document["events"]
    if len(items) > max_events:
        raise BatchTooLarge(f"{len(items)} events in one call, at most {max_events}")
    return items


def validate_events(items: list[Any], now: datetime) -> tuple[list[tuple[int, WebhookEvent]], list[Rejection]]:
    """Each event on its own: a bad one is rejected with its reason, the others go on."""
    valid, rejected = [], []
    for index, item in enumerate(items):
        try:
            event = WebhookEvent.model_validate(item)
        except ValidationError as error:
            rejected.append(Rejection(index=index, reason=_reason(error)))
            continue
        if domain.too_far_ahead(event.occurred_at, now):
            rejected.append(Rejection(index=index, reason="occurred_at: in the future"))
            continue
        valid.append((index, event))
    return valid, rejected


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in error.errors()[:5])


async def _resolve(conn: asyncpg.Connection, tenant: str, source: str, webhook_id: str,
                   valid: list[tuple[int, WebhookEvent]]) -> tuple[list[CloudEvent[Any]], list[Rejection]]:
    """The engagements of the events that name the tenant's own contents and links."""
    contents = await repository.known_contents(conn, tenant, sorted({e.content_id for _, e in valid}))
    codes = sorted({e.link_code for _, e in valid if e.link_code})
    links = await repository.tenant_links(conn, tenant, codes) if codes else {}
    engagements, rejected = [], []
    for index, event in valid:
        link = links.get(event.link_code) if event.link_code else None
        reason = domain.reference_problem(
            content_id=event.content_id, network=str(event.network), ambassador_id=event.ambassador_id,
            link_code=event.link_code, known_contents=contents, link=dict(link) if link else None)
        if reason:
            rejected.append(Rejection(index=index, reason=reason))
            continue
        engagements.append(new_event(
            "engagement.recorded", source=SOURCE, subject=event.content_id, tenant=tenant,
            id=domain.event_id(source, webhook_id, index),
            data=EngagementRecorded(
                content_id=event.content_id, kind=EngagementKind(event.type), network=event.network,
                count=event.count, ambassador_id=event.ambassador_id or (link["ambassador_id"] if link else None),
                link_code=event.link_code, connector=source, occurred_at=event.occurred_at)))
    return engagements, rejected


# --- webhook secrets (admin) -------------------------------------------------------------------

class SourceTaken(Exception):
    """Source names are global (the URL has no tenant) and this one is another tenant's: 409."""


class TooManySecrets(Exception):
    """Rotation needs two or three active secrets, not an unbounded list to try: 409."""


class UnknownSource(Exception):
    pass


async def add_webhook_secret(pool: asyncpg.Pool, principal: Principal, source: str) -> NewWebhookSecret:
    if not domain.valid_source(source):
        raise UnknownSource(source)
    secret = domain.new_webhook_secret()
    async with pool.acquire() as conn, conn.transaction():
        if await repository.claim_source(conn, source, principal.tenant) != principal.tenant:
            raise SourceTaken(source)
        if await repository.count_active_secrets(conn, source) >= domain.MAX_ACTIVE_SECRETS:
            raise TooManySecrets(source)
        row = await repository.add_secret(conn, uuid.uuid4(), source, secret)
    return NewWebhookSecret(**dict(row), secret=secret)


async def webhook_secrets(pool: asyncpg.Pool, principal: Principal, source: str) -> list[WebhookSecret]:
    async with pool.acquire() as conn:
        await _own_source(conn, principal, source)
        return [WebhookSecret(**dict(row)) for row in await repository.list_secrets(conn, source)]


async def revoke_webhook_secret(pool: asyncpg.Pool, principal: Principal, source: str, secret_id: uuid.UUID) -> None:
    async with pool.acquire() as conn:
        await _own_source(conn, principal, source)
        if not await repository.revoke_secret(conn, source, secret_id):
            raise UnknownSource(f"{source}/{secret_id}")


async def _own_source(conn: asyncpg.Connection, principal: Principal, source: str) -> None:
    """Another tenant's source is reported as unknown: its existence is none of the caller's business."""
    if not domain.valid_source(source) or await repository.source_tenant(conn, source) != principal.tenant:
        raise UnknownSource(source)


# --- share confirmations -----------------------------------------------------------------------

class InvalidShare(ValueError):
    pass


async def confirm_share(pool: asyncpg.Pool, principal: Principal, share: ShareConfirmation) -> ShareRecorded:
    """An ambassador says they posted a content. The link code they received names the content
    and the (pseudonymous) ambassador; the token, the tenant. Counted once per (content,
    ambassador, network, post), through the outbox like clicks."""
    post_url = str(share.post_url) if share.post_url else None
    async with pool.acquire() as conn, conn.transaction():
        link = await repository.link(conn, share.link_code)
        if link is None or link["tenant"] != principal.tenant:
            raise UnknownLink(share.link_code)
        network = str(share.network or link["network"])
        try:
            key = domain.post_key(network, post_url)
        except ValueError as error:
            raise InvalidShare(str(error)) from error
        counted = await repository.record_share(conn, principal.tenant, link, network, key, post_url,
                                                share.link_code)
        if counted:
            await outbox.enqueue(conn, topics.ENGAGEMENTS, new_event(
                "engagement.recorded", source=SOURCE, subject=link["content_id"], tenant=principal.tenant,
                data=EngagementRecorded(content_id=link["content_id"], kind=EngagementKind.share, network=network,
                                        ambassador_id=link["ambassador_id"], link_code=share.link_code,
                                        occurred_at=datetime.now(UTC))),
                key=record_key(principal.tenant, link["content_id"]))
    return ShareRecorded(content_id=link["content_id"], network=network, counted=counted)
