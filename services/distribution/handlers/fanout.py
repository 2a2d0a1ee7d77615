"""Fan-out: a published content becomes one notification per targeted ambassador (whose consent
is in force); an updated content refreshes what they see; a retired one leaves the feeds, what is
pending is cancelled (the fan-out still to do included) and chat messages already sent are
retracted. And the feed itself.

The consumer only records the fan-out to do (``fanout_slices``, in its inbox transaction: a
redelivery finds its id in the inbox). The :class:`FanoutWorker` expands it page by page, each
page one transaction (notifications by COPY, their events in the outbox, the cursor moved on): the
outbox relay publishes the first pages while the next ones are written, a crash resumes at the
cursor, and replicas share the slices. Exactly once per (content, ambassador): a page reads only
ambassadors not yet notified, and a slice is expanded by one writer at a time (its row locked).
The fatigue budget holds whatever runs at once: a page locks its ambassadors (in id order, so
pages of different contents queue rather than deadlock) and reads the slots taken by the pages
and delivery workers that held them before (see ``repository.lock_alert_budget``).

Nothing here talks to the outside world: the delivery worker sends what needs sending.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.distribution import domain, repository
from services.distribution.domain import NotEnrolled
from services.distribution.handlers.ambassadors import SOURCE
from shared import logs, metrics, outbox, topics
from shared.auth import Principal
from shared.consumer import INFRASTRUCTURE_ERRORS
from shared.envelope import CloudEvent, binary_headers, new_event, record_key
from shared.events import Audience, ContentPublished, ContentRetired, ContentUpdated, Network, ShareText

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    weekly_budget: int  # alerts per ambassador in any 7 days, whatever the channel
    digest_hour: int  # local hour of the daily e-mail digest
    page_size: int  # ambassadors read, targeted and recorded per page (one transaction) of a fan-out
    slices: int = 8  # a fan-out is cut into this many slices (the unit replicas share)
    concurrency: int = 2  # pages written at once per replica (one computes while another waits on the database)
    poll_interval: float = 1.0  # how often an idle worker looks for fan-outs (a NOTIFY wakes it sooner)


WAKE_CHANNEL = "portevoix_fanout_"  # + schema: the consumer's commit wakes the workers


async def _with_subtrees(conn: asyncpg.Connection, tenant: str, audience: Audience) -> Audience:
    """The audience with each subsidiary it names standing for its whole subtree of the org tree
    as it is at publication (a post for FR reaches FR-LYO's people too)."""
    if not audience.subsidiaries:
        return audience
    units = {unit for code in audience.subsidiaries for unit in await repository.subtree(conn, tenant, code)}
    return audience.model_copy(update={"subsidiaries": sorted(units)})


class Fanout:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def on_content_published(self, conn: asyncpg.Connection, event: CloudEvent[ContentPublished]) -> None:
        """Record the fan-out of a live content; the worker notifies its audience (each
        ambassador once, whatever the redeliveries and republications)."""
        tenant, content = event.tenantid, event.data
        if not await repository.save_content(conn, tenant, content):
            return
        audience = await _with_subtrees(conn, tenant, content.audience)
        await repository.start_fanout(conn, tenant, content.content_id, audience.model_dump_json(),
                                      content.tags, event.traceparent, self.policy.slices)
        await repository.wake_fanout_workers(conn, WAKE_CHANNEL)

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
        # First: no page of its fan-out is written any more (one being written commits first, and
        # the statements below see its notifications and cancel them with the others).
        if await repository.cancel_fanout(conn, tenant, content_id):
            log.info("fan-out of %s cancelled: the content was retired", content_id)
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


class FanoutWorker:
    """Expands the recorded fan-outs, page by page (see the module's docstring): ``concurrency``
    pages at once, each from a different slice, woken by the consumer's NOTIFY or the poll."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], policy: Policy) -> None:
        self._pool = pool  # resolved late: the pool is created at start-up, after wiring
        self.policy = policy
        self._wake = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self._pool().acquire() as listener:
                    channel = WAKE_CHANNEL + await repository.current_schema(listener)
                    await listener.add_listener(channel, self._on_notify)
                    try:
                        while True:
                            self._wake.clear()
                            await self.drain()
                            backoff = 0.5
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._wake.wait(), self.policy.poll_interval)
                    finally:
                        with contextlib.suppress(Exception):
                            await listener.remove_listener(channel, self._on_notify)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away: the cursor keeps our place, try again later
                log.exception("fan-out round failed")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def drain(self) -> int:
        """Write pages until no fan-out has work left; return how many ambassadors were notified."""
        async with asyncio.TaskGroup() as group:  # one failing cancels the others: no stray writer
            tasks = [group.create_task(self._drain_slices()) for _ in range(self.policy.concurrency)]
        return sum(task.result() for task in tasks)

    async def _drain_slices(self) -> int:
        notified = 0
        while (written := await self.page()) is not None:
            notified += written
        return notified

    async def page(self) -> int | None:
        """Write one page of the oldest fan-out slice nobody else is writing, in one transaction;
        return how many ambassadors it notified, None when there was nothing to do. A page that
        fails leaves nothing behind; its slice is retried later, the other slices go on."""
        job: asyncpg.Record | None = None
        async with self._pool().acquire() as conn:
            try:
                async with conn.transaction():
                    job = await repository.claim_fanout_slice(conn)
                    if job is None:
                        return None
                    with logs.bound(traceparent=job["traceparent"], tenant=job["tenant"]):
                        return await self._write_page(conn, job)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if job is None or isinstance(error, INFRASTRUCTURE_ERRORS):
                    raise  # the database away: the round is retried as a whole
                delay = min(2.0 ** job["attempts"], 300.0)
                log.exception("fan-out page of %s (slice %d) failed, retry in %.0fs", job["content_id"],
                              job["slice"], delay)
                await repository.postpone_fanout_slice(conn, job["tenant"], job["content_id"], job["slice"], delay,
                                                       f"{type(error).__name__}: {error}")
                return 0

    async def _write_page(self, conn: asyncpg.Connection, job: asyncpg.Record) -> int:
        tenant, content_id = job["tenant"], job["content_id"]
        if job["retired"]:  # retirement drops the slices; this only guards a row left behind
            await repository.advance_fanout(conn, tenant, content_id, job["slice"], None)
            return 0
        content = _Content.of(job)
        rows = await repository.audience_page(conn, tenant, content_id, job["after_id"], job["last_id"],
                                              self.policy.page_size, bool(content.audience.groups))
        notified = await self._notify(conn, content, rows) if rows else 0
        last = rows[-1]["ambassador_id"] if len(rows) == self.policy.page_size else None
        await repository.advance_fanout(conn, tenant, content_id, job["slice"], last)
        return notified

    async def _notify(self, conn: asyncpg.Connection, content: _Content, rows: list[asyncpg.Record]) -> int:
        """Decide for each ambassador of the page (audience, channel, fatigue, variant), then
        write the notifications, the deliveries to make and the events in a few statements."""
        now = datetime.now(UTC)
        decide = _Decisions(content, self.policy, now)
        targeted = [row for row in rows if decide.targets(row)]
        if not targeted:
            return 0
        tenant = content.tenant
        # Read after the page's rows were locked: the slots other deciders took are committed.
        budgets = await repository.alert_budget_used(conn, tenant, [row["ambassador_id"] for row in targeted])
        encode = _PageEncoder(content, now, logs.current_traceparent())  # the publication's trace
        ids = random_uuids(2 * len(targeted))  # a notification id and an event id each
        codes = link_codes(len(targeted) * len(content.networks))
        notifications: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        events: list[tuple[bytes, bytes, str, str]] = []
        counts: Counter[tuple[str, str]] = Counter()
        for n, row in enumerate(targeted):
            notification_id, event_id, ambassador_id = ids[2 * n], ids[2 * n + 1], str(row["ambassador_id"])
            channel = domain.alert_channel(row["channels"])
            deferral = decide.deferral(row, channel, budgets.get(row["ambassador_id"], ()))
            # The in-app feed needs nothing sent: an alert due now on it is sent at once. An alert
            # let through takes its slot of the budget now, sent or still to send.
            status = "deferred" if deferral else ("sent" if channel == "in_app" else "pending")
            links = encode.links(codes, n)
            notifications.append((tenant, notification_id, content.content_id, ambassador_id, channel, links, status,
                                  decide.variant(ambassador_id), now if status == "sent" else None,
                                  None if deferral else now))
            if status != "sent":
                deliveries.append((uuid.uuid4(), notification_id, ambassador_id, content.content_id, channel, "alert",
                                   deferral.until if deferral else now))
            if status == "pending":
                continue  # its event comes when the delivery worker has sent it (or deferred it)
            events.append(encode.event(status, event_id, notification_id, ambassador_id, row["subsidiary"],
                                       row["department"], channel, links, deferral))
            counts[channel, status] += 1
        await repository.copy_notifications(conn, notifications)
        await repository.insert_deliveries(conn, tenant, deliveries)
        await outbox.enqueue_encoded(conn, topics.NOTIFICATIONS, events)
        for (channel, status), count in counts.items():
            metrics.NOTIFICATIONS.labels(channel, status).inc(count)
        return len(targeted)


class _PageEncoder:
    """The JSON of a page's links and ``notification.sent`` / ``notification.deferred`` events.

    The events of a page share all their CloudEvents attributes but the id and the subject, and
    most of their ``data``: what they share is encoded once per page, and each event only joins
    its own parts in (ids and link codes, which need no escaping, and the few distinct
    placements, encoded once each). A 100k fan-out otherwise spends most of its time encoding
    the same JSON again. The unit tests check the result against ``envelope.binary_record``."""

    def __init__(self, content: _Content, now: datetime, traceparent: str | None) -> None:
        self.content, self.now, self.traceparent = content, now, traceparent
        url = json.dumps(content.url, ensure_ascii=False)
        self._link_parts = [f'","network":{json.dumps(network)},"destination_url":{url}}}'
                            for network in content.networks]  # each after its code
        self._head = '{"notification_id":"'
        self._content = f'","content_id":{_json(content.content_id)},"ambassador_id":"'
        self._tail = f',"campaign":{_json(content.campaign)},"channel":'
        self._end = f',"reason":null,"at":{_json(now.isoformat())}}}'
        self._headers: dict[str, tuple[str, str, str]] = {}
        self._strings: dict[str | None, str] = {}

    def links(self, codes: list[str], n: int) -> str:
        """The links JSON of the page's ``n``-th ambassador: one per network, codes taken in turn."""
        first = n * len(self._link_parts)
        return "[" + ",".join(f'{{"code":"{codes[first + i]}{after_code}'
                              for i, after_code in enumerate(self._link_parts)) + "]"

    def event(self, status: str, event_id: str, notification_id: str, ambassador_id: str, subsidiary: str | None,
              department: str | None, channel: str, links: str,
              deferral: domain.Deferral | None) -> tuple[bytes, bytes, str, str]:
        """(key, value, headers JSON, event id) of a ``notification.<status>``, as the outbox keeps it."""
        if deferral:  # the exception: its data as a plain dict
            data = {"notification_id": notification_id, "content_id": self.content.content_id,
                    "ambassador_id": ambassador_id, "subsidiary": subsidiary, "department": department,
                    "campaign": self.content.campaign, "channel": channel, "links": json.loads(links),
                    "reason": deferral.reason, "at": self.now.isoformat(), "due_at": deferral.until.isoformat()}
            value = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        else:
            value = (f'{self._head}{notification_id}{self._content}{ambassador_id}","subsidiary":'
                     f'{self._string(subsidiary)},"department":{self._string(department)}{self._tail}'
                     f'{self._string(channel)},"links":{links}{self._end}')
        before_id, before_subject, after = self._headers_of(status)
        headers = f"{before_id}{event_id}{before_subject}{notification_id}{after}"
        return record_key(self.content.tenant, notification_id), value.encode(), headers, event_id

    def _string(self, text: str | None) -> str:
        if (encoded := self._strings.get(text)) is None:
            encoded = self._strings[text] = _json(text)
        return encoded

    def _headers_of(self, status: str) -> tuple[str, str, str]:
        """The headers JSON of a page's ``notification.<status>`` events cut around the values
        of ``ce_id`` and ``ce_subject`` (ids: nothing to escape)."""
        if (parts := self._headers.get(status)) is None:
            text = json.dumps(binary_headers(f"notification.{status}", source=SOURCE, subject=_SUBJECT, id=_ID,
                                             tenant=self.content.tenant, time=self.now, traceparent=self.traceparent),
                              ensure_ascii=False)
            before_id, found_id, rest = text.partition(_ID)
            before_subject, found_subject, after = rest.partition(_SUBJECT)
            if not (found_id and found_subject):
                raise RuntimeError(f"unexpected CloudEvents headers: {text}")
            parts = self._headers[status] = (before_id, before_subject, after)
        return parts


_ID, _SUBJECT = "@ce_id@", "@ce_subject@"  # stand-ins, in the headers JSON, for a page's ids (no other value has @)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class _Content:
    """What a page needs of the content: its audience as published, the rest as it is now."""

    tenant: str
    content_id: str
    url: str
    language: str
    campaign: str | None
    audience: Audience
    tags: list[str]
    share_texts: list[ShareText]
    networks: list[str]

    @classmethod
    def of(cls, job: asyncpg.Record) -> _Content:
        share_texts = [ShareText.model_validate(t) for t in json.loads(job["share_texts"])]
        return cls(job["tenant"], job["content_id"], job["url"], job["language"], job["campaign"],
                   Audience.model_validate_json(job["audience"]), list(job["tags"]), share_texts,
                   [network.value for network in domain.link_networks(share_texts)])


class _Decisions:
    """The domain's decisions for one page. Many ambassadors share a placement and preferences
    (and, with no alert sent lately, a fatigue outcome), so each distinct one is decided once:
    the decisions depend on nothing else, and a 100k fan-out would otherwise spend most of its
    time deciding the same thing again."""

    def __init__(self, content: _Content, policy: Policy, now: datetime) -> None:
        self.content, self.policy, self.now = content, policy, now
        self._audience: dict[tuple[Any, ...], bool] = {}
        self._fatigue: dict[tuple[Any, ...], domain.Deferral | None] = {}

    def targets(self, row: asyncpg.Record) -> bool:
        key = (row["subsidiary"], row["department"], row["site"], row["country"], row["language"],
               tuple(row["groups"]), tuple(row["languages"]), tuple(row["topics"]))
        if (known := self._audience.get(key)) is None:
            member = domain.Member(str(row["ambassador_id"]), *key[:5], groups=frozenset(key[5]),
                                   languages=frozenset(key[6]), topics=frozenset(key[7]))
            known = self._audience[key] = domain.in_audience(self.content.audience, member, self.content.language,
                                                             self.content.tags)
        return known

    def deferral(self, row: asyncpg.Record, channel: str, budget_used: Sequence[datetime]) -> domain.Deferral | None:
        """``budget_used``: the slots of his fatigue budget taken lately (read under his lock)."""
        key = (channel, row["max_per_day"], row["quiet_start"], row["quiet_end"], row["time_zone"])
        if not budget_used and key in self._fatigue:
            return self._fatigue[key]
        fatigue = domain.Fatigue(self.policy.weekly_budget, *key[1:])
        deferral = domain.when_to_alert(self.now, channel, fatigue, budget_used, self.policy.digest_hour)
        if not budget_used:
            self._fatigue[key] = deferral
        return deferral

    def variant(self, ambassador_id: str) -> int:
        return domain.variant_for(self.content.content_id, ambassador_id, self.content.share_texts)


_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def random_uuids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one read of the system's CSPRNG:
    ``str(uuid.uuid4())`` per id costs several times more, and a fan-out needs two per ambassador."""
    h = os.urandom(16 * count).hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT_DIGIT[h[i + 16]]}{h[i + 17:i + 20]}-"
            f"{h[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]


def link_codes(count: int) -> list[str]:
    """``count`` tracked-link codes of 96 random bits each (what ``secrets.token_urlsafe(12)``
    gives: 16 URL-safe characters), from one read of the system's CSPRNG."""
    text = base64.urlsafe_b64encode(os.urandom(12 * count)).decode()
    return [text[i:i + 16] for i in range(0, 16 * count, 16)]

async def feed(pool: asyncpg.Pool, principal: Principal, tracking_base_url: str, limit: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        ambassador = await repository.active_ambassador(conn, principal.tenant, principal.subject)
        if ambassador is None or not domain.consent_in_force(ambassador, datetime.now(UTC)):
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
            "url": row["url"], "summary": row["summary"], "image_url": row["image_url"], "share_texts": share_texts,
            "links": links, "sent_at": row["sent_at"]}
