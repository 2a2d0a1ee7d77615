"""The fan-out's own helpers, without I/O: random ids and link codes from one CSPRNG read, the
slices covering the whole ambassador id space, and the page's memoised decisions agreeing with the
domain's decisions made one by one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from services.distribution import domain
from services.distribution.handlers.fanout import Policy, _Content, _Decisions, link_codes, random_uuids
from services.distribution.repository import slice_bounds
from shared.events import Audience, ShareText

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
         quiet: tuple[time, time] | None = None, recently_sent: list[datetime] | None = None,
         groups: list[str] | None = None, time_zone: str = "UTC") -> dict[str, Any]:
    return {"ambassador_id": uuid.UUID(ambassador_id), "subsidiary": subsidiary, "department": "Sales",
            "site": "Lyon", "country": "FR", "language": "fr-FR", "groups": groups or [],
            "languages": languages or [], "topics": [], "channels": ["email"], "max_per_day": None,
            "quiet_start": quiet[0] if quiet else None, "quiet_end": quiet[1] if quiet else None,
            "time_zone": time_zone, "recently_sent": recently_sent or []}


def test_the_pages_decisions_are_the_domains_decisions() -> None:
    texts = [ShareText(network="linkedin", language="fr", text="a", variant=0),
             ShareText(network="linkedin", language="fr", text="b", variant=1)]
    content = _Content("t", "c1", "https://acme.example/", "fr", None,
                       Audience(subsidiaries=["FR01"], groups=[]), [], texts, ["linkedin"])
    policy = Policy(weekly_budget=2, digest_hour=8, page_size=100)
    week = [NOW - timedelta(days=1), NOW - timedelta(days=2)]
    rows = [_row(i, sub, languages=langs, quiet=quiet, recently_sent=sent, time_zone=zone)
            for i, sub, langs, quiet, sent, zone in [
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC"),  # same as the first: memoised
                (str(uuid.uuid4()), "DE02", None, None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", ["de"], None, None, "UTC"),
                (str(uuid.uuid4()), "FR01", None, (time(21), time(7)), None, "UTC"),
                (str(uuid.uuid4()), "FR01", None, (time(21), time(7)), None, "America/New_York"),  # 16:30 there: not quiet
                (str(uuid.uuid4()), "FR01", None, None, week, "UTC"),
                (str(uuid.uuid4()), "FR01", None, None, None, "UTC")]]
    decide = _Decisions(content, policy, NOW)
    for _ in range(2):  # the second round answers from what the first one decided
        for row in rows:
            member = domain.Member(str(row["ambassador_id"]), row["subsidiary"], row["department"], row["site"],
                                   row["country"], row["language"], languages=frozenset(row["languages"]))
            assert decide.targets(row) == domain.in_audience(content.audience, member, "fr", [])
            fatigue = domain.Fatigue(2, None, row["quiet_start"], row["quiet_end"], row["time_zone"])
            assert decide.deferral(row, "email") == domain.when_to_alert(NOW, "email", fatigue, row["recently_sent"])
            assert decide.variant(str(row["ambassador_id"])) == domain.variant_for(
                "c1", str(row["ambassador_id"]), texts)
    assert [decide.targets(r) for r in rows] == [True, True, False, False, True, True, True, True]
    assert [bool(decide.deferral(r, "email")) for r in rows] == [False, False, False, False, True, False, True, False]
