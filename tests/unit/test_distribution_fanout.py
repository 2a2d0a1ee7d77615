"""The fan-out's own helpers, without I/O: random ids and link codes from one CSPRNG read, the
slices covering the whole ambassador id space, and the page's memoised decisions agreeing with the
domain's decisions made one by one."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from services.distribution import domain
from services.distribution.handlers.ambassadors import SOURCE
from services.distribution.handlers.fanout import Policy, _Content, _Decisions, _PageEncoder, link_codes, random_uuids
from services.distribution.repository import slice_bounds
from shared.envelope import binary_record, from_kafka, typed
from shared.events import Audience, NotificationDeferred, NotificationSent, ShareText

NOW = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)


def test_random_uuids_are_distinct_version_4_uuids() -> None:
    ids = random_uuids(5000)
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 5000
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == i for u, i in zip(parsed, ids, strict=True))


def test_link_codes_are_distinct_16_character_url_safe_codes() -> None:
    codes = link_codes(5000)
    assert len(codes) == len(set(codes)) == 5000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", c) for c in codes)


def test_slices_cover_the_ambassador_id_space_without_gap_or_overlap() -> None:
    for count in (1, 3, 8, 256):
        bounds = slice_bounds(count)
        assert [b[0] for b in bounds] == list(range(count))
        assert bounds[0][1].int == 0 and bounds[-1][2].int == 2 ** 128 - 1
        for (_, _, last), (_, after, _) in zip(bounds, bounds[1:], strict=False):
            assert after == last  # the next slice starts right after this one's last id
        assert all(after < last for _, after, last in bounds)


def _row(ambassador_id: str, subsidiary: str = "FR01", *, languages: list[str] | None = None,
         quiet: tuple[time, time] | None = None, budget_used: list[datetime] | None = None,
         groups: list[str] | None = None, time_zone: str = "UTC") -> dict[str, Any]:
    return {"ambassador_id": uuid.UUID(ambassador_id), "subsidiary": subsidiary, "department": "Sales",
            "site": "Lyon", "country": "FR", "language": "fr-FR", "groups": groups or [],
            "languages": languages or [], "topics": [], "channels": ["email"], "max_per_day": None,
            "quiet_start": quiet[0] if quiet else None, "quiet_end": quiet[1] if quiet else None,
            "time_zone": time_zone, "budget_used": budget_used or []}


def test_the_pages_decisions_are_the_domains_decisions() -> None:
    texts = [ShareText(network="linkedin", language="fr", text="a", variant=0),
             ShareText(network="linkedin", language="fr", text="b", variant=1)]
    content = _Content("t", "c1", "https://acme.example/", "fr", None,
                       Audience(subsidiaries=["FR01"], groups=[]), [], texts, ["linkedin"])
    policy = Policy(weekly_budget=2, digest_hour=8, page_size=100)
    week = [NOW - timedelta(days=1), NOW - timedelta(days=2)]
    rows = [_row(i, sub, languages=langs, quiet=quiet, budget_used=sent, time_zone=zone)
            for i, sub, langs, quiet, sent, zone in [
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC"),  # same as the first: memoised
                (str(uuid.uuid4()), "DE02", None, None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", ["de"], None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", None, (time(21), time(7)), None, "UTC"),
                # 16:30 there: not quiet
                (str(uuid.uuid4()), "FR01", None, (time(21), time(7)), None, "America/New_York"),
                (str(uuid.uuid4()), "FR01", None, None, week, "UTC"),
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC")]]
    decide = _Decisions(content, policy, NOW)
    for _ in range(2):  # the second round answers from what the first one decided
        for row in rows:
            member = domain.Member(str(row["ambassador_id"]), row["subsidiary"], row["department"], row["site"],
                                   row["country"], row["language"], languages=frozenset(row["languages"]))
            assert decide.targets(row) == domain.in_audience(content.audience, member, "fr", [])
            fatigue = domain.Fatigue(2, None, row["quiet_start"], row["quiet_end"], row["time_zone"])
            assert decide.deferral(row, "email", row["budget_used"]) == domain.when_to_alert(
                NOW, "email", fatigue, row["budget_used"])
            assert decide.variant(str(row["ambassador_id"])) == domain.variant_for(
                "c1", str(row["ambassador_id"]), texts)
    assert [decide.targets(r) for r in rows] == [True, True, False, False, True, True, True, True]
    assert [bool(decide.deferral(r, "email", r["budget_used"])) for r in rows] == [
        False, False, False, False, True, False, True, False]


def test_the_pages_encoded_events_are_the_envelopes_records() -> None:
    """What the page encoder joins by hand is what ``binary_record`` builds: same key, same
    headers, same data (odd characters included), and the links are the notification's."""
    texts = [ShareText(network="linkedin", language="fr", text="a", variant=0),
             ShareText(network="x", language="fr", text="b", variant=0)]
    content = _Content("acme", 'c"1\\é', "https://acme.example/a?b=\"c\"&d=é", "fr", "été \"26\"",
                       Audience(), [], texts, ["linkedin", "x"])
    encoder = _PageEncoder(content, NOW, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    codes = link_codes(4)
    for n, (status, deferral, subsidiary) in enumerate([
            ("sent", None, 'Lyon "Sud" ü'),
            ("deferred", domain.Deferral(NOW + timedelta(hours=9), "quiet_hours"), "DE02")]):
        event_id, notification_id, ambassador_id = random_uuids(3)
        links = encoder.links(codes, n)
        assert json.loads(links) == [
            {"code": codes[2 * n], "network": "linkedin", "destination_url": content.url},
            {"code": codes[2 * n + 1], "network": "x", "destination_url": content.url}]
        key, value, headers, dedup_id = encoder.event(status, event_id, notification_id, ambassador_id, subsidiary,
                                                     "R&D", "in_app", links, deferral)
        data = {"notification_id": notification_id, "content_id": content.content_id, "ambassador_id": ambassador_id,
                "subsidiary": subsidiary, "department": "R&D", "campaign": content.campaign, "channel": "in_app",
                "links": json.loads(links), "reason": deferral.reason if deferral else None, "at": NOW.isoformat()}
        if deferral:
            data["due_at"] = deferral.until.isoformat()
        expected = binary_record(f"notification.{status}", source=SOURCE, subject=notification_id, tenant="acme",
                                 data=data, id=event_id, time=NOW, traceparent=encoder.traceparent)
        assert (key, json.loads(value), json.loads(headers), dedup_id) == (
            expected.key, json.loads(expected.value), expected.headers, event_id)
        event = typed(from_kafka(value, [(k, v.encode()) for k, v in json.loads(headers).items()]))
        assert isinstance(event.data, NotificationSent | NotificationDeferred)
