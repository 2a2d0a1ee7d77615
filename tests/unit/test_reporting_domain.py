"""Reporting decisions without I/O: which rollups each event moves, windows, late attribution,
KPI derivations, rankings, milestones and who may read what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.reporting import views
from services.reporting.domain import (
    CLOCK_SKEW,
    DEFINITIONS,
    KIND_KPIS,
    KPI_NAMES,
    AmbassadorFacts,
    ContentFacts,
    DirectoryFigures,
    Effect,
    HourKey,
    MediaRates,
    ScopeType,
    Window,
    content_published_effects,
    engagement_effects,
    engagement_refused,
    engagements_effects,
    expand,
    kpi_values,
    late_attribution,
    may_read,
    milestones_crossed,
    notification_effects,
    ranked,
    readable,
    retraction,
    window_end,
    window_start,
    window_starts,
    windows_between,
)
from shared.events import ContentPublished, EngagementKind, EngagementRecorded, Network, NotificationSent

T = "acme"
NOW = datetime(2026, 3, 14, 9, 41, 7, tzinfo=UTC)
FR = AmbassadorFacts("fr", "mkt", {"linkedin": 1000})
SPRING = ContentFacts("de", "spring")


def engagement(kind: EngagementKind = EngagementKind.share, **extra: object) -> EngagementRecorded:
    return EngagementRecorded.model_validate({"content_id": "c1", "kind": kind, "network": "linkedin",
                                              "occurred_at": NOW, **extra})


def scopes(effects: list[Effect], kpi: str) -> set[tuple[str, str]]:
    return {(str(e.scope_type), e.scope_id) for e in effects if e.kpi == kpi}


def test_windows_start_and_end_in_utc() -> None:
    assert window_start(Window.hour, NOW) == datetime(2026, 3, 14, 9, tzinfo=UTC)
    assert window_start(Window.day, NOW) == datetime(2026, 3, 14, tzinfo=UTC)
    assert window_start(Window.month, NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    assert window_end(Window.month, datetime(2026, 2, 1, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert window_end(Window.all, window_start(Window.all, NOW)) is None
    assert len(window_starts(Window.day, datetime(2026, 3, 1, tzinfo=UTC), NOW, limit=100)) == 14
    assert len(window_starts(Window.day, datetime(2026, 3, 1, tzinfo=UTC), NOW, limit=3)) == 3
    long_ago = datetime(3, 8, 15, tzinfo=UTC)
    assert window_starts(Window.all, long_ago, long_ago, limit=1) == [window_start(Window.all, NOW)]


def test_a_long_range_keeps_its_newest_windows_and_counts_them_all() -> None:
    first = datetime(1970, 1, 1, tzinfo=UTC)
    assert window_starts(Window.day, datetime(2026, 3, 1, tzinfo=UTC), NOW, limit=3) == [
        datetime(2026, 3, d, tzinfo=UTC) for d in (12, 13, 14)]
    assert window_starts(Window.month, first, NOW, limit=2) == [datetime(2026, 2, 1, tzinfo=UTC),
                                                                datetime(2026, 3, 1, tzinfo=UTC)]
    assert window_starts(Window.hour, first, datetime(1970, 1, 1, 1, tzinfo=UTC), limit=5) == [
        first, datetime(1970, 1, 1, 1, tzinfo=UTC)]
    assert windows_between(Window.day, datetime(2026, 3, 1, tzinfo=UTC), NOW) == 14
    assert windows_between(Window.month, first, NOW) == 56 * 12 + 3
    assert windows_between(Window.hour, first, NOW) == int((NOW - first).total_seconds() // 3600) + 1
    assert windows_between(Window.all, first, NOW) == 1


def test_kpis_are_asked_from_the_all_time_window_start_to_before_every_window_end_overflows() -> None:
    assert readable(datetime(1970, 1, 1, tzinfo=UTC)) and readable(NOW)
    assert not readable(datetime(1969, 12, 31, 23, 59, tzinfo=UTC))
    assert not readable(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))  # not an OverflowError
    last = datetime(8999, 12, 31, 23, 59, tzinfo=UTC)
    assert readable(last) and all(window_end(w, window_start(w, last)) for w in (Window.hour, Window.day, Window.month))
    assert not readable(datetime(9999, 12, 31, 23, 30, tzinfo=UTC))


def test_a_share_counts_in_every_scope_it_names() -> None:
    effects = engagement_effects(T, engagement(ambassador_id="a1"), SPRING, FR)
    assert scopes(effects, "shares") == {("tenant", T), ("subsidiary", "fr"), ("department", "fr/mkt"),
                                         ("content", "c1"), ("campaign", "spring"), ("ambassador", "a1"),
                                         ("network", "linkedin")}
    reach = [e for e in effects if e.kpi == "potential_reach"]
    assert {(e.delta, e.member) for e in reach} == {(1000, "a1|linkedin")}
    assert {e.member for e in effects if e.kpi == "sharing_ambassadors"} == {"a1"}


def test_an_engagement_without_ambassador_goes_to_the_content_owner() -> None:
    effects = engagement_effects(T, engagement(EngagementKind.click), SPRING, None)
    assert ("subsidiary", "de") in scopes(effects, "clicks_total")
    assert scopes(effects, "clicks_total@linkedin") == scopes(effects, "clicks_total")
    assert scopes(effects, "clicks_unique_human") == scopes(effects, "clicks_total")


@pytest.mark.parametrize("flags", [{"human": False}, {"unique": False}])
def test_bot_or_repeated_click_counts_in_total_only(flags: dict[str, bool]) -> None:
    effects = engagement_effects(T, engagement(EngagementKind.click, **flags), None, None)
    assert scopes(effects, "clicks_total") and not scopes(effects, "clicks_unique_human")


def test_every_engagement_kind_has_a_kpi_with_a_definition() -> None:
    assert set(KIND_KPIS) == set(EngagementKind)
    assert set(KIND_KPIS.values()) <= set(KPI_NAMES)
    assert all(d.kind in ("measured", "estimated") and d.definition for d in DEFINITIONS)


def test_late_attribution_adds_exactly_what_was_missing() -> None:
    data = engagement(ambassador_id="a1")
    early = engagement_effects(T, data, None, None)
    owed = late_attribution(T, data, (None, None), (SPRING, FR))
    assert sorted(early + owed) == sorted(engagement_effects(T, data, SPRING, FR))
    assert late_attribution(T, data, (SPRING, FR), (SPRING, FR)) == []


def test_notifications_and_publications_count_in_their_scopes() -> None:
    sent = NotificationSent(notification_id="n", content_id="c1", ambassador_id="a1", subsidiary="fr",
                            department="mkt", campaign="spring", channel="email", at=NOW)
    effects = notification_effects(T, sent)
    assert scopes(effects, "notified_ambassadors") == scopes(effects, "notifications_sent")
    assert {e.member for e in effects if e.kpi == "notified_ambassadors"} == {"a1"}
    published = ContentPublished(content_id="c1", revision=1, title="t", url="https://example.com", language="fr",
                                 owner_subsidiary="fr", published_at=NOW)
    assert scopes(content_published_effects(T, published), "contents_published") == {
        ("tenant", T), ("subsidiary", "fr"), ("content", "c1")}


def test_expand_merges_deltas_per_hour_and_keeps_members_apart() -> None:
    later = NOW + timedelta(minutes=10)
    effects = [(T, Effect(ScopeType.tenant, T, "shares", 2, NOW)), (T, Effect(ScopeType.tenant, T, "shares", 3, later)),
               (T, Effect(ScopeType.tenant, T, "sharing_ambassadors", 1, NOW, member="a1")),
               (T, Effect(ScopeType.tenant, T, "sharing_ambassadors", 7, later, member="a1"))]
    deltas = expand(effects)
    hour = window_start(Window.hour, NOW)
    assert deltas.plain == {HourKey(T, "tenant", T, "shares", hour): 5}
    assert deltas.members == {(HourKey(T, "tenant", T, "sharing_ambassadors", hour), "a1"): 1}  # the first value
    assert dict(deltas.windows[hour]) == {window: window_start(window, NOW) for window in Window}


def test_engagements_alike_are_worked_out_once_with_their_counts_summed() -> None:
    facts = AmbassadorFacts("fr", "mkt", {"linkedin": 40})
    def click(at: datetime, count: int = 1, human: bool = True) -> EngagementRecorded:
        return EngagementRecorded(content_id="c1", ambassador_id="a1", network="linkedin", kind="click",
                                  count=count, human=human, occurred_at=at)
    def share(at: datetime) -> EngagementRecorded:
        return EngagementRecorded(content_id="c1", ambassador_id="a1", network="linkedin", kind="share",
                                  occurred_at=at)
    batch = [click(NOW), click(NOW + timedelta(minutes=5), count=3), click(NOW, human=False),
             click(NOW + timedelta(hours=2)), share(NOW), share(NOW + timedelta(minutes=1))]
    one_by_one = [(T, e) for data in batch for e in engagement_effects(T, data, None, facts)]
    grouped = engagements_effects([(T, data, None, facts) for data in batch])
    assert len(grouped) < len(one_by_one)
    assert expand(grouped) == expand(one_by_one)


def test_kpi_values_derive_rates_and_leave_out_what_is_undefined() -> None:
    counted = {"notified_ambassadors": 4, "sharing_ambassadors": 1, "clicks_total": 3, "reactions": 2,
               "impressions": 1000, "impressions@linkedin": 1000, "clicks_total@linkedin": 3}
    rates = MediaRates("EUR", {"linkedin": {"cpm": 12, "cpc": 1.5}})
    values = kpi_values(counted, rates, DirectoryFigures(enrolled=10, active=4))
    assert (values["adoption_rate"], values["engagements"], values["engagement_rate"]) == (0.25, 5, 0.005)
    assert values["earned_media_value"] == 12 + 4.5
    assert values["activation_rate"] == 0.4
    bare = kpi_values({})
    assert "adoption_rate" not in bare and "earned_media_value" not in bare and bare["shares"] == 0


def test_ties_share_a_rank_and_are_listed_stably() -> None:
    rows = [{"id": "b", "v": 3}, {"id": "a", "v": 3}, {"id": "c", "v": 1}]
    assert [(r["rank"], r["id"]) for r in ranked(rows, "v", "id")] == [(1, "a"), (1, "b"), (3, "c")]


def test_a_milestone_is_the_highest_power_of_ten_crossed_at_once() -> None:
    assert milestones_crossed({"shares": 8}, {"shares": 120}) == [("shares", 100)]
    assert milestones_crossed({}, {"shares": 1500, "clicks_total": 10}) == [("shares", 1000), ("clicks_total", 10)]
    assert milestones_crossed({"shares": 12}, {"shares": 15}) == []
    assert milestones_crossed({"shares": 100}, {"shares": 999}) == []
    assert milestones_crossed({"shares": 99}, {"shares": 100}) == [("shares", 100)]


def test_subsidiary_reader_reads_only_its_subtree() -> None:
    assert may_read(None, ScopeType.network, "x")
    assert may_read("fr", ScopeType.subsidiary, "fr") and not may_read("fr", ScopeType.subsidiary, "de")
    assert may_read("fr", ScopeType.department, "fr/mkt") and not may_read("fr", ScopeType.department, "frx/mkt")
    assert may_read("fr", ScopeType.content, "c1", owner="fr") and not may_read("fr", ScopeType.content, "c1")
    assert may_read("fr", ScopeType.ambassador, "a1", owner="fr")
    assert not any(may_read("fr", t, "x") for t in (ScopeType.tenant, ScopeType.campaign, ScopeType.network))


def test_csv_quotes_what_needs_it() -> None:
    text = views.to_csv([{"id": "a,b", "value": 1, "title": None}], ["id", "value", "title"])
    assert text == 'id,value,title\r\n"a,b",1,\r\n'


def test_an_engagement_before_its_content_was_published_is_refused_beyond_the_clock_skew() -> None:
    published = datetime(2026, 3, 14, 9, tzinfo=UTC)
    content = ContentFacts("de", None, published)

    def reaction(at: datetime) -> EngagementRecorded:
        return EngagementRecorded(content_id="c1", kind=EngagementKind.reaction, network=Network.linkedin,
                                  occurred_at=at)
    assert engagement_refused(reaction(published - CLOCK_SKEW), content) is None
    assert engagement_refused(reaction(datetime(1999, 1, 1, tzinfo=UTC)), ContentFacts("de", None)) is None
    assert engagement_refused(reaction(datetime(1999, 1, 1, tzinfo=UTC)), None) is None  # not known yet
    cause = engagement_refused(reaction(published - CLOCK_SKEW - timedelta(seconds=1)), content)
    assert cause is not None and "before its content c1 was published" in cause


def test_a_refused_engagement_gives_back_its_counts_but_not_its_distinct_members() -> None:
    share = EngagementRecorded(content_id="c1", ambassador_id="a1", kind=EngagementKind.share,
                               network=Network.linkedin, count=2, occurred_at=NOW)
    back = retraction("t", share, (None, FR))
    assert back and all(e.delta < 0 and e.member is None for e in back)
    assert {e.kpi for e in back} == {"shares"}
    assert sorted(e.delta for e in back) == [-2] * len(back)
