"""Reporting decisions, pure: which rollups an event moves (scopes x windows), the KPI
definitions and how each value is derived, who may read which scope, rankings, milestones."""

from __future__ import annotations

import calendar
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from shared.envelope import CloudEvent
from shared.events import (
    AmbassadorProfile,
    ContentPublished,
    EngagementKind,
    EngagementRecorded,
    Network,
    NotificationSent,
)


class ScopeType(StrEnum):
    tenant = "tenant"
    subsidiary = "subsidiary"
    department = "department"  # scope id "<subsidiary>/<department>"
    content = "content"
    campaign = "campaign"
    ambassador = "ambassador"
    network = "network"


class Window(StrEnum):
    hour = "hour"
    day = "day"
    month = "month"
    all = "all"


ALL_TIME_START = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # instants asked are before it: every window's end is a date
ACTIVE_DAYS = 30


def window_start(window: Window, at: datetime) -> datetime:
    at = at.astimezone(UTC)
    match window:
        case Window.hour:
            return at.replace(minute=0, second=0, microsecond=0)
        case Window.day:
            return at.replace(hour=0, minute=0, second=0, microsecond=0)
        case Window.month:
            return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        case Window.all:
            return ALL_TIME_START


def window_end(window: Window, start: datetime) -> datetime | None:
    """The exclusive end of the window starting at ``start``; None for all time."""
    match window:
        case Window.hour:
            return start + timedelta(hours=1)
        case Window.day:
            return start + timedelta(days=1)
        case Window.month:
            return start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
        case Window.all:
            return None


def readable(at: datetime) -> bool:
    """Whether KPIs can be asked of the windows around ``at``: from the all-time window's start
    to before LATEST."""
    try:
        return ALL_TIME_START <= at.astimezone(UTC) < LATEST
    except OverflowError:  # an offset moving it out of datetime's years
        return False


def windows_between(window: Window, first: datetime, last: datetime) -> int:
    """How many windows overlap [first, last] (counted, not listed: a range may hold millions)."""
    if window is Window.all:
        return 1
    a, b = window_start(window, first), window_start(window, last)
    if b < a:
        return 0
    if window is Window.month:
        return (b.year - a.year) * 12 + b.month - a.month + 1
    return int((b - a) / (timedelta(hours=1) if window is Window.hour else timedelta(days=1))) + 1


def previous_start(window: Window, start: datetime) -> datetime:
    """The start of the window before the one starting at ``start`` (not for all time)."""
    if window is Window.month:
        return (start - timedelta(days=1)).replace(day=1)
    return start - (timedelta(hours=1) if window is Window.hour else timedelta(days=1))


def window_starts(window: Window, first: datetime, last: datetime, limit: int) -> list[datetime]:
    """The starts of the windows overlapping [first, last], oldest first: the newest ``limit``
    of them when there are more (a long range is cut at its old end, see ``windows_between``)."""
    if window is Window.all:
        return [ALL_TIME_START]  # the one window, whatever the range
    oldest = window_start(window, first)
    starts: list[datetime] = []
    start = window_start(window, last)
    while start >= oldest and len(starts) < limit:
        starts.append(start)
        if start <= ALL_TIME_START:
            break
        start = previous_start(window, start)
    return starts[::-1]


# --- KPIs ------------------------------------------------------------------------------------

DEFINITIONS_VERSION = "1"
MEASURED, ESTIMATED = "measured", "estimated"


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # measured (counted events) or estimated
    unit: str
    definition: str


DEFINITIONS: tuple[Definition, ...] = (
    Definition("contents_published", MEASURED, "count",
               "content.published events whose published_at falls in the window (scopes: owner subsidiary, campaign)."),
    Definition("ambassadors_enrolled", MEASURED, "count", "ambassador.enrolled events effective in the window."),
    Definition("ambassadors_withdrawn", MEASURED, "count", "ambassador.withdrawn events effective in the window."),
    Definition("enrolled_ambassadors", MEASURED, "count",
               "Ambassadors enrolled at the end of the window (or now), from the directory's effective-dated history."),
    Definition("notifications_sent", MEASURED, "count", "notification.sent events in the window."),
    Definition("notified_ambassadors", MEASURED, "count",
               "Distinct ambassadors with a notification.sent in the window."),
    Definition("shares", MEASURED, "count", "Sum of count of engagement.recorded of kind share in the window."),
    Definition("sharing_ambassadors", MEASURED, "count",
               "Distinct ambassadors with a share in the window."),
    Definition("adoption_rate", MEASURED, "ratio", "sharing_ambassadors ÷ notified_ambassadors of the same window."),
    Definition("active_ambassadors", MEASURED, "count",
               "Distinct ambassadors with a share in the 30 days before the end of the window (or now)."),
    Definition("activation_rate", MEASURED, "ratio",
               "active_ambassadors ÷ enrolled_ambassadors, both at the end of the window (that period's enrolment)."),
    Definition("clicks_total", MEASURED, "count", "Sum of count of engagement.recorded of kind click."),
    Definition("clicks_unique_human", MEASURED, "count", "Same, only those flagged human and unique."),
    Definition("reactions", MEASURED, "count", "Sum of count of engagements of kind reaction."),
    Definition("comments", MEASURED, "count", "Sum of count of engagements of kind comment."),
    Definition("reshares", MEASURED, "count", "Sum of count of engagements of kind reshare."),
    Definition("impressions", MEASURED, "count",
               "Sum of count of engagements of kind impression (as reported by the networks)."),
    Definition("engagements", MEASURED, "count", "clicks_total + reactions + comments + reshares."),
    Definition("engagement_rate", MEASURED, "ratio", "engagements ÷ impressions."),
    Definition("potential_reach", ESTIMATED, "people",
               "Sum over distinct (sharing ambassador, network) pairs of the window of the ambassador's declared "
               "audience on that network, as of the share."),
    Definition("earned_media_value", ESTIMATED, "currency",
               "Sum over networks of impressions × CPM ÷ 1000 + clicks_total × CPC, at the tenant's current rates."),
    Definition("median_time_to_first_share_seconds", MEASURED, "seconds",
               "Median over the contents published in the window of (first share's occurred_at − published_at)."),
)
DEFINITION_BY_NAME = {d.name: d for d in DEFINITIONS}
KPI_NAMES = tuple(d.name for d in DEFINITIONS)
# What the rollups store; every other KPI derives from these or from the history tables.
COUNTED = ("contents_published", "ambassadors_enrolled", "ambassadors_withdrawn", "notifications_sent",
           "notified_ambassadors", "shares", "sharing_ambassadors", "clicks_total", "clicks_unique_human",
           "reactions", "comments", "reshares", "impressions", "potential_reach")
RANKABLE = (*COUNTED, "engagements")
KIND_KPIS: dict[EngagementKind, str] = {
    EngagementKind.click: "clicks_total", EngagementKind.share: "shares", EngagementKind.reaction: "reactions",
    EngagementKind.comment: "comments", EngagementKind.reshare: "reshares", EngagementKind.impression: "impressions",
}
# Clicks and impressions are also kept per network (``clicks_total@linkedin``): earned media
# value applies each network's rates.
PER_NETWORK = ("clicks_total", "impressions")


def per_network(kpi: str, network: str) -> str:
    return f"{kpi}@{network}"


@dataclass(frozen=True)
class MediaRates:
    currency: str
    rates: Mapping[str, Mapping[str, float]]  # network -> {"cpm": .., "cpc": ..}


@dataclass(frozen=True)
class DirectoryFigures:
    """Figures read from the history tables, not the rollups (None: not defined for the scope)."""

    enrolled: int | None = None
    active: int | None = None
    median_first_share_seconds: float | None = None


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def engagements(counted: Mapping[str, int]) -> int:
    return sum(counted.get(k, 0) for k in ("clicks_total", "reactions", "comments", "reshares"))


def earned_media_value(counted: Mapping[str, int], rates: MediaRates | None) -> float | None:
    if rates is None:
        return None
    value = 0.0
    for network, rate in rates.rates.items():
        value += counted.get(per_network("impressions", network), 0) * float(rate.get("cpm", 0)) / 1000
        value += counted.get(per_network("clicks_total", network), 0) * float(rate.get("cpc", 0))
    return round(value, 2)


def kpi_values(counted: Mapping[str, int], rates: MediaRates | None = None,
               directory: DirectoryFigures = DirectoryFigures()) -> dict[str, float | int]:
    """The KPIs of one scope and window defined there, in the definitions' order."""
    values: dict[str, float | int | None] = {k: counted.get(k, 0) for k in COUNTED}
    values["engagements"] = engagements(counted)
    values["adoption_rate"] = _ratio(counted.get("sharing_ambassadors", 0), counted.get("notified_ambassadors", 0))
    values["engagement_rate"] = _ratio(engagements(counted), counted.get("impressions", 0))
    values["earned_media_value"] = earned_media_value(counted, rates)
    values["enrolled_ambassadors"] = directory.enrolled
    values["active_ambassadors"] = directory.active
    values["activation_rate"] = (_ratio(directory.active, directory.enrolled)
                                 if directory.active is not None and directory.enrolled is not None else None)
    values["median_time_to_first_share_seconds"] = directory.median_first_share_seconds
    # Undefined ones (a rate over zero, a directory figure of a content scope) are left out.
    return {name: value for name in KPI_NAMES if (value := values[name]) is not None}


def stream_values(counted: Mapping[str, int], rates: MediaRates | None,
                  directory: DirectoryFigures = DirectoryFigures()) -> dict[str, float]:
    """What the KPI stream carries for a key: its KPIs as the API serves them when it changed."""
    return {k: float(v) for k, v in kpi_values(counted, rates, directory).items()}


def streams_directory(scope_type: str) -> bool:
    """Whether the stream's keys of this scope carry the directory figures (enrolled and active
    ambassadors, activation rate, median time to first share): every scope but the single
    ambassador's (one row of the directory, and as many keys as ambassadors)."""
    return scope_type != ScopeType.ambassador


# --- what events move --------------------------------------------------------------------------

Scope = tuple[ScopeType, str]


class Effect(NamedTuple):
    """Add ``delta`` to ``kpi`` of a scope in every window containing ``at``; with ``member``,
    only the first time that member counts for that scope and window (distinct counts).
    A named tuple, not a dataclass: a batch makes tens of effects per event, and tuples are
    several times cheaper to build and hash."""

    scope_type: ScopeType
    scope_id: str
    kpi: str
    delta: int
    at: datetime
    member: str | None = None


@dataclass(frozen=True)
class ContentFacts:
    owner_subsidiary: str | None
    campaign: str | None
    published_at: datetime | None = None


# An engagement may be dated this much before its content's publication (clocks of networks,
# connectors and our services differ); earlier, it cannot be about this content: refused.
CLOCK_SKEW = timedelta(minutes=10)


def engagement_refused(data: EngagementRecorded, content: ContentFacts | None) -> str | None:
    """Why an engagement cannot be counted, or None. Only a content whose publication is known
    can be checked (one read later is not: the engagement was counted on arrival)."""
    if content is None or content.published_at is None or data.occurred_at >= content.published_at - CLOCK_SKEW:
        return None
    return (f"engagement occurred_at {data.occurred_at.isoformat()} is before its content {data.content_id} "
            f"was published ({content.published_at.isoformat()}, clock skew tolerated {CLOCK_SKEW})")


@dataclass(frozen=True)
class AmbassadorFacts:
    subsidiary: str
    department: str
    network_audience: Mapping[str, int]


def department_id(subsidiary: str, department: str) -> str | None:
    return f"{subsidiary}/{department}" if subsidiary and department else None


def _scopes(tenant: str, **optional: str | None) -> list[Scope]:
    """The tenant scope always; each other scope only when it is known."""
    return [(ScopeType.tenant, tenant), *((ScopeType(t), i) for t, i in optional.items() if i)]


def _counted(scopes: Iterable[Scope], kpi: str, delta: int, at: datetime, member: str | None = None) -> list[Effect]:
    return [Effect(t, i, kpi, delta, at, member) for t, i in scopes]


def content_published_effects(tenant: str, data: ContentPublished) -> list[Effect]:
    scopes = _scopes(tenant, subsidiary=data.owner_subsidiary, campaign=data.campaign, content=data.content_id)
    return _counted(scopes, "contents_published", 1, data.published_at)


def enrolment_effects(tenant: str, kpi: str, ambassador_id: str, facts: AmbassadorFacts | None,
                      at: datetime) -> list[Effect]:
    if facts is None:
        scopes = _scopes(tenant, ambassador=ambassador_id)
    else:
        scopes = _scopes(tenant, subsidiary=facts.subsidiary,
                         department=department_id(facts.subsidiary, facts.department), ambassador=ambassador_id)
    return _counted(scopes, kpi, 1, at)


def notification_effects(tenant: str, data: NotificationSent) -> list[Effect]:
    scopes = _scopes(tenant, subsidiary=data.subsidiary, department=department_id(data.subsidiary, data.department),
                     content=data.content_id, campaign=data.campaign, ambassador=data.ambassador_id)
    return [*_counted(scopes, "notifications_sent", 1, data.at),
            *_counted(scopes, "notified_ambassadors", 1, data.at, member=data.ambassador_id)]


def engagement_effects(tenant: str, data: EngagementRecorded, content: ContentFacts | None,
                       ambassador: AmbassadorFacts | None) -> list[Effect]:
    """The effects of an engagement given what is known of its content and ambassador. More
    knowledge only adds scopes, never removes one: what a late fact adds is a difference."""
    subsidiary: str | None = None
    department: str | None = None
    if data.ambassador_id:  # attributed to the subsidiary of the ambassador who brought it
        if ambassador is not None:
            subsidiary = ambassador.subsidiary
            department = department_id(ambassador.subsidiary, ambassador.department)
    elif content is not None:  # else to the content's owner
        subsidiary = content.owner_subsidiary
    scopes = _scopes(tenant, subsidiary=subsidiary, department=department, content=data.content_id,
                     campaign=content.campaign if content else None, ambassador=data.ambassador_id,
                     network=data.network.value)
    at, kpi = data.occurred_at, KIND_KPIS[data.kind]
    effects = _counted(scopes, kpi, data.count, at)
    if kpi in PER_NETWORK:
        effects += _counted(scopes, per_network(kpi, data.network.value), data.count, at)
    if data.kind is EngagementKind.click and data.human and data.unique:
        effects += _counted(scopes, "clicks_unique_human", data.count, at)
    if data.kind is EngagementKind.share and data.ambassador_id:
        effects += _counted(scopes, "sharing_ambassadors", 1, at, member=data.ambassador_id)
        if ambassador is not None:
            audience = ambassador.network_audience.get(data.network.value, 0)
            effects += _counted(scopes, "potential_reach", audience, at,
                                member=f"{data.ambassador_id}|{data.network.value}")
    return effects


def engagements_effects(engagements: Iterable[tuple[str, EngagementRecorded, ContentFacts | None,
                                                    AmbassadorFacts | None]]) -> list[tuple[str, Effect]]:
    """The effects of a batch of engagements, each given what is known of its content and
    ambassador. Engagements alike (same tenant, content, ambassador, network, kind, flags, hour
    and facts) move the same rollups: their effects are worked out once, with their counts
    summed (a batch's clicks on one tracked link are one group)."""
    hour_of = _hour_of()
    Group = tuple[str, ContentFacts | None, AmbassadorFacts | None, list[EngagementRecorded]]
    groups: dict[tuple[Any, ...], Group] = {}
    for tenant, data, content, ambassador in engagements:
        key = (tenant, data.content_id, data.ambassador_id, data.network, data.kind, data.human, data.unique,
               hour_of(data.occurred_at), id(content), id(ambassador))
        groups.setdefault(key, (tenant, content, ambassador, []))[3].append(data)
    effects: list[tuple[str, Effect]] = []
    for tenant, content, ambassador, alike in groups.values():
        data = alike[0] if len(alike) == 1 else alike[0].model_copy(update={"count": sum(d.count for d in alike)})
        effects += [(tenant, e) for e in engagement_effects(tenant, data, content, ambassador)]
    return effects


def late_attribution(tenant: str, data: EngagementRecorded, before: tuple[ContentFacts | None, AmbassadorFacts | None],
                     after: tuple[ContentFacts | None, AmbassadorFacts | None]) -> list[Effect]:
    """What an engagement already counted with ``before`` still owes once ``after`` is known."""
    owed = Counter(engagement_effects(tenant, data, *after)) - Counter(engagement_effects(tenant, data, *before))
    return sorted(owed.elements())


def retraction(tenant: str, data: EngagementRecorded,
               counted_with: tuple[ContentFacts | None, AmbassadorFacts | None]) -> list[Effect]:
    """The counts an engagement added on arrival (with what was known then), taken back once it
    turns out refused. Distinct members it may have added (a sharing ambassador, a potential
    reach) stay: another engagement of the same window may share them."""
    return [e._replace(delta=-e.delta) for e in engagement_effects(tenant, data, *counted_with) if e.member is None]


def needs_ambassador(data: EngagementRecorded) -> bool:
    return data.ambassador_id is not None


class HourKey(NamedTuple):
    tenant: str
    scope_type: str
    scope_id: str
    kpi: str
    hour: datetime


class Deltas(NamedTuple):
    """A batch's effects merged per hour: every coarser window is a union of hours, and a batch
    has far fewer distinct (scope, kpi, hour) than effects. Each hour-level delta is added to
    the rollups of the four windows in ``windows[hour]`` (the database spreads it)."""

    plain: dict[HourKey, int]
    members: dict[tuple[HourKey, str], int]  # the first value seen of each member, in order seen
    windows: dict[datetime, tuple[tuple[Window, datetime], ...]]


def expand(effects: Iterable[tuple[str, Effect]]) -> Deltas:
    """Each tenant's effects merged per (scope, kpi, hour); members keep the first value seen
    in the batch (in every window their hour falls in)."""
    hour_of = _hour_of()
    plain: dict[HourKey, int] = {}
    members: dict[tuple[HourKey, str], int] = {}
    for tenant, e in effects:
        key = HourKey(tenant, e.scope_type, e.scope_id, e.kpi, hour_of(e.at))
        if e.member is None:
            plain[key] = plain.get(key, 0) + e.delta
        else:
            members.setdefault((key, e.member), e.delta)
    hours = {key.hour for key in plain} | {key.hour for key, _ in members}
    return Deltas(plain, members, {hour: windows_of_hour(hour) for hour in hours})


def _hour_of() -> Callable[[datetime], datetime]:
    """The start of an instant's hour, remembered: a batch's events share few instants."""
    return functools.cache(functools.partial(window_start, Window.hour))


def windows_of_hour(hour: datetime) -> tuple[tuple[Window, datetime], ...]:
    return tuple((window, window_start(window, hour)) for window in Window)


def ambassador_facts(profile: AmbassadorProfile) -> AmbassadorFacts:
    return AmbassadorFacts(profile.subsidiary, profile.department,
                           {str(k): v for k, v in profile.network_audience.items()})


def is_content_event(event: CloudEvent[Any]) -> bool:
    return event.type in ("content.published", "content.updated")


# --- access --------------------------------------------------------------------------------------

def may_read(reader_subsidiary: str | None, scope_type: ScopeType, scope_id: str,
             owner: str | None = None) -> bool:
    """Group-level readers see every scope of their tenant; a subsidiary-scoped reader sees its
    own subsidiary, its departments, the contents it owns and its ambassadors (``owner`` is the
    subsidiary owning the content or employing the ambassador), nothing else."""
    if reader_subsidiary is None:
        return True
    match scope_type:
        case ScopeType.subsidiary:
            return scope_id == reader_subsidiary
        case ScopeType.department:
            return scope_id.startswith(f"{reader_subsidiary}/")
        case ScopeType.content | ScopeType.ambassador:
            return owner == reader_subsidiary
        case _:
            return False


# --- rankings, digests, milestones ------------------------------------------------------------------

def ranked(rows: list[dict[str, Any]], value_key: str, id_key: str) -> list[dict[str, Any]]:
    """Standard competition ranking (1, 1, 3): equal values share a rank; the id orders ties
    so that the listing is stable."""
    ordered = sorted(rows, key=lambda r: (-(r[value_key] or 0), str(r[id_key])))
    result, previous, rank = [], None, 0
    for position, row in enumerate(ordered, start=1):
        if row[value_key] != previous:
            rank, previous = position, row[value_key]
        result.append({"rank": rank, **row})
    return result


AN_AMBASSADOR = "an ambassador"


def display_name(profile: AmbassadorProfile) -> str | None:
    """The name reporting may show: only the one the person chose to publish, only while named."""
    return (profile.display_name or None) if profile.named_in_leaderboards else None


def ambassador_entry(rank: int, value: int, name: str | None, me: bool = False) -> dict[str, Any]:
    """A leaderboard line of an ambassador: never the id; the display name when published."""
    return {"rank": rank, "id": None, "value": value, "name": name, "label": name or AN_AMBASSADOR, "me": me}


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-03' -> (2026-03-01, 2026-02-01) as (this month's start, the previous month's start)."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    previous = (start - timedelta(days=1)).replace(day=1)
    return start, previous


def change(current: float | int | None, previous: float | int | None) -> float | None:
    """Relative change from the previous month (None when it had nothing)."""
    if current is None or not previous:
        return None
    return round((current - previous) / previous, 4)


MILESTONE_KPIS = ("shares", "clicks_total", "impressions", "potential_reach", "sharing_ambassadors")
MILESTONE_SCOPES = (ScopeType.tenant, ScopeType.subsidiary)  # all time only


def milestones_crossed(before: Mapping[str, float], after: Mapping[str, float]) -> list[tuple[str, int]]:
    """The KPIs that reached a new power of ten (10, 100, 1000, ...), each with the highest one
    reached: a change jumping over several thresholds at once is one milestone, not one per
    threshold (0 -> 1500 is 1000 only)."""
    crossed = []
    for kpi in MILESTONE_KPIS:
        old, new = before.get(kpi, 0), after.get(kpi, 0)
        threshold = 10
        while threshold * 10 <= new:
            threshold *= 10
        if old < threshold <= new:
            crossed.append((kpi, threshold))
    return crossed


def is_milestone_key(scope_type: str, window: str) -> bool:
    return scope_type in MILESTONE_SCOPES and window == Window.all


def stream_subject(scope_type: str, scope_id: str, window: str, start: datetime) -> str:
    """A KPI stream key within its tenant (the kpi.changed events' subject)."""
    when = "all" if window == Window.all else start.isoformat()
    return f"{scope_type}/{scope_id}/{window}/{when}"


def stream_key(tenant: str, scope_type: str, scope_id: str, window: str, start: datetime) -> str:
    """The KPI stream's record key, ``<tenant>/<subject>`` like every record key."""
    return f"{tenant}/{stream_subject(scope_type, scope_id, window, start)}"


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


NETWORKS = tuple(n.value for n in Network)
