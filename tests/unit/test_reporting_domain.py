"""Reporting decisions without I/O: which counters each event moves, and who may read what."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from services.reporting.domain import (
    KNOWN_KPIS,
    Attribution,
    Increment,
    ScopeType,
    increments,
    kpi_values,
    may_read,
)
from shared.envelope import CloudEvent, new_event, typed
from shared.events import EngagementKind

T = "acme"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
tenant, subsidiary, content, campaign, network = (
    ScopeType.tenant, ScopeType.subsidiary, ScopeType.content, ScopeType.campaign, ScopeType.network)


def event(type_: str, data: dict[str, Any] | BaseModel) -> CloudEvent[Any]:
    """A typed event, as the consumer hands it to the handlers."""
    return typed(new_event(type_, source="test", subject="s", tenant=T, data=data))


def published(**extra: Any) -> dict[str, Any]:
    return {"content_id": "c1", "revision": 1, "title": "Hello", "url": "https://example.com/a",
            "language": "fr", "published_at": NOW.isoformat(), **extra}


def engagement(kind: str, **extra: Any) -> dict[str, Any]:
    return {"content_id": "c1", "kind": kind, "network": "linkedin", "occurred_at": NOW.isoformat(), **extra}


def notification(**extra: Any) -> dict[str, Any]:
    return {"notification_id": "n1", "content_id": "c1", "ambassador_id": "a1", "channel": "email",
            "at": NOW.isoformat(), **extra}


def test_content_published_counts_for_tenant_owner_and_campaign() -> None:
    assert increments(event("content.published", published(owner_subsidiary="fr", campaign="spring"))) == [
        Increment(campaign, "spring", "contents_published", 1),
        Increment(subsidiary, "fr", "contents_published", 1),
        Increment(tenant, T, "contents_published", 1),
    ]


def test_content_published_without_owner_or_campaign_counts_for_the_tenant_only() -> None:
    assert increments(event("content.published", published())) == [Increment(tenant, T, "contents_published", 1)]


def test_content_updated_counts_nothing() -> None:
    assert increments(event("content.updated", published(revision=2, owner_subsidiary="fr"))) == []


def test_ambassador_enrolled_and_withdrawn_are_counted_apart() -> None:
    enrolled = event("ambassador.enrolled", {"ambassador_id": "a1", "subsidiary": "fr", "country": "FR",
                                             "language": "fr", "effective_at": NOW.isoformat()})
    withdrawn = event("ambassador.withdrawn", {"ambassador_id": "a1", "reason": "opt-out",
                                               "effective_at": NOW.isoformat()})
    assert increments(enrolled) == [Increment(subsidiary, "fr", "ambassadors_enrolled", 1),
                                    Increment(tenant, T, "ambassadors_enrolled", 1)]
    # The withdrawal carries no subsidiary: it goes where the enrolment was counted.
    assert increments(withdrawn, Attribution(subsidiary="fr")) == [
        Increment(subsidiary, "fr", "ambassadors_withdrawn", 1), Increment(tenant, T, "ambassadors_withdrawn", 1)]
    assert increments(withdrawn) == [Increment(tenant, T, "ambassadors_withdrawn", 1)]


def test_notification_sent_counts_for_its_subsidiary_content_and_campaign() -> None:
    sent = event("notification.sent", notification(subsidiary="fr", campaign="spring"))
    assert increments(sent) == [
        Increment(campaign, "spring", "notified_ambassadors", 1),
        Increment(content, "c1", "notified_ambassadors", 1),
        Increment(subsidiary, "fr", "notified_ambassadors", 1),
        Increment(tenant, T, "notified_ambassadors", 1),
    ]


@pytest.mark.parametrize("type_", ["notification.deferred", "notification.failed", "notification.cancelled"])
def test_notifications_not_sent_count_nothing(type_: str) -> None:
    assert increments(event(type_, notification(subsidiary="fr"))) == []


def test_unique_human_click_counts_in_both_click_kpis_on_every_scope() -> None:
    click = event("engagement.recorded", engagement("click"))
    result = increments(click, Attribution(subsidiary="fr", campaign="spring"))
    scopes = [(campaign, "spring"), (content, "c1"), (network, "linkedin"), (subsidiary, "fr"), (tenant, T)]
    assert result == sorted(Increment(s, i, k, 1) for s, i in scopes for k in ("clicks_total", "clicks_unique_human"))


@pytest.mark.parametrize("flags", [{"human": False}, {"unique": False}, {"human": False, "unique": False}])
def test_bot_or_repeated_click_counts_in_total_only(flags: dict[str, bool]) -> None:
    result = increments(event("engagement.recorded", engagement("click", **flags)))
    assert {i.kpi for i in result} == {"clicks_total"}
    assert {(i.scope_type, i.scope_id) for i in result} == {(content, "c1"), (network, "linkedin"), (tenant, T)}


@pytest.mark.parametrize(("kind", "kpi"), [("share", "shares"), ("reaction", "reactions"), ("comment", "comments"),
                                           ("reshare", "reshares"), ("impression", "impressions")])
def test_other_kinds_sum_their_count(kind: str, kpi: str) -> None:
    result = increments(event("engagement.recorded", engagement(kind, count=42)), Attribution(subsidiary="fr"))
    assert result == [Increment(content, "c1", kpi, 42), Increment(network, "linkedin", kpi, 42),
                      Increment(subsidiary, "fr", kpi, 42), Increment(tenant, T, kpi, 42)]


def test_every_engagement_kind_has_a_kpi() -> None:
    for kind in EngagementKind:
        kpis = {i.kpi for i in increments(event("engagement.recorded", engagement(kind.value)))}
        assert kpis and kpis <= set(KNOWN_KPIS)


def test_events_reporting_does_not_count_move_nothing() -> None:
    retired = event("content.retired", {"content_id": "c1", "reason": "expired", "retired_at": NOW.isoformat()})
    assert increments(retired) == []


def test_increments_are_distinct_and_sorted_for_one_statement_and_a_stable_lock_order() -> None:
    # A tenant id that equals a subsidiary id must still give two distinct counters.
    result = increments(event("notification.sent", notification(subsidiary=T, campaign=T)))
    keys = [(i.scope_type, i.scope_id, i.kpi) for i in result]
    assert len(keys) == len(set(keys)) and result == sorted(result)


def test_kpi_values_lists_every_known_kpi_with_zero_defaults() -> None:
    values = kpi_values({"clicks_total": 3})
    assert list(values) == list(KNOWN_KPIS)
    assert values["clicks_total"] == 3 and values["shares"] == 0


def test_group_level_reader_reads_every_scope() -> None:
    assert all(may_read(None, scope, "x") for scope in ScopeType)


def test_subsidiary_reader_reads_only_its_subsidiary_and_the_contents_it_owns() -> None:
    assert may_read("fr", subsidiary, "fr")
    assert not may_read("fr", subsidiary, "de")
    assert may_read("fr", content, "c1", content_owner="fr")
    assert not may_read("fr", content, "c1", content_owner="de")
    assert not may_read("fr", content, "c1", content_owner=None)
    for scope in (tenant, campaign, network):
        assert not may_read("fr", scope, "fr")
