"""The audience side: ambassadors read their feed and share; colleagues (and link-preview bots)
click the tracked links; the social networks' connector reports reactions, comments, reshares
and impressions through signed webhooks; one webhook and one Kafka record are delivered twice
on purpose. Everything sent is tallied, to be compared with what reporting counts."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook

from deploy.demo.api import Api, DemoError, each, expect, poll
from deploy.demo.console import Console
from deploy.demo.directory import Ambassador
from shared import topics

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{n}.0 " \
          "Safari/537.36"
UNFURLERS = {"linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
             "x": "Twitterbot/1.0", "xing": "XING-contenttabreceiver/2.0", "facebook": "facebookexternalhit/1.1"}
SLACK_PREVIEW = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
POST_URLS = {"linkedin": "https://www.linkedin.com/feed/update/urn:li:activity:{n}/",
             "x": "https://x.com/acme_people/status/{n}", "xing": "https://www.xing.com/news/posts/{n}",
             "facebook": "https://www.facebook.com/permalink.php?story_fbid={n}"}
WEBHOOK_BATCH = 200
LINK_TIMEOUT = 60.0  # how long a first click may wait for tracking to learn the link


@dataclass
class Tally:
    """What the demo sent, per KPI, as reporting should count it."""

    sent: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Post:
    """One share: an ambassador posted a content on a network with his tracked link."""

    ambassador: Ambassador
    content_id: str
    network: str
    code: str
    audience: int

    @property
    def path(self) -> str:
        return f"/r/{self.code}"


# --- feeds and shares -----------------------------------------------------------------------------

async def read_feeds(api: Api, console: Console, ambassadors: list[Ambassador],
                     expected: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Each ambassador's in-app feed: employee id → content id → item (with its tracked links)."""
    counter = console.counter("feeds read", len(ambassadors))

    async def one(ambassador: Ambassador) -> tuple[str, dict[str, Any]]:
        employee_id = ambassador.person.employee_id
        feed = expect(await api.distribution.get("/v1/me/feed", headers=api.as_(employee_id, "employee")), 200,
                      what=f"feed of {employee_id}")
        items = {item["content_id"]: item for item in feed["items"]}
        missing = expected[employee_id] - set(items)
        if missing:
            raise DemoError(f"{employee_id}'s feed lacks {sorted(missing)}")
        return employee_id, items

    feeds = dict(await each(ambassadors, one, counter=counter))
    counter.finish(f"{len(feeds)} ambassadors read their feed (links per network, text in their language)")
    return feeds


def sample_texts(ambassadors: list[Ambassador], feeds: dict[str, dict[str, Any]], content_id: str) -> list[str]:
    """What one ambassador per language sees to post on LinkedIn (the content's text in his language)."""
    lines, seen = [], set()
    for ambassador in ambassadors:
        language = ambassador.person.subsidiary.language
        item = feeds[ambassador.person.employee_id].get(content_id)
        link = next((x for x in (item or {}).get("links", []) if x["network"] == "linkedin"), None)
        if language not in seen and link:
            seen.add(language)
            text = link["text"] if len(link["text"]) <= 60 else link["text"][:59] + "…"
            lines.append(f"{ambassador.person.name} ({language}): “{text}” + {link['tracked_url']}")
    return lines


def plan_posts(ambassadors: list[Ambassador], feeds: dict[str, dict[str, Any]], rng: random.Random) -> list[Post]:
    """Who shares what where: about half of those told, on the networks they declared."""
    posts = []
    for ambassador in ambassadors:
        for content_id, item in feeds[ambassador.person.employee_id].items():
            if rng.random() > 0.5:
                continue
            for link in item["links"]:
                network = link["network"]
                if network in ambassador.networks and (network == "linkedin" or rng.random() < 0.5):
                    code = urlsplit(link["tracked_url"]).path.rsplit("/", 1)[-1]
                    posts.append(Post(ambassador, content_id, network, code, ambassador.networks[network]))
    return posts


async def confirm_shares(api: Api, console: Console, posts: list[Post], tally: Tally) -> None:
    counter = console.counter("shares confirmed", len(posts))

    async def one(numbered: tuple[int, Post]) -> None:
        n, post = numbered
        body = {"link_code": post.code, "network": post.network,
                "post_url": POST_URLS[post.network].format(n=7_400_000_000_000_000_000 + n)}
        headers = api.as_(post.ambassador.person.employee_id, "employee")
        expect(await once_known(lambda: api.tracking.post("/v1/shares", json=body, headers=headers), post.path), 201,
               what="confirm a share")
        if n == 0:  # the same post confirmed again (a double tap): recorded once
            again = expect(await api.tracking.post("/v1/shares", json=body, headers=headers), 200,
                           what="confirm a share twice")
            tally.notes.append(f"a share confirmed twice: answered counted={again['counted']}")

    await each(list(enumerate(posts)), one, counter=counter)
    tally.sent["shares"] += len(posts)
    networks = Counter(p.network for p in posts)
    counter.finish(f"{len(posts)} shares confirmed ({', '.join(f'{n} {k}' for k, n in networks.most_common())}); "
                   "one confirmed twice on purpose")


# --- clicks ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    path: str
    user_agent: str
    method: str = "GET"
    repeats: int = 0  # the same person clicking again (not a unique click)
    human: bool = True


def plan_visits(posts: list[Post], rng: random.Random) -> list[Visit]:
    """Colleagues of each post's author click it (more for a bigger network), some twice; the
    network's unfurler fetches every post's link; a chat preview checks some with HEAD."""
    visits: list[Visit] = []
    visitor = 0
    for post in posts:
        for _ in range(min(15, int(rng.expovariate(1 / max(post.audience / 150, 0.5))))):
            visitor += 1
            visits.append(Visit(post.path, BROWSER.format(n=visitor), repeats=int(rng.random() < 0.15)))
        visits.append(Visit(post.path, UNFURLERS[post.network], human=False))
        if rng.random() < 0.1:
            visits.append(Visit(post.path, SLACK_PREVIEW, method="HEAD", human=False))
    rng.shuffle(visits)
    return visits


async def once_known(call: Callable[[], Awaitable[httpx.Response]], what: str) -> httpx.Response:
    """``call``'s answer once tracking knows the link and its ambassador: a 404 (it has not read
    the notification from distribution.notifications.v1 yet) or a 409 (nor the ambassador from
    ambassadors.v1) records nothing, so the call is simply made again."""
    async def answered() -> httpx.Response | None:
        response = await call()
        return None if response.status_code in (404, 409) else response

    return await poll(answered, what=f"tracking to learn the link of {what} (distribution.notifications.v1)",
                      timeout=LINK_TIMEOUT, interval=0.3)


async def follow(api: Api, visit: Visit) -> None:
    response = await once_known(
        lambda: api.tracking.request(visit.method, visit.path, headers={"User-Agent": visit.user_agent}), visit.path)
    if response.status_code != 302:
        raise DemoError(f"{visit.method} {visit.path} answered {response.status_code}")


async def click(api: Api, console: Console, visits: list[Visit], tally: Tally) -> None:
    counter = console.counter("clicks", len(visits))

    async def one(visit: Visit) -> None:
        for _ in range(1 + visit.repeats):  # one after the other: the second is a repeat, not unique
            await follow(api, visit)

    await each(visits, one, counter=counter)
    humans = [v for v in visits if v.human]
    total = sum(1 + v.repeats for v in visits)
    tally.sent["clicks_total"] += total
    tally.sent["clicks_unique_human"] += len(humans)
    counter.finish(f"{total} clicks: {len(humans)} people, {sum(v.repeats for v in visits)} of them again, "
                   f"{len(visits) - len(humans)} link-preview bots (GET and HEAD)")


# --- engagement webhooks --------------------------------------------------------------------------

async def register_connector(api: Api) -> tuple[str, str]:
    """The social networks' connector: a webhook source of the tenant and its signing secret."""
    source = f"{api.tenant.lower()}-social"[:63]
    secret = expect(await api.tracking.post(f"/v1/webhook-sources/{source}/secrets", headers=api.admin), 201,
                    what="create the webhook source")
    return source, secret["secret"]


def engagement_events(posts: list[Post], rng: random.Random) -> list[dict[str, Any]]:
    """What the networks report of each post, roughly in proportion to the author's audience."""
    now = datetime.now(UTC).isoformat()
    events = []
    for post in posts:
        impressions = max(1, int(post.audience * rng.uniform(0.3, 1.6)))
        reactions = int(impressions * rng.uniform(0.005, 0.05))
        counts = {"impression": impressions, "reaction": reactions,
                  "comment": int(reactions * rng.uniform(0, 0.25)),
                  "reshare": rng.randint(1, 3) if rng.random() < 0.25 else 0}
        events += [{"type": kind, "content_id": post.content_id, "network": post.network, "count": count,
                    "link_code": post.code, "occurred_at": now} for kind, count in counts.items() if count]
    return events


def signed(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, signed with the reference library (as a connector would)."""
    webhook_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode()),
            "content-type": "application/json"}


async def send_webhooks(api: Api, console: Console, source: str, secret: str, events: list[dict[str, Any]],
                        tally: Tally) -> None:
    batches = [events[i:i + WEBHOOK_BATCH] for i in range(0, len(events), WEBHOOK_BATCH)]
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    calls = [(body, signed(secret, body), batch) for body, batch in zip(bodies, batches, strict=True)]
    counter = console.counter("webhook calls", len(calls))

    async def one(call: tuple[bytes, dict[str, str], list[dict[str, Any]]]) -> None:
        body, headers, batch = call
        answer = expect(await api.tracking.post(f"/v1/webhooks/{source}", content=body, headers=headers), 202,
                        what="engagement webhook")
        if answer["accepted"] != len(batch):
            raise DemoError(f"webhook {headers['webhook-id']}: {answer['rejected'][:3]}")

    await each(calls, one, limit=4, counter=counter)
    kinds: Counter[str] = Counter()
    for event in events:
        kinds[event["type"]] += event["count"]
    for kind, count in kinds.items():
        tally.sent[f"{kind}s"] += count  # reaction → reactions, the KPI's name
    body, headers, batch = calls[0]
    again = expect(await api.tracking.post(f"/v1/webhooks/{source}", content=body, headers=headers), 202,
                   what="the same webhook again")
    if not again.get("duplicate"):
        raise DemoError("a webhook delivered twice was not recognised as a duplicate")
    tally.notes.append(f"webhook {headers['webhook-id']} ({len(batch)} events) delivered twice: "
                       "tracking answered duplicate=true")
    counter.finish(f"{len(calls)} signed calls, {len(events)} events: " +
                   ", ".join(f"{n:,} {k}s" for k, n in kinds.most_common()) + "; one call delivered twice")


# --- a duplicate on Kafka -----------------------------------------------------------------------

async def redeliver_a_click(api: Api, lookback: int = 5000) -> str:
    """Copy one of this tenant's click records of tracking.engagements.v1 back onto the topic:
    what a producer retry or a replay does. Reporting must not count it twice."""
    topic = topics.ENGAGEMENTS.name
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=api.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()  # without a group: every partition assigned at once
    try:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        for partition in partitions:  # this run's records are the newest ones
            consumer.seek(partition, max(0, ends[partition] - lookback))
        record = await _find_click(consumer, api.tenant)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=api.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()
    return dict(record.headers)["ce_id"].decode()


async def duplicates_dropped(api: Api) -> float:
    """How many engagement events reporting's inbox recognised as already counted, from its /metrics."""
    exposition = (await api.reporting.get("/metrics")).text
    return sum(sample.value for family in text_string_to_metric_families(exposition)
               for sample in family.samples
               if sample.name == "portevoix_events_consumed_total" and sample.labels.get("consumer") == "reporting"
               and sample.labels.get("topic") == topics.ENGAGEMENTS.name
               and sample.labels.get("outcome") == "duplicate")


async def deliver_a_click_twice(api: Api, tally: Tally, timeout: float) -> str:
    """Re-send a click on Kafka and wait until reporting has seen it, and dropped it."""
    before = await duplicates_dropped(api)
    event_id = await redeliver_a_click(api)

    async def dropped() -> bool:
        return await duplicates_dropped(api) > before

    await poll(dropped, what="reporting to receive the click delivered twice", timeout=timeout)
    tally.notes.append(f"click event {event_id} delivered twice on {topics.ENGAGEMENTS.name}: reporting's inbox "
                       "dropped the copy (outcome=\"duplicate\" on its /metrics)")
    return event_id


async def _find_click(consumer: AIOKafkaConsumer, tenant: str, timeout: float = LINK_TIMEOUT) -> Any:
    """The first click of ``tenant`` read from here on (the relay may still be publishing them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                if dict(record.headers).get("ce_tenantid", b"").decode() == tenant and \
                        json.loads(record.value).get("kind") == "click":
                    return record
    raise DemoError(f"timed out after {timeout:.0f}s waiting for a click of {tenant} on {topics.ENGAGEMENTS.name}")
