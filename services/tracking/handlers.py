"""Tracking use cases: parse, decide (domain), write (repository) — in that order."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import ValidationError
from pydantic_core import to_json

from services.tracking import domain, repository
from services.tracking.group_commit import GroupCommit
from services.tracking.link_cache import KnownContents, Link, LinkCache
from services.tracking.models import (
    NewWebhookSecret,
    Rejection,
    ShareConfirmation,
    ShareRecorded,
    WebhookAnswer,
    WebhookBatch,
    WebhookEvent,
    WebhookSecret,
)
from shared import outbox, topics
from shared.auth import Principal, holder_digest
from shared.envelope import CloudEvent, KafkaRecord, binary_headers, binary_record, new_event, record_key
from shared.events import (
    AmbassadorProfile,
    AmbassadorUpdated,
    AmbassadorWithdrawn,
    EngagementKind,
    EngagementRecorded,
    NotificationSent,
)
from shared.logs import current_traceparent

log = logging.getLogger(__name__)
SOURCE = "portevoix/tracking"
CONNECTOR = EngagementRecorded.model_fields["connector"].default  # clicks are our own, not a connector's
DELIVERIES_KEPT = timedelta(days=1)  # far past the 5-minute signature tolerance


class UnknownLink(Exception):
    pass


async def on_notification_sent(conn: asyncpg.Connection, event: CloudEvent[NotificationSent]) -> None:
    await repository.save_links(conn, event.tenantid, event.data)


async def on_ambassador_profile(conn: asyncpg.Connection, event: CloudEvent[AmbassadorProfile]) -> None:
    """Enrolled or renewed: his shares count; consent lapsed: they do not until he renews; any
    other profile change leaves that as it is."""
    data = event.data
    active = domain.counts_shares_after(data.change if isinstance(data, AmbassadorUpdated) else None)
    await repository.save_ambassador(conn, event.tenantid, data.ambassador_id, data.holder, active, data.effective_at)


async def on_ambassador_withdrawn(conn: asyncpg.Connection, event: CloudEvent[AmbassadorWithdrawn]) -> None:
    data = event.data
    await repository.save_ambassador(conn, event.tenantid, data.ambassador_id, None, False, data.effective_at)


# --- the redirector ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Click:
    code: str
    ip: str
    user_agent: str | None
    preview: bool = False  # a HEAD request: a link checker or unfurler, never a person
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Redirector:
    """Follows tracked links: links held in memory once learnt, and the clicks of concurrent
    requests recorded together, one transaction per group (each request still answers only
    once its own click and engagement event are committed)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, cache_size: int) -> None:
        self._pool = pool
        self.links = LinkCache(cache_size)
        self._clicks: GroupCommit[tuple[Link, Click], None] = GroupCommit(self._record)

    async def follow(self, click: Click) -> str:
        """Record a click on a tracked link and return where to send the browser.

        The click and its engagement event are committed in one transaction (the event in the
        outbox, published by the relay): the redirect never waits for Kafka, and a click made
        while Kafka is down is kept and sent when it is back."""
        if not domain.valid_code(click.code):
            raise UnknownLink(click.code)
        link = self.links.get(click.code) or await self._learn(click.code)
        if link is None:
            raise UnknownLink(click.code)
        if link.location is None:
            log.warning("link %s has a destination we will not redirect to", click.code)
            raise UnknownLink(click.code)
        await self._clicks.submit((link, click))
        return link.location

    async def _learn(self, code: str) -> Link | None:
        async with self._pool().acquire() as conn:
            row = await repository.link(conn, code)
        if row is None:
            return None
        location = domain.with_utm(row["destination_url"], network=row["network"], content_id=row["content_id"],
                                   campaign=row["campaign"], link_code=code)
        link = Link(code=code, tenant=row["tenant"], content_id=row["content_id"], ambassador_id=row["ambassador_id"],
                    network=row["network"], location=domain.location_header(location),
                    key=record_key(row["tenant"], row["content_id"]))
        self.links.put(link)
        return link

    async def _record(self, clicks: list[tuple[Link, Click]]) -> list[None]:
        clients = [(link.code, domain.client_fingerprint(link.code, click.ip, click.user_agent))
                   for link, click in clicks]
        async with self._pool().acquire() as conn, conn.transaction():
            opened = await repository.open_click_windows(conn, sorted(set(clients)), domain.UNIQUE_WINDOW)
            unique = domain.unique_clicks(clients, opened)
            await outbox.enqueue_records(conn, topics.ENGAGEMENTS, [
                click_engagement(link, click, unique=u) for (link, click), u in zip(clicks, unique, strict=True)])
        return [None] * len(clicks)


def click_engagement(link: Link, click: Click, *, unique: bool) -> KafkaRecord:
    """The engagement.recorded event of a click, built directly as a record (no model round
    trip: this runs for every click; tests check it parses into EngagementRecorded)."""
    return binary_record("engagement.recorded", source=SOURCE, subject=link.content_id, tenant=link.tenant,
                         key=link.key, time=click.at, data={
                             "content_id": link.content_id, "kind": EngagementKind.click.value,
                             "network": link.network, "count": 1, "ambassador_id": link.ambassador_id,
                             "link_code": link.code, "human": not click.preview and domain.is_human(click.user_agent),
                             "unique": unique, "connector": CONNECTOR, "occurred_at": click.at.isoformat()})


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


async def receive_webhook(pool: asyncpg.Pool, call: WebhookCall, *, known: KnownContents,
                          max_events: int) -> WebhookAnswer:
    """Verify the signature, validate each event, and record the valid ones once per webhook-id:
    the delivery and its engagements commit together (the outbox publishes them), so a 2xx means
    durable and a retry of the same webhook-id, even after a crash, gets the first answer again."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        tenant, secrets = (await repository.active_secrets(conn, call.source) if domain.valid_source(call.source)
                           else (None, []))
        domain.verify_signature(secrets, webhook_id=call.webhook_id, timestamp=call.timestamp,
                                signatures=call.signatures, body=call.body, now=now)
        assert tenant is not None and call.webhook_id is not None  # a signature matched a secret of the source
        valid, rejected = validate_batch(call.body, max_events, now)
        async with conn.transaction():
            engagements, unknown = await _resolve(conn, known, tenant, call.source, call.webhook_id, valid)
            answer = WebhookAnswer(webhook_id=call.webhook_id, accepted=len(engagements),
                                   rejected=sorted([*rejected, *unknown], key=lambda r: r.index))
            if (valid or rejected) and not engagements:
                raise NothingAccepted(answer)
            if not await repository.claim_delivery(conn, call.source, call.webhook_id, answer.model_dump()):
                stored = await repository.delivery_answer(conn, call.source, call.webhook_id)
                return WebhookAnswer.model_validate({**stored, "duplicate": True})
            # Keyed by content (the default key: tenant/subject).
            await outbox.enqueue_records(conn, topics.ENGAGEMENTS, engagements)
    return answer


def validate_batch(body: bytes, max_events: int, now: datetime) -> tuple[list[tuple[int, WebhookEvent]],
                                                                        list[Rejection]]:
    """Each event on its own: a bad one is rejected with its reason, the others go on."""
    rejected: list[Rejection] = []
    try:  # the usual case, every event well-formed: parsed and validated in one call, in Rust
        checked = list(enumerate(WebhookBatch.model_validate_json(body).events))
    except ValidationError:
        checked, rejected = _validate_one_by_one(parse_batch(body))
    if len(checked) + len(rejected) > max_events:
        raise BatchTooLarge(f"{len(checked) + len(rejected)} events in one call, at most {max_events}")
    valid = []
    for index, event in checked:
        if domain.too_far_ahead(event.occurred_at, now):
            rejected.append(Rejection(index=index, reason="occurred_at: in the future"))
            continue
        valid.append((index, event))
    return valid, rejected


def parse_batch(body: bytes) -> list[Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedBatch(f"body is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise MalformedBatch('body must be a JSON object with an "events" list')
    items: list[Any] = document["events"]
    return items


def _validate_one_by_one(items: list[Any]) -> tuple[list[tuple[int, WebhookEvent]], list[Rejection]]:
    checked, rejected = [], []
    for index, item in enumerate(items):
        try:
            checked.append((index, WebhookEvent.model_validate(item)))
        except ValidationError as error:
            rejected.append(Rejection(index=index, reason=_reason(error)))
    return checked, rejected


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in error.errors()[:5])


async def _resolve(conn: asyncpg.Connection, known: KnownContents, tenant: str, source: str, webhook_id: str,
                   valid: list[tuple[int, WebhookEvent]]) -> tuple[list[KafkaRecord], list[Rejection]]:
    """The engagements of the events that name the tenant's own contents and links."""
    content_ids = {e.content_id for _, e in valid}
    if asked := known.unknown(tenant, content_ids):
        found = await repository.known_contents(conn, tenant, sorted(asked))
        known.learn(tenant, found)
        content_ids -= asked - found
    codes = sorted({e.link_code for _, e in valid if e.link_code})
    links = await repository.tenant_links(conn, tenant, codes) if codes else {}
    named = sorted({e.ambassador_id for _, e in valid if e.ambassador_id and not e.link_code})
    ambassadors = await repository.known_ambassadors(conn, tenant, named) if named else set()
    return engagement_records(tenant, source, webhook_id, valid, content_ids, links, datetime.now(UTC), ambassadors)


def engagement_records(tenant: str, source: str, webhook_id: str, valid: list[tuple[int, WebhookEvent]],
                       contents: set[str], links: Mapping[str, Mapping[str, str]],
                       now: datetime, ambassadors: Collection[str] = ()) -> tuple[list[KafkaRecord], list[Rejection]]:
    """The records of the events whose content and link are the tenant's, and why the others
    are not. Built directly as records, the attributes they share computed once per batch (the
    same headers and value as ``envelope.binary_record``: tests check it, and that they parse
    into EngagementRecorded). One traceparent for the batch: its events have one parent, the call."""
    shared_headers = binary_headers("engagement.recorded", source=SOURCE, tenant=tenant, id="", subject="", time=now,
                                    traceparent=current_traceparent())
    engagements, rejected = [], []
    for index, event in valid:
        link = links.get(event.link_code) if event.link_code else None
        network = event.network.value
        reason = domain.reference_problem(
            content_id=event.content_id, network=network, ambassador_id=event.ambassador_id,
            link_code=event.link_code, known_contents=contents, link=dict(link) if link else None,
            known_ambassadors=ambassadors)
        if reason:
            rejected.append(Rejection(index=index, reason=reason))
            continue
        value = to_json({
            "content_id": event.content_id, "kind": event.type, "network": network, "count": event.count,
            "ambassador_id": event.ambassador_id or (link["ambassador_id"] if link else None),
            "link_code": event.link_code, "human": True, "unique": True, "connector": source,
            "occurred_at": event.occurred_at.isoformat()})
        engagements.append(KafkaRecord(key=record_key(tenant, event.content_id), value=value, headers={
            **shared_headers, "ce_id": domain.event_id(source, webhook_id, index), "ce_subject": event.content_id}))
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


class ShareRefused(Exception):
    """The caller may not confirm this share (403), or tracking does not know its ambassador yet (409)."""

    def __init__(self, claim: domain.ShareClaim) -> None:
        super().__init__(claim.value)
        self.claim = claim


async def confirm_share(pool: asyncpg.Pool, principal: Principal, share: ShareConfirmation,
                        identity_key: str) -> ShareRecorded:
    """An ambassador says they posted a content. The link code they received names the content
    and the (pseudonymous) ambassador; only that ambassador may confirm it (the caller's holder
    digest is the ambassador's). Counted once per (content, ambassador, network, post), through
    the outbox like clicks."""
    post_url = str(share.post_url) if share.post_url else None
    async with pool.acquire() as conn, conn.transaction():
        link = await repository.link(conn, share.link_code)
        if link is None or link["tenant"] != principal.tenant:
            raise UnknownLink(share.link_code)
        owner = await repository.ambassador(conn, principal.tenant, link["ambassador_id"])
        claim = domain.share_claim(owner, holder_digest(identity_key, principal.tenant, principal.subject))
        if claim is not domain.ShareClaim.OWN:
            raise ShareRefused(claim)
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


async def my_shares(pool: asyncpg.Pool, principal: Principal, identity_key: str, limit: int) -> list[dict[str, Any]]:
    """What the caller confirmed sharing: found by his holder digest, so across his devices and
    enrolment periods, without the front keeping anything."""
    async with pool.acquire() as conn:
        rows = await repository.holder_shares(conn, principal.tenant,
                                              holder_digest(identity_key, principal.tenant, principal.subject), limit)
    return [dict(r) for r in rows]
