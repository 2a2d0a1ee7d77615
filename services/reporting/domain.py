"""Reporting decisions, pure: which counters an event moves, and who may read which scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.envelope import CloudEvent
from shared.events import (
    AmbassadorEnrolled,
    ContentPublished,
    EngagementKind,
    EngagementRecorded,
    NotificationSent,
)


class ScopeType(StrEnum):
    tenant = "tenant"
    subsidiary = "subsidiary"
    content = "content"
    campaign = "campaign"
    network = "network"


CONTENTS_PUBLISHED = "contents_published"
AMBASSADORS_ENROLLED = "ambassadors_enrolled"
AMBASSADORS_WITHDRAWN = "ambassadors_withdrawn"
NOTIFIED_AMBASSADORS = "notified_ambassadors"
CLICKS_TOTAL = "clicks_total"
CLICKS_UNIQUE_HUMAN = "clicks_unique_human"
# Engagements other than clicks are counted per kind, summing their ``count``.
KIND_KPIS: dict[EngagementKind, str] = {
    EngagementKind.share: "shares",
    EngagementKind.reaction: "reactions",
    EngagementKind.comment: "comments",
    EngagementKind.reshare: "reshares",
    EngagementKind.impression: "impressions",
}
KNOWN_KPIS: tuple[str, ...] = (
    CONTENTS_PUBLISHED, AMBASSADORS_ENROLLED, AMBASSADORS_WITHDRAWN, NOTIFIED_AMBASSADORS,
    CLICKS_TOTAL, CLICKS_UNIQUE_HUMAN, *KIND_KPIS.values(),
)


@dataclass(frozen=True, order=True)
class Increment:
    scope_type: ScopeType
    scope_id: str
    kpi: str
    delta: int


@dataclass(frozen=True)
class Attribution:
    """What the event does not carry but reporting remembers (the ``contents`` and
    ``ambassadors`` tables): the subsidiary and campaign to attribute it to."""

    subsidiary: str | None = None
    campaign: str | None = None


Scope = tuple[ScopeType, str]


def increments(event: CloudEvent[Any], attribution: Attribution = Attribution()) -> list[Increment]:
    """The counter deltas one event causes, merged per counter and sorted (a stable lock order
    keeps concurrent transactions on the same hot rows from deadlocking each other)."""
    totals: dict[tuple[ScopeType, str, str], int] = {}
    for scopes, kpi, delta in _effects(event, attribution):
        for scope_type, scope_id in scopes:
            key = (scope_type, scope_id, kpi)
            totals[key] = totals.get(key, 0) + delta
    return sorted(Increment(s, i, k, d) for (s, i, k), d in totals.items() if d)


def _effects(event: CloudEvent[Any], attribution: Attribution) -> list[tuple[list[Scope], str, int]]:
    tenant = event.tenantid
    # Matched on the type name too: ContentUpdated is a ContentPublished, and must not count.
    match event.type, event.data:
        case "content.published", ContentPublished() as data:
            scopes = _scopes(tenant, subsidiary=data.owner_subsidiary, campaign=data.campaign)
            return [(scopes, CONTENTS_PUBLISHED, 1)]
        case "ambassador.enrolled", AmbassadorEnrolled() as data:
            return [(_scopes(tenant, subsidiary=data.subsidiary), AMBASSADORS_ENROLLED, 1)]
        case "ambassador.withdrawn", _:
            return [(_scopes(tenant, subsidiary=attribution.subsidiary), AMBASSADORS_WITHDRAWN, 1)]
        case "notification.sent", NotificationSent() as data:
            scopes = _scopes(tenant, subsidiary=data.subsidiary, content=data.content_id, campaign=data.campaign)
            return [(scopes, NOTIFIED_AMBASSADORS, 1)]
        case "engagement.recorded", EngagementRecorded() as data:
            return _engagement(tenant, data, attribution)
        case _:
            return []


def _engagement(tenant: str, data: EngagementRecorded,
                attribution: Attribution) -> list[tuple[list[Scope], str, int]]:
    scopes = _scopes(tenant, subsidiary=attribution.subsidiary, content=data.content_id,
                     campaign=attribution.campaign, network=data.network.value)
    if data.kind is EngagementKind.click:
        effects = [(scopes, CLICKS_TOTAL, data.count)]
        if data.human and data.unique:
            effects.append((scopes, CLICKS_UNIQUE_HUMAN, data.count))
        return effects
    return [(scopes, KIND_KPIS[data.kind], data.count)]


def _scopes(tenant: str, *, subsidiary: str | None = None, content: str | None = None,
            campaign: str | None = None, network: str | None = None) -> list[Scope]:
    """The tenant scope always; each other scope only when the event (or attribution) names it."""
    optional: Iterable[tuple[ScopeType, str | None]] = (
        (ScopeType.subsidiary, subsidiary), (ScopeType.content, content),
        (ScopeType.campaign, campaign), (ScopeType.network, network),
    )
    return [(ScopeType.tenant, tenant), *((t, i) for t, i in optional if i)]


def kpi_values(stored: dict[str, int]) -> dict[str, int]:
    """Every known KPI, 0 when nothing was counted yet, in a stable order."""
    return {kpi: stored.get(kpi, 0) for kpi in KNOWN_KPIS}


def may_read(reader_subsidiary: str | None, scope_type: ScopeType, scope_id: str,
             content_owner: str | None = None) -> bool:
    """Group-level readers see every scope of their tenant; a subsidiary-scoped reader sees its
    own subsidiary and the contents that subsidiary owns, nothing else."""
    if reader_subsidiary is None:
        return True
    if scope_type is ScopeType.subsidiary:
        return scope_id == reader_subsidiary
    if scope_type is ScopeType.content:
        return content_owner == reader_subsidiary
    return False
