"""The redirector's and the webhooks' fast paths, without I/O: events built as bytes still keep
the engagement contract, unique clicks within a group, the link cache's bound, group commit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.tracking import domain, handlers
from services.tracking.group_commit import GroupCommit
from services.tracking.link_cache import KnownContents, Link, LinkCache
from shared import logs
from shared.envelope import binary_record, from_kafka, new_event, record_key, to_binary, typed
from shared.events import EngagementKind, EngagementRecorded
from shared.kafka import KeyHashCache
from shared.topics import ENGAGEMENTS

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
LINK = Link(code="abcdef12", tenant="acme", content_id="c-1", ambassador_id="amb-7", network="linkedin",
            location="https://example.com/?utm_source=linkedin", key=record_key("acme", "c-1"))


def parsed(record: object) -> EngagementRecorded:
    event = typed(from_kafka(record.value, [(k, v.encode()) for k, v in record.headers.items()]),  # type: ignore[attr-defined]
                  ENGAGEMENTS.name)
    assert isinstance(event.data, EngagementRecorded)
    return event.data


def test_a_click_record_parses_into_the_engagement_contract() -> None:
    at = datetime(2026, 11, 24, 4, 0, 1, 123456, tzinfo=UTC)
    record = handlers.click_engagement(LINK, handlers.Click(code=LINK.code, ip="203.0.113.7", user_agent=CHROME, at=at),
                                       unique=False)
    assert record.key == record_key("acme", "c-1")
    assert (record.headers["ce_type"], record.headers["ce_subject"], record.headers["ce_tenantid"]) == (
        "engagement.recorded", "c-1", "acme")
    assert parsed(record) == EngagementRecorded(content_id="c-1", kind=EngagementKind.click, network="linkedin",
                                                ambassador_id="amb-7", link_code=LINK.code, human=True, unique=False,
                                                occurred_at=at)


def test_a_head_request_or_a_robot_is_not_a_human_click() -> None:
    head = handlers.Click(code=LINK.code, ip="203.0.113.7", user_agent=CHROME, preview=True)
    robot = handlers.Click(code=LINK.code, ip="203.0.113.7", user_agent="LinkedInBot/1.0")
    assert not parsed(handlers.click_engagement(LINK, head, unique=True)).human
    assert not parsed(handlers.click_engagement(LINK, robot, unique=True)).human


def test_binary_record_is_to_binary_of_new_event_without_the_models() -> None:
    at = datetime.now(UTC)
    data = EngagementRecorded(content_id="c-1", kind=EngagementKind.reaction, network="x", count=3, occurred_at=at)
    expected = to_binary(new_event("engagement.recorded", source="s", subject="c-1", tenant="acme", id="e-1",
                                   time=at, data=data))
    built = binary_record("engagement.recorded", source="s", subject="c-1", tenant="acme", id="e-1", time=at,
                          data=data.model_dump(mode="json"))
    assert built == expected


def body_of(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_webhook_records_parse_into_the_engagement_contract() -> None:
    now = datetime.now(UTC)
    items = [{"type": kind, "content_id": "c-1", "network": "linkedin", "count": 2, "occurred_at": now.isoformat()}
             for kind in ("reaction", "comment", "reshare", "impression", "click")]
    valid, rejected = handlers.validate_batch(body_of(*items), 1000, now)
    assert rejected == [] and len(valid) == 5
    records, problems = handlers.engagement_records("acme", "src-1", "msg_1", valid, {"c-1"}, {}, now)
    assert problems == []
    assert [parsed(r).kind for r in records] == [EngagementKind(i["type"]) for i in items]
    assert {parsed(r).connector for r in records} == {"src-1"}
    assert [r.headers["ce_id"] for r in records] == [domain.event_id("src-1", "msg_1", i) for i in range(5)]


def trace_only(headers: dict[str, str]) -> dict[str, str]:
    """The headers with the traceparent cut to its trace id."""
    return {**headers, "ce_traceparent": headers.get("ce_traceparent", "")[:36]}


@pytest.mark.parametrize("traced", [False, True])
def test_webhook_records_are_what_binary_record_builds(traced: bool) -> None:
    now = datetime.now(UTC)
    [(index, event)] = handlers.validate_batch(body_of(
        {"type": "comment", "content_id": "c-é", "network": "x", "count": 3, "occurred_at": now.isoformat()}),
        1000, now)[0]
    with logs.bound(traceparent=logs.new_traceparent()) if traced else contextlib.nullcontext():
        [record], _ = handlers.engagement_records("acme", "src-1", "msg_1", [(index, event)], {"c-é"}, {}, now)
        expected = binary_record(
            "engagement.recorded", source=handlers.SOURCE, subject="c-é", tenant="acme",
            id=domain.event_id("src-1", "msg_1", 0), time=now, data={
                "content_id": "c-é", "kind": "comment", "network": "x", "count": 3, "ambassador_id": None,
                "link_code": None, "human": True, "unique": True, "connector": "src-1",
                "occurred_at": event.occurred_at.isoformat()})
    assert (record.key, record.value) == (expected.key, expected.value)
    assert trace_only(record.headers) == trace_only(expected.headers)  # span ids differ: new for each build
    assert ("ce_traceparent" in record.headers) is traced


def test_one_bad_event_does_not_hide_the_good_ones() -> None:
    now = datetime.now(UTC)
    good = {"type": "reaction", "content_id": "c-1", "network": "linkedin", "occurred_at": now.isoformat()}
    valid, rejected = handlers.validate_batch(body_of(good, {**good, "type": "like"}, good, {**good, "count": 0}),
                                              1000, now)
    assert [index for index, _ in valid] == [0, 2]
    assert [(r.index, r.reason.split(":")[0]) for r in rejected] == [(1, "type"), (3, "count")]


def test_a_batch_over_the_event_limit_or_not_a_batch_is_refused_whole() -> None:
    now = datetime.now(UTC)
    good = {"type": "reaction", "content_id": "c-1", "network": "linkedin", "occurred_at": now.isoformat()}
    with pytest.raises(handlers.BatchTooLarge):
        handlers.validate_batch(body_of(*[good] * 3), 2, now)  # all valid: the one-call path
    with pytest.raises(handlers.BatchTooLarge):
        handlers.validate_batch(body_of(good, good, {}), 2, now)  # one invalid: the one-by-one path
    for malformed in (b"{not json", b"[]", b'{"events": {}}', b"\xff"):
        with pytest.raises(handlers.MalformedBatch):
            handlers.validate_batch(malformed, 2, now)


def test_only_the_first_click_of_a_client_in_a_group_can_be_unique() -> None:
    a, b, c = ("code01", b"a"), ("code01", b"b"), ("code02", b"a")
    assert domain.unique_clicks([a, b, a, c, b], opened={a, c}) == [True, False, False, True, False]


def test_the_link_cache_keeps_the_most_recently_used() -> None:
    cache = LinkCache(size=2)
    links = [Link(code=f"code0{i}", tenant="t", content_id="c", ambassador_id="a", network="x", location=None,
                  key=b"k") for i in range(3)]
    cache.put(links[0])
    cache.put(links[1])
    assert cache.get("code00") is links[0]  # now the most recent
    cache.put(links[2])
    assert (cache.get("code00"), cache.get("code01"), cache.get("code02")) == (links[0], None, links[2])


async def test_group_commit_shares_writes_and_answers_each_caller() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    group = GroupCommit(write)
    together = await asyncio.gather(*(group.submit(i) for i in range(3)))
    assert (together, writes) == ([0, 10, 20], [[0, 1, 2]])  # waiting together: one write
    first = asyncio.create_task(group.submit(3))
    while len(writes) < 2:
        await asyncio.sleep(0)
    later = await asyncio.gather(*(group.submit(i) for i in range(4, 7)))
    assert (await first, later) == (30, [40, 50, 60])
    assert writes[1:] == [[3], [4, 5, 6]]  # those arriving during a write share the next one


async def test_a_failed_group_write_fails_each_of_its_callers() -> None:
    async def write(items: list[int]) -> list[int]:
        raise ConnectionError("database gone")

    group = GroupCommit(write)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    with pytest.raises(ConnectionError):
        await group.submit(4)  # a new writer for the next caller


def test_the_key_hash_cache_picks_the_default_partitioners_partition() -> None:
    """Engagements are keyed by content so that they stay in order: the cached hash must send a
    key where aiokafka's (and the Java client's) default partitioner does, before and after the
    cache is emptied."""
    cache, default = KeyHashCache(max_keys=50), DefaultPartitioner()
    keys = [record_key("acme", f"content-{i}") for i in range(120)] * 2
    for partitions in ([0, 1, 2], list(range(12))):
        assert [cache(k, partitions, partitions) for k in keys] == [default(k, partitions, partitions) for k in keys]
    assert len(cache.hashes) <= 50


def test_known_contents_are_asked_for_once_per_tenant_and_stay_bounded() -> None:
    known = KnownContents(size=3)
    assert known.unknown("acme", {"c-1", "c-2"}) == {"c-1", "c-2"}
    known.learn("acme", {"c-1"})  # c-2 was not found: asked again next time (it may get links)
    assert known.unknown("acme", {"c-1", "c-2"}) == {"c-2"}
    assert known.unknown("other", {"c-1"}) == {"c-1"}  # another tenant's content of the same id
    known.learn("acme", {"c-2", "c-3", "c-4"})  # over the bound: the old ones forgotten
    assert known.unknown("acme", {"c-1", "c-2", "c-3", "c-4"}) == {"c-1"}
