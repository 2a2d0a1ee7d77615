"""Content use cases: parse, decide (domain, charter), write (repository) — in that order.

Every state change and the event it emits commit in one transaction (the outbox), together
with its line in the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.content import charter as charters
from services.content import domain, repository, webhooks
from services.content.charter import Charter, Violation
from services.content.models import ContentDraft, ContentEdit, ContentFields, Localisation
from shared import metrics, outbox, topics
from shared.auth import Principal
from shared.envelope import CloudEvent, new_event
from shared.events import Audience, ContentPublished, ContentRetired, ContentUpdated, IntranetContentSubmitted
from shared.kafka import publish_now

SOURCE = "portevoix/content"
SCHEDULER = "scheduler"
log = logging.getLogger(__name__)


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


class CharterRefused(Exception):
    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(f"{len(violations)} brand charter violation(s); an admin may override with a reason")
        self.violations = violations


# --- reading -------------------------------------------------------------------------------------

async def _load(conn: asyncpg.Connection, principal: Principal, content_id: uuid.UUID, *,
                for_update: bool = False) -> dict[str, Any]:
    """The item, if it is the principal's tenant's and within their subsidiary (else NotFound:
    what one may not see does not exist)."""
    item = await repository.get(conn, principal.tenant, content_id, for_update=for_update)
    if item is None or not domain.may_manage(principal.subsidiary, item["owner_subsidiary"]):
        raise NotFound(content_id)
    return item


def _with_warnings(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "warnings": [w.model_dump() for w in charters.near_duplicates(item["share_texts"])]}


async def get_content(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return _with_warnings(await _load(conn, principal, content_id))


async def list_contents(pool: asyncpg.Pool, principal: Principal, state: str | None, limit: int,
                        due: tuple[datetime, datetime] | None = None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await repository.list_contents(conn, principal.tenant, principal.subsidiary, state, limit, due)


async def audit_trail(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        await _load(conn, principal, content_id)
        return await repository.transitions(conn, principal.tenant, content_id)


# --- authoring -----------------------------------------------------------------------------------

def _confine(principal: Principal, owner: str | None, audience: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A subsidiary's staff write for their subsidiary only, to an audience inside it."""
    if principal.subsidiary is None:
        return owner, audience
    if owner not in (None, principal.subsidiary):
        raise Forbidden(f"a {principal.subsidiary} editor cannot write for {owner}")
    targeted = audience.get("subsidiaries") or []
    if any(s != principal.subsidiary for s in targeted):
        raise Forbidden(f"the audience of a {principal.subsidiary} item stays inside {principal.subsidiary}")
    return principal.subsidiary, {**audience, "subsidiaries": [principal.subsidiary]}


async def create_content(pool: asyncpg.Pool, principal: Principal, draft: ContentDraft) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        return await insert_draft(conn, principal, draft)


async def insert_draft(conn: asyncpg.Connection, principal: Principal, draft: ContentDraft, *,
                       credit: str | None = None) -> dict[str, Any]:
    """A new draft by ``principal``, in the caller's transaction, with its charter warnings;
    ``credit``: the name an ambassador whose idea it is chose to be credited with."""
    fields = {**draft.model_dump(mode="json"), "credit": credit}
    fields["owner_subsidiary"], fields["audience"] = _confine(principal, draft.owner_subsidiary, fields["audience"])
    fields["publish_at"], fields["expire_at"] = draft.publish_at, draft.expire_at
    item = await repository.insert(conn, principal.tenant, uuid.uuid4(), fields, principal.subject)
    return _with_warnings(item)  # type: ignore[arg-type]


def _merged(item: dict[str, Any], edit: dict[str, Any]) -> dict[str, Any]:
    """The item with the edit applied, validated as a whole (raises ValidationError → 422)."""
    current = {name: item[name] for name in ContentFields.model_fields}
    merged = ContentFields.model_validate({**current, **edit})
    values = merged.model_dump(mode="json")
    values["publish_at"], values["expire_at"] = merged.publish_at, merged.expire_at
    return {name: values[name] for name in edit}


async def edit_content(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID,
                       edit: ContentEdit) -> dict[str, Any]:
    given = edit.model_dump(mode="json", exclude_unset=True)
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        changes = _merged(item, given)
        if "audience" in changes:
            _, changes["audience"] = _confine(principal, item["owner_subsidiary"], changes["audience"])
        item = await _apply_edit(conn, item, changes, principal.subject, "edit")
    return _with_warnings(item)


async def _apply_edit(conn: asyncpg.Connection, item: dict[str, Any], changes: dict[str, Any], actor: str,
                      action: str) -> dict[str, Any]:
    """A new revision by ``actor``; an approved, scheduled or published item goes back to review."""
    state = domain.state_after_edit(item["state"])
    changes = {**changes, "revision": item["revision"] + 1, "state": state,
               "authors": domain.authors_after_edit(item["authors"], actor), "charter_override_reason": None}
    if state != item["state"]:
        changes["approved_by"] = None
    updated = await repository.update(conn, item["tenant"], item["id"], changes)
    reason = "edited: back to review" if state != item["state"] else None
    await repository.record_transition(conn, item["tenant"], item["id"], updated["revision"], action,
                                       item["state"], state, actor, reason)
    return updated


# --- the charter ---------------------------------------------------------------------------------

async def charter_for(conn: asyncpg.Connection, tenant: str, subsidiary: str | None) -> Charter:
    own = await repository.charter_rules(conn, tenant, "")
    override = await repository.charter_rules(conn, tenant, subsidiary) if subsidiary else None
    return charters.effective(Charter.model_validate(own) if own else None,
                              Charter.model_validate(override) if override else None)


async def check_draft(pool: asyncpg.Pool, principal: Principal, draft: ContentDraft) -> dict[str, Any]:
    fields = draft.model_dump(mode="json")
    owner, _ = _confine(principal, draft.owner_subsidiary, fields["audience"])
    async with pool.acquire() as conn:
        charter = await charter_for(conn, principal.tenant, owner)
    return {"violations": charters.check(fields, charter), "warnings": charters.near_duplicates(fields["share_texts"])}


async def check_content(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        item = await _load(conn, principal, content_id)
        charter = await charter_for(conn, principal.tenant, item["owner_subsidiary"])
    return {"violations": charters.check(item, charter), "warnings": charters.near_duplicates(item["share_texts"])}


def _charter_gate(violations: list[Violation], principal: Principal, override_reason: str | None,
                  overridden_before: str | None) -> str | None:
    """None when the item may pass, else the override reason to audit; CharterRefused otherwise."""
    if not violations:
        return None
    if override_reason is None and overridden_before:
        return overridden_before  # an admin already overrode this very revision
    if override_reason is None:
        raise CharterRefused(violations)
    if not principal.has("admin"):
        raise Forbidden("only an admin may override the brand charter")
    return override_reason


# --- the workflow --------------------------------------------------------------------------------

async def _move(conn: asyncpg.Connection, item: dict[str, Any], wanted: str, actor: str, action: str, *,
                reason: str | None = None, detail: Any = None, changes: dict[str, Any] | None = None,
                charter: Charter | None = None) -> dict[str, Any]:
    """One transition: the row, its audit line and, when distribution must know, its event."""
    now = datetime.now(UTC)
    changes = {**(changes or {}), "state": wanted}
    if wanted == "published":
        changes["published_at"] = now
    if wanted == "retired":
        changes["retired_at"] = now
    updated = await repository.update(conn, item["tenant"], item["id"], changes)
    await repository.record_transition(conn, item["tenant"], item["id"], updated["revision"], action,
                                       item["state"], wanted, actor, reason, detail)
    if wanted == "published":
        await _emit_publication(conn, updated, published_before=item["published_at"] is not None,
                                charter=charter or Charter())
    elif wanted == "retired" and item["published_at"] is not None:
        await _emit(conn, updated, "content.retired", ContentRetired(
            content_id=str(item["id"]), reason="expired" if action == "expire" else "withdrawn", retired_at=now))
    return updated


async def _emit_publication(conn: asyncpg.Connection, item: dict[str, Any], *, published_before: bool,
                            charter: Charter) -> None:
    kind = domain.event_type_for_publication(published_before)
    model = ContentUpdated if kind == "content.updated" else ContentPublished
    await _emit(conn, item, kind, model(
        content_id=str(item["id"]), revision=item["revision"], title=item["title"], summary=item["summary"],
        url=item["url"], image_url=item["image_url"], image_alt=item["image_alt"], language=item["language"],
        tags=item["tags"],
        campaign=item["campaign"], owner_subsidiary=item["owner_subsidiary"], audience=item["audience"],
        share_texts=item["share_texts"], published_at=item["published_at"], expire_at=item["expire_at"],
        group_content_id=str(item["group_content_id"]) if item["group_content_id"] else None,
        disclosures=dict(charter.country_disclosures), credit=item["credit"],
    ))


async def _emit(conn: asyncpg.Connection, item: dict[str, Any], kind: str, data: Any) -> None:
    await outbox.enqueue(conn, topics.CONTENT_LIFECYCLE, new_event(
        kind, source=SOURCE, subject=str(item["id"]), tenant=item["tenant"], data=data))


async def submit(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        domain.check_transition(item["state"], "in_review")
        return _with_warnings(await _move(conn, item, "in_review", principal.subject, "submit"))


async def _approve(conn: asyncpg.Connection, item: dict[str, Any], principal: Principal,
                   override_reason: str | None) -> tuple[dict[str, Any], Charter]:
    domain.check_four_eyes(item["authors"], principal.subject)
    charter = await charter_for(conn, item["tenant"], item["owner_subsidiary"])
    violations = charters.check(item, charter)
    overridden = _charter_gate(violations, principal, override_reason, None)
    detail = {"overridden_violations": [v.model_dump() for v in violations]} if overridden else None
    item = await _move(conn, item, "approved", principal.subject, "approve",
                       reason=f"charter override: {overridden}" if overridden else None, detail=detail,
                       changes={"authors": [], "approved_by": principal.subject,
                                "charter_override_reason": overridden})
    return item, charter


async def approve(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID,
                  override_reason: str | None) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        domain.check_transition(item["state"], "approved")
        item, _ = await _approve(conn, item, principal, override_reason)
        return _with_warnings(item)


async def reject(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID, reason: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        if item["state"] != "in_review":
            raise domain.IllegalTransition(item["state"], "draft", f"only an item in review can be rejected, "
                                                                   f"this one is {item['state']}")
        return _with_warnings(await _move(conn, item, "draft", principal.subject, "reject", reason=reason))


async def schedule(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID, publish_at: datetime,
                   expire_at: datetime | None) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        domain.check_transition(item["state"], "scheduled")
        expire_at = expire_at or item["expire_at"]
        if expire_at and expire_at <= publish_at:
            raise domain.IllegalTransition(item["state"], "scheduled", "the item expires before that publish_at")
        at = domain.publication_time(publish_at, item["embargo_until"])
        return _with_warnings(await _move(conn, item, "scheduled", principal.subject, "schedule",
                                          reason=f"publish at {at.isoformat()}" if at else None,
                                          changes={"publish_at": publish_at, "expire_at": expire_at}))


async def unschedule(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        if item["state"] != "scheduled":
            raise domain.IllegalTransition(item["state"], "approved", f"a {item['state']} item is not scheduled")
        return _with_warnings(await _move(conn, item, "approved", principal.subject, "unschedule"))


async def publish(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID,
                  override_reason: str | None) -> dict[str, Any]:
    """Publish now. An approver may take an item not yet approved through review and approval in
    the same step: each step is audited, four eyes and the charter apply as for approval."""
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        path = domain.publication_path(item["state"])
        if domain.under_embargo(item["embargo_until"], datetime.now(UTC)):
            raise domain.IllegalTransition(item["state"], "published",
                                           f"under embargo until {item['embargo_until'].isoformat()}")
        if "approved" in path:
            domain.check_four_eyes(item["authors"], principal.subject)
        if "in_review" in path:
            item = await _move(conn, item, "in_review", principal.subject, "submit", reason="publish in one step")
        if "approved" in path:
            item, charter = await _approve(conn, item, principal, override_reason)
        else:
            charter = await charter_for(conn, item["tenant"], item["owner_subsidiary"])
            _charter_gate(charters.check(item, charter), principal, override_reason, item["charter_override_reason"])
        return _with_warnings(await _move(conn, item, "published", principal.subject, "publish", charter=charter,
                                          reason=f"charter override: {override_reason}" if override_reason else None))


async def retire(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID, reason: str | None) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        domain.check_transition(item["state"], "retired")
        return _with_warnings(await _move(conn, item, "retired", principal.subject, "withdraw", reason=reason))


# --- the scheduler -------------------------------------------------------------------------------

async def run_scheduler(pool: asyncpg.Pool, interval: float, batch: int) -> None:
    """Publish and retire on time. State lives in the rows, so a restart or downtime only delays
    (overdue rows are caught up on the next tick); replicas skip the rows another one holds."""
    while True:
        try:
            while await scheduler_tick(pool, batch) >= batch:
                pass  # more overdue rows: no pause
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("content scheduler: tick failed, retrying")
        await asyncio.sleep(interval)


async def scheduler_tick(pool: asyncpg.Pool, batch: int) -> int:
    """Expiries first: an item both due and expired during downtime is never published."""
    async with pool.acquire() as conn, conn.transaction():
        expired = await repository.due_expiries(conn, batch)
        for item in expired:
            await _move(conn, item, "retired", SCHEDULER, "expire", reason="expire_at reached")
        due = await repository.due_publications(conn, batch)
        for item in due:
            await _publish_on_schedule(conn, item)
    return max(len(expired), len(due))


async def _publish_on_schedule(conn: asyncpg.Connection, item: dict[str, Any]) -> None:
    charter = await charter_for(conn, item["tenant"], item["owner_subsidiary"])
    violations = charters.check(item, charter)
    if violations and not item["charter_override_reason"]:
        # The charter changed since approval: hold the item back for a human decision.
        await _move(conn, item, "approved", SCHEDULER, "unschedule", reason="brand charter violations at publication",
                    detail={"violations": [v.model_dump() for v in violations]})
        return
    await _move(conn, item, "published", SCHEDULER, "publish", charter=charter)


# --- ingestion from intranets and PR tools -------------------------------------------------------

def _ingested_fields(data: IntranetContentSubmitted) -> dict[str, Any]:
    return {
        "title": data.title, "summary": data.summary, "url": str(data.url),
        "image_url": str(data.image_url) if data.image_url else None, "language": data.language,
        "tags": data.tags, "owner_subsidiary": data.subsidiary,
        "audience": Audience(subsidiaries=[data.subsidiary] if data.subsidiary else []).model_dump(),
        "share_texts": [{"network": n.value, "language": data.language, "text": t, "variant": 0}
                        for n, t in (data.suggested_texts or {}).items()],
    }


async def on_intranet_content(conn: asyncpg.Connection, event: CloudEvent[IntranetContentSubmitted]) -> None:
    """A draft (or auto-approved item) per external id; higher source versions update it, others
    are stale and ignored, whatever the arrival order."""
    data, tenant = event.data, event.tenantid
    actor = f"source:{data.source_system}"
    fields = _ingested_fields(data)
    existing = await repository.by_external_id(conn, tenant, data.source_system, data.external_id)
    if existing is None:
        created = await repository.insert(conn, tenant, uuid.uuid4(), fields, actor, source_system=data.source_system,
                                          external_id=data.external_id, external_version=data.version,
                                          embargo_until=data.embargo_until)
        if created is not None:
            await _auto_approve(conn, created, data.source_system)
            return
        # Another transaction inserted it meanwhile (and committed: ON CONFLICT waited for it).
        existing = await repository.by_external_id(conn, tenant, data.source_system, data.external_id)
        assert existing is not None
    if not domain.newer(data.version, existing["external_version"]) or existing["state"] == "retired":
        return
    changes = {name: fields[name] for name in ("title", "summary", "url", "image_url", "language", "tags",
                                               "share_texts")}
    item = await _apply_edit(conn, existing, {**changes, "external_version": data.version,
                                              "embargo_until": data.embargo_until}, actor, "source_update")
    await _auto_approve(conn, item, data.source_system)


async def _auto_approve(conn: asyncpg.Connection, item: dict[str, Any], source_system: str) -> None:
    settings = await repository.source(conn, item["tenant"], source_system)
    if item["state"] not in ("draft", "in_review") or not settings or not settings["auto_approve"]:
        return
    charter = await charter_for(conn, item["tenant"], item["owner_subsidiary"])
    violations = charters.check(item, charter)
    if domain.ingested_state(True, len(violations)) == "approved":
        await _move(conn, item, "approved", f"source:{source_system}", "auto_approve",
                    reason="the tenant auto-approves this source", changes={"authors": []})


class WebhookRefused(Exception):
    pass


async def receive_webhook(pool: asyncpg.Pool, broker: KafkaBroker, tenant: str, source_system: str,
                          headers: dict[str, str | None], body: bytes, *, tolerance: float, timeout: float) -> str:
    """Verify the signature, validate the body, and put it on ``intranet.content.v1`` (answered
    only once Kafka acknowledged): from there it is the same ingestion as a Kafka producer's."""
    async with pool.acquire() as conn:
        source = await repository.source(conn, tenant, source_system)
    if source is None or not source["webhook_secret"]:
        raise WebhookRefused("no webhook secret for this tenant and source")
    try:
        webhooks.verify(source["webhook_secret"], headers.get("webhook-id"), headers.get("webhook-timestamp"),
                        headers.get("webhook-signature"), body, now=time.time(), tolerance_seconds=tolerance)
    except webhooks.InvalidSignature as error:
        metrics.WEBHOOK_SIGNATURE_FAILURES.labels("intranet").inc()
        raise WebhookRefused(str(error)) from None
    data = IntranetContentSubmitted.model_validate_json(body)  # ValidationError: 422 with the field
    if data.source_system != source_system:
        raise ValidationError.from_exception_data("IntranetContentSubmitted", [{
            "type": "value_error", "loc": ("source_system",), "input": data.source_system,
            "ctx": {"error": ValueError(f"must be {source_system!r}, the source this webhook is for")}}])
    # The webhook id is the dedup key (a replay has no second effect), unique per tenant and source.
    event = new_event("intranet.content.submitted", id=headers["webhook-id"],
                      source=f"webhook/{tenant}/{source_system}", subject=data.external_id, tenant=tenant, data=data)
    await publish_now(broker, topics.INTRANET_CONTENT, [event], timeout=timeout)
    return event.id


# --- group → subsidiary cascade ------------------------------------------------------------------

async def offer(pool: asyncpg.Pool, principal: Principal, content_id: uuid.UUID,
                subsidiaries: list[str]) -> list[dict[str, Any]]:
    if principal.subsidiary is not None:
        raise Forbidden("only group staff offer items to subsidiaries")
    async with pool.acquire() as conn, conn.transaction():
        item = await _load(conn, principal, content_id, for_update=True)
        if item["owner_subsidiary"] is not None or item["state"] not in ("approved", "scheduled", "published"):
            raise domain.IllegalTransition(item["state"], item["state"],
                                           "only an approved, scheduled or published group item can be offered")
        await repository.insert_offers(conn, principal.tenant, content_id, subsidiaries, principal.subject)
        await repository.record_transition(conn, principal.tenant, content_id, item["revision"], "offer",
                                           item["state"], item["state"], principal.subject,
                                           f"offered to {', '.join(subsidiaries)}")
        return await repository.offers(conn, principal.tenant, None, content_id)


async def list_offers(pool: asyncpg.Pool, principal: Principal,
                      group_content_id: uuid.UUID | None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await repository.offers(conn, principal.tenant, principal.subsidiary, group_content_id)


async def _open_offer(conn: asyncpg.Connection, principal: Principal, group_content_id: uuid.UUID) -> str:
    """The principal's subsidiary, whose offer of this group item awaits an answer."""
    if principal.subsidiary is None:
        raise Forbidden("a subsidiary's staff answer its offers")
    found = await repository.offer_for_update(conn, principal.tenant, group_content_id, principal.subsidiary)
    if found is None:
        raise NotFound(group_content_id)
    if found["status"] != "offered":
        raise domain.IllegalTransition(found["status"], "decided", f"this offer was already {found['status']}")
    return principal.subsidiary


async def adopt(pool: asyncpg.Pool, principal: Principal, group_content_id: uuid.UUID,
                localisation: Localisation | None) -> dict[str, Any]:
    """The subsidiary's own item, linked to the group's, sent to its own approvers."""
    async with pool.acquire() as conn, conn.transaction():
        subsidiary = await _open_offer(conn, principal, group_content_id)
        group_item = await repository.get(conn, principal.tenant, group_content_id)
        if group_item is None:
            raise NotFound(group_content_id)
        fields = {name: group_item[name] for name in ContentFields.model_fields}
        changes = localisation.model_dump(mode="json", exclude_unset=True) if localisation else {}
        fields.update(changes)
        if "audience" not in changes:  # the group's audience, narrowed to this subsidiary
            fields["audience"] = {**fields["audience"], "subsidiaries": []}
        fields["owner_subsidiary"], fields["audience"] = _confine(principal, subsidiary, fields["audience"])
        status = "localised" if changes else "adopted"
        local = await repository.insert(conn, principal.tenant, uuid.uuid4(), fields, principal.subject,
                                        embargo_until=group_item["embargo_until"], group_content_id=group_content_id)
        local = await _move(conn, local, "in_review", principal.subject, status,  # type: ignore[arg-type]
                            reason=f"{status} from group item {group_content_id}")
        await repository.decide_offer(conn, principal.tenant, group_content_id, subsidiary, status, local["id"],
                                      principal.subject, None)
        return _with_warnings(local)


async def decline(pool: asyncpg.Pool, principal: Principal, group_content_id: uuid.UUID, reason: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        subsidiary = await _open_offer(conn, principal, group_content_id)
        return await repository.decide_offer(conn, principal.tenant, group_content_id, subsidiary, "declined", None,
                                             principal.subject, reason)


# --- tenant configuration ------------------------------------------------------------------------

def _may_configure(principal: Principal, subsidiary: str | None) -> None:
    if not domain.may_manage(principal.subsidiary, subsidiary):
        raise Forbidden("a subsidiary's admin configures its own subsidiary only")


async def get_charter(pool: asyncpg.Pool, principal: Principal, subsidiary: str | None) -> dict[str, Any]:
    _may_configure(principal, subsidiary)
    async with pool.acquire() as conn:
        rules = await repository.charter_rules(conn, principal.tenant, subsidiary or "")
        effective = await charter_for(conn, principal.tenant, subsidiary)
    return {"scope": subsidiary or "", "rules": Charter.model_validate(rules or {}), "effective": effective}


async def put_charter(pool: asyncpg.Pool, principal: Principal, subsidiary: str | None,
                      rules: Charter) -> dict[str, Any]:
    _may_configure(principal, subsidiary)
    async with pool.acquire() as conn, conn.transaction():
        # Only the rules given are stored: a subsidiary inherits what it leaves unset.
        await repository.put_charter(conn, principal.tenant, subsidiary or "",
                                     rules.model_dump(mode="json", exclude_unset=True), principal.subject)
    return await get_charter(pool, principal, subsidiary)


def _public(source: dict[str, Any]) -> dict[str, Any]:
    return {"source_system": source["source_system"], "auto_approve": source["auto_approve"],
            "has_webhook_secret": bool(source["webhook_secret"])}


async def list_sources(pool: asyncpg.Pool, principal: Principal) -> list[dict[str, Any]]:
    _may_configure(principal, None)
    async with pool.acquire() as conn:
        return [_public(s) for s in await repository.sources(conn, principal.tenant)]


async def put_source(pool: asyncpg.Pool, principal: Principal, source_system: str,
                     auto_approve: bool) -> dict[str, Any]:
    _may_configure(principal, None)
    async with pool.acquire() as conn, conn.transaction():
        return _public(await repository.put_source(conn, principal.tenant, source_system, auto_approve,
                                                   principal.subject))


async def rotate_webhook_secret(pool: asyncpg.Pool, principal: Principal, source_system: str) -> dict[str, Any]:
    _may_configure(principal, None)
    secret = webhooks.new_secret()
    async with pool.acquire() as conn, conn.transaction():
        await repository.set_webhook_secret(conn, principal.tenant, source_system, secret, principal.subject)
    return {"source_system": source_system, "secret": secret}
