"""The delivery worker: sends what the fan-out recorded, outside any Kafka consumer transaction.

Each round leases due deliveries (``FOR UPDATE SKIP LOCKED``: replicas share the work, a lease
that runs out frees the row of a replica that died), sends each one as its own task (a slow or
dead endpoint holds its own tasks only, never the others), and records each outcome in a short
transaction with its event (outbox). A deferred alert coming due takes a slot of the fatigue
budget under its ambassador's lock before it goes, or is deferred again (deferred alerts compete
for the slots that free). A failed send is retried with exponential backoff
and jitter; an endpoint failing again and again is circuit-broken (its deliveries are postponed
without calling it); a delivery that keeps failing ends as ``notification.failed``, with the
attempt (what we tried to send, and why it failed) forwarded to
``distribution.notifications.v1.dlq`` and every attempt kept in ``delivery_attempts``.

Delivery is at least once: a replica dying between a send and its record sends again after the
lease (webhook receivers deduplicate on ``webhook-id``, the delivery id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from services.distribution import channels, domain, repository
from services.distribution.handlers.ambassadors import SOURCE
from services.distribution.handlers.fanout import share_links
from shared import metrics, outbox, topics
from shared.envelope import new_event, record_key
from shared.events import ShareText
from shared.kafka import aiokafka_producer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int
    concurrency: int  # sends in flight per replica
    lease_seconds: float
    poll_interval: float
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    weekly_budget: int
    digest_hour: int
    tracking_base_url: str


class DeliveryWorker:
    def __init__(self, pool: Callable[[], asyncpg.Pool], broker: Callable[[], KafkaBroker],
                 senders: dict[str, Any], policy: DeliveryPolicy, breaker: domain.CircuitBreaker) -> None:
        self._pool, self._broker = pool, broker
        self.senders = senders
        self.policy = policy
        self.breaker = breaker
        self.in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        backoff = 0.5
        try:
            while True:
                try:
                    started = await self.round()
                    backoff = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database away: the next round retries
                    log.exception("delivery round failed")
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if not started:
                    await asyncio.sleep(self.policy.poll_interval)
        finally:
            # Let the sends in flight record their outcome; what does not finish in time is sent
            # again after its lease.
            if self.in_flight:
                await asyncio.wait(self.in_flight, timeout=5)
            for task in self.in_flight:
                task.cancel()

    async def round(self) -> int:
        """Lease what is due (up to the free send slots) and start sending it; return how many
        deliveries were started."""
        free = self.policy.concurrency - len(self.in_flight)
        if free <= 0:
            await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        async with self._pool().acquire() as conn:
            rows = await repository.claim_deliveries(conn, min(free, self.policy.batch_size),
                                                     self.policy.lease_seconds)
        for job in _jobs(rows):
            task = asyncio.create_task(self.deliver(job))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return len(rows)

    async def deliver(self, job: list[asyncpg.Record]) -> None:
        """One send: an alert (a digest bundles several), an edit or a retraction."""
        try:
            await self._deliver(job)
        except Exception:  # recorded nowhere: the lease runs out and the delivery is retried
            log.exception("delivery %s failed unexpectedly", job[0]["delivery_id"])

    async def _deliver(self, job: list[asyncpg.Record]) -> None:
        now = datetime.now(UTC)
        first = job[0]
        if first["action"] == "alert":
            job = await self._still_wanted(job, now)
            if not job or await self._deferred(job, now):
                return
            first = job[0]
        channel = first["channel"]
        key = f"{first['tenant']}/{channel}"
        sender = self.senders.get(channel)
        ref: dict[str, Any] | None = None
        try:
            if channel == "in_app":
                pass  # the feed is the delivery: recording it as sent is all there is to do
            elif sender is None:
                raise channels.SendFailed(f"channel {channel!r} is not available", retryable=False)
            elif not self.breaker.allows(key, time.monotonic()):
                raise channels.SendFailed(f"circuit open for {key}: too many consecutive failures")
            else:
                ref = await self._send(sender, job)
                self.breaker.succeeded(key)
        except channels.SendFailed as failure:
            if sender is not None and not str(failure).startswith("circuit open"):
                self.breaker.failed(key, time.monotonic())
            await self._failed(job, failure, now)
            return
        await self._succeeded(job, ref)

    async def _send(self, sender: Any, job: list[asyncpg.Record]) -> dict[str, Any] | None:
        first = job[0]
        endpoint = (channels.Endpoint(first["endpoint_url"], first["endpoint_secret"])
                    if first["endpoint_url"] else None)
        items = [self._item(row) for row in job]
        message_id = str(first["delivery_id"])
        if first["action"] == "alert":
            recipient = channels.Recipient(str(first["ambassador_id"]), first["email"])
            return await sender.alert(endpoint, recipient, items, message_id)
        ref = json.loads(first["external_ref"]) if first["external_ref"] else {}
        await getattr(sender, first["action"])(endpoint, ref, items[0], message_id)
        return None

    def _item(self, row: asyncpg.Record) -> channels.Item:
        texts = [ShareText.model_validate(t) for t in json.loads(row["share_texts"])]
        links = share_links(json.loads(row["links"]), texts, self.policy.tracking_base_url,
                            row["language"] or row["content_language"], row["content_language"], row["variant"])
        return channels.Item(str(row["notification_id"]), row["content_id"], row["title"], row["url"],
                             [channels.Link(str(link["network"]), link["tracked_url"], link["share_url"], link["text"])
                              for link in links])

    async def _still_wanted(self, job: list[asyncpg.Record], now: datetime) -> list[asyncpg.Record]:
        """Cancel alerts whose ambassador left or whose content was retired meanwhile."""
        wanted = [r for r in job if r["active"] and not r["retired"]
                  and r["notification_status"] in ("pending", "deferred")]
        for row in job:
            if row not in wanted:
                async with self._pool().acquire() as conn, conn.transaction():
                    await repository.finish_delivery(conn, row["tenant"], row["delivery_id"], "cancelled", now)
                    if await repository.set_notification_status(conn, row["tenant"], row["notification_id"],
                                                                "cancelled", now):
                        reason = "content_retired" if row["retired"] else "ambassador_withdrawn"
                        await self._emit(conn, row, "cancelled", now, reason=reason)
        return wanted

    async def _deferred(self, job: list[asyncpg.Record], now: datetime) -> bool:
        """Take a slot of the fatigue budget for a deferred alert now due, or defer it again
        (other alerts may have taken the slot that freed): decided under the ambassador's lock,
        so replicas racing for the same slot never both take it. An alert the fan-out let
        through holds its slot already; a digest goes at its hour."""
        first = job[0]
        if first["channel"] == "email_digest" or first["has_budget"]:
            return False
        fatigue = domain.Fatigue(self.policy.weekly_budget, first["max_per_day"], first["quiet_start"],
                                 first["quiet_end"], first["time_zone"])
        tenant, ambassador_id = first["tenant"], first["ambassador_id"]
        async with self._pool().acquire() as conn, conn.transaction():
            await repository.lock_alert_budget(conn, tenant, ambassador_id)
            used = (await repository.alert_budget_used(conn, tenant, [ambassador_id])).get(ambassador_id, [])
            deferral = domain.when_to_alert(now, first["channel"], fatigue, used, self.policy.digest_hour)
            if deferral is None:
                await repository.take_alert_budget(conn, tenant, first["notification_id"], now)
                return False
            await repository.postpone_delivery(conn, tenant, first["delivery_id"], deferral.until, attempted=False)
            if first["notification_status"] == "pending" and await repository.set_notification_status(
                    conn, tenant, first["notification_id"], "deferred", now):
                await self._emit(conn, first, "deferred", now, reason=deferral.reason, due_at=deferral.until)
                metrics.NOTIFICATIONS.labels(first["channel"], "deferred").inc()
        return True

    async def _succeeded(self, job: list[asyncpg.Record], ref: dict[str, Any] | None) -> None:
        now = datetime.now(UTC)
        async with self._pool().acquire() as conn, conn.transaction():
            for row in job:
                if not await repository.finish_delivery(conn, row["tenant"], row["delivery_id"], "done", now):
                    continue
                if row["action"] != "alert":
                    continue
                if await repository.set_notification_status(conn, row["tenant"], row["notification_id"], "sent",
                                                            now, ref):
                    await self._emit(conn, row, "sent", now)
                    metrics.NOTIFICATIONS.labels(row["channel"], "sent").inc()
                elif ref is not None and row["channel"] in domain.EDITABLE_CHANNELS:
                    # Retired or withdrawn while the message was on its way: take it back.
                    await repository.insert_deliveries(conn, row["tenant"], [
                        (uuid.uuid4(), row["notification_id"], row["ambassador_id"], row["content_id"],
                         row["channel"], "retract", now)])
                    await conn.execute("UPDATE notifications SET external_ref = $3 WHERE tenant = $1 AND "
                                       "notification_id = $2", row["tenant"], row["notification_id"], json.dumps(ref))

    async def _failed(self, job: list[asyncpg.Record], failure: channels.SendFailed, now: datetime) -> None:
        attempt = job[0]["attempts"] + 1
        final = not failure.retryable or attempt >= self.policy.max_attempts
        if final:
            for row in job:
                await self._dead_letter(row, str(failure), attempt)
        delay = domain.retry_delay(attempt, self.policy.backoff_base_seconds, self.policy.backoff_max_seconds,
                                   random.random())
        async with self._pool().acquire() as conn, conn.transaction():
            for row in job:
                await repository.record_attempt(conn, row["tenant"], row["delivery_id"], attempt, str(failure))
                if not final:
                    await repository.postpone_delivery(conn, row["tenant"], row["delivery_id"],
                                                       now + timedelta(seconds=delay), attempted=True)
                    metrics.NOTIFICATIONS.labels(row["channel"], "retried").inc()
                    continue
                if not await repository.finish_delivery(conn, row["tenant"], row["delivery_id"], "failed", now):
                    continue
                metrics.NOTIFICATIONS.labels(row["channel"], "failed").inc()
                if row["action"] == "alert" and await repository.set_notification_status(
                        conn, row["tenant"], row["notification_id"], "failed", now):
                    await self._emit(conn, row, "failed", now, reason=str(failure)[:500])
        if not final:
            log.info("delivery %s on %s failed (attempt %d), retry in %.1fs: %s", job[0]["delivery_id"],
                     job[0]["channel"], attempt, delay, failure)

    async def _dead_letter(self, row: asyncpg.Record, cause: str, attempts: int) -> None:
        """The attempt as it was (what, to whom, on which channel) and why it failed, on the DLQ,
        acknowledged by Kafka before the failure is recorded (a crash in between: sent twice)."""
        attempt = {"tenant": row["tenant"], "delivery_id": str(row["delivery_id"]),
                   "notification_id": str(row["notification_id"]), "content_id": row["content_id"],
                   "ambassador_id": str(row["ambassador_id"]), "channel": row["channel"], "action": row["action"],
                   "endpoint": row["endpoint_url"], "links": json.loads(row["links"])}
        headers = [("x-portevoix-dlq-cause", cause[:2000].encode()),
                   ("x-portevoix-dlq-consumer", b"distribution-delivery"),
                   ("x-portevoix-dlq-attempts", str(attempts).encode()),
                   ("x-portevoix-dlq-at", datetime.now(UTC).isoformat().encode()),
                   ("ce_tenantid", row["tenant"].encode()), ("content-type", b"application/json")]
        producer = aiokafka_producer(self._broker())
        await (await producer.send(topics.NOTIFICATIONS.dlq.name, value=json.dumps(attempt).encode(),
                                   key=record_key(row["tenant"], str(row["notification_id"])), headers=headers))

    async def _emit(self, conn: asyncpg.Connection, row: asyncpg.Record, status: str, now: datetime, *,
                    reason: str | None = None, due_at: datetime | None = None) -> None:
        data: dict[str, Any] = {
            "notification_id": str(row["notification_id"]), "content_id": row["content_id"],
            "ambassador_id": str(row["ambassador_id"]), "subsidiary": row["subsidiary"] or "",
            "department": row["department"] or "", "campaign": row["campaign"], "channel": row["channel"],
            "links": json.loads(row["links"]), "reason": reason, "at": now.isoformat(),
            "due_at": due_at.isoformat() if due_at else None}
        await outbox.enqueue(conn, topics.NOTIFICATIONS, new_event(
            f"notification.{status}", source=SOURCE, subject=str(row["notification_id"]), tenant=row["tenant"],
            data=data, time=now))


def _jobs(rows: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """One job per delivery, except the daily digest: one e-mail per ambassador with all his
    due digest alerts."""
    jobs: list[list[asyncpg.Record]] = []
    digests: dict[tuple[str, uuid.UUID], list[asyncpg.Record]] = {}
    for row in rows:
        if row["channel"] == "email_digest" and row["action"] == "alert":
            digests.setdefault((row["tenant"], row["ambassador_id"]), []).append(row)
        else:
            jobs.append([row])
    return jobs + list(digests.values())
