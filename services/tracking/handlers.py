"""Tracking use cases: parse, decide (domain), write (repository) — in that order."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from faststream.kafka import KafkaBroker

from services.tracking import domain, repository
from shared import topics
from shared.envelope import CloudEvent, new_event, record_key
from shared.events import EngagementKind, EngagementRecorded, NotificationSent
from shared.kafka import KafkaUnavailable, publish_now

log = logging.getLogger(__name__)
SOURCE = "portevoix/tracking"


class UnknownLink(Exception):
    pass


@dataclass(frozen=True)
class Click:
    code: str
    ip: str
    user_agent: str | None


async def on_notification_sent(conn: asyncpg.Connection, event: CloudEvent[NotificationSent]) -> None:
    await repository.save_links(conn, event.tenantid, event.data)


async def follow_link(pool: asyncpg.Pool, broker: KafkaBroker, click: Click, *, kafka_timeout: float) -> str:
    """Record a click on a tracked link and return where to send the browser. The engagement is
    acknowledged by Kafka before we answer, so a redirect means the click is counted."""
    if not domain.valid_code(click.code):
        raise UnknownLink(click.code)
    client = domain.client_fingerprint(click.code, click.ip, click.user_agent)
    async with pool.acquire() as conn:
        link = await repository.link(conn, click.code)
        if link is None:
            raise UnknownLink(click.code)
        unique = await repository.mark_click(conn, click.code, client, domain.UNIQUE_WINDOW)
    engagement = new_event(
        "engagement.recorded", source=SOURCE, subject=link["content_id"], tenant=link["tenant"],
        data=EngagementRecorded(
            content_id=link["content_id"], kind=EngagementKind.click, network=link["network"],
            ambassador_id=link["ambassador_id"], link_code=click.code, human=domain.is_human(click.user_agent),
            unique=unique, occurred_at=datetime.now(UTC)))
    try:
        await publish_now(broker, topics.ENGAGEMENTS, [engagement], key=record_key(link["tenant"], link["content_id"]),
                          timeout=kafka_timeout)
    except KafkaUnavailable:
        if unique:  # the click was not counted: its retry must still be the unique one
            await _forget_click(pool, click.code, client)
        raise
    return domain.with_utm(link["destination_url"], network=link["network"], content_id=link["content_id"],
                           campaign=link["campaign"], ambassador_id=link["ambassador_id"])


async def _forget_click(pool: asyncpg.Pool, code: str, client: bytes) -> None:
    try:
        async with pool.acquire() as conn:
            await repository.forget_click(conn, code, client)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # The caller's 503 matters more; the retry will merely be counted as not unique.
        log.warning("could not forget an unrecorded click on %s: %r", code, error)


async def prune_clicks_forever(pool: asyncpg.Pool, every_seconds: float = 300.0) -> None:
    """Clicks older than the uniqueness window only take room: drop them now and then."""
    while True:
        try:
            async with pool.acquire() as conn:
                pruned = await repository.prune_clicks(conn, domain.UNIQUE_WINDOW)
            log.debug("pruned %d expired clicks", pruned)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("pruning expired clicks failed, next round in %.0fs: %r", every_seconds, error)
        await asyncio.sleep(every_seconds)
