"""The HTTP API's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, Field

from services.reporting.domain import ScopeType, Window
from shared.events import Network

KpiMap = dict[str, float | int]
KPIS_DESCRIPTION = "KPI name -> value; the KPIs undefined for this scope or window (e.g. a rate over zero) are absent"


class Kpis(BaseModel):
    tenant: str
    scope_type: ScopeType
    scope_id: str
    window: Window
    window_start: datetime | None = Field(description="None for window all")
    definitions_version: str
    currency: str | None = Field(description="Currency of earned_media_value; None when no rates are configured")
    kpis: KpiMap = Field(description=KPIS_DESCRIPTION)


class SeriesPoint(BaseModel):
    window_start: datetime | None
    kpis: KpiMap = Field(description=KPIS_DESCRIPTION)


class KpiSeries(BaseModel):
    tenant: str
    scope_type: ScopeType
    scope_id: str
    window: Window
    definitions_version: str
    currency: str | None
    points: list[SeriesPoint] = Field(description="One per window of the range, oldest first; when the range holds "
                                                  "more windows than `limit`, only the newest `limit` of them")
    windows_in_range: int = Field(description="How many windows the range holds")
    truncated: bool = Field(description="True when points are fewer than windows_in_range (the oldest left out)")


class Definition(BaseModel):
    name: str
    kind: Literal["measured", "estimated"] = Field(description="measured: counted events; estimated: derived "
                                                               "from declared or configured figures")
    unit: str
    definition: str


class Definitions(BaseModel):
    version: str
    definitions: list[Definition]


class LeaderboardEntry(BaseModel):
    rank: int = Field(description="Competition ranking: equal values share a rank (1, 1, 3)")
    id: str | None = Field(description="Content or subsidiary id; always null for ambassadors (see name)")
    value: int
    title: str | None = Field(None, description="Contents only")
    name: str | None = Field(None, description="Ambassadors only: the display name the person chose to publish")
    label: str | None = Field(None, description="Ambassadors only: name, or 'an ambassador' when none was published")
    me: bool = Field(False, description="Ambassadors, in my results: this line is the caller's")


class Leaderboard(BaseModel):
    tenant: str
    board: str
    kpi: str
    window: Window
    window_start: datetime | None
    entries: list[LeaderboardEntry]


class MyResults(BaseModel):
    tenant: str
    ambassador_id: str = Field(description="The caller's own pseudonymous id")
    display_name: str | None = Field(description="The name the caller publishes, while named in leaderboards")
    kpis: KpiMap = Field(description="The caller's all-time KPIs (shares, clicks_total, reactions, potential_reach...)")
    leaderboard_kpi: str
    rank: int | None = Field(description="The caller's rank among the tenant's ambassadors (null: no value yet)")
    rank_value: int
    leaderboard: list[LeaderboardEntry] = Field(description="The tenant's top ambassadors among those who chose to "
                                                            "be named, by display name; rank is the caller's own "
                                                            "whether named or not")


class DigestKpi(BaseModel):
    kpi: str
    value: float | int | None
    previous: float | int | None
    change: float | None = Field(description="(value - previous) / previous; None when previous is 0 or absent")
    kind: str


class Digest(BaseModel):
    tenant: str
    scope_type: ScopeType
    scope_id: str
    month: str
    definitions_version: str
    currency: str | None
    kpis: list[DigestKpi]
    best_posts: list[LeaderboardEntry] = Field(description="Contents by engagements in the month")
    best_ambassadors: list[LeaderboardEntry] = Field(description="Ambassadors who chose to be named, by shares, "
                                                                 "by their display name (never an id)")


class ContentRank(BaseModel):
    content_id: str
    rank: int
    clicks: int
    title: str | None = None
    owner_subsidiary: str | None = None
    campaign: str | None = None


class KpiReport(BaseModel):
    tenant: str
    kpis: KpiMap
    top_contents: list[ContentRank] = Field(description="Contents with the most clicks, most first")


class NetworkRates(BaseModel):
    cpm: Annotated[float, Field(ge=0, le=1e9, description="Cost per thousand impressions")] = 0
    cpc: Annotated[float, Field(ge=0, le=1e9, description="Cost per click")] = 0


class MediaRates(BaseModel):
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
    rates: dict[Network, NetworkRates]


class WebhookRequest(BaseModel):
    url: AnyHttpUrl
    event_types: list[Literal["kpi.changed", "kpi.milestone"]] = Field(min_length=1)


class Webhook(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    created_at: datetime
    active: bool = Field(description="False: paused, nothing is sent (pending deliveries wait, new events are not "
                                     "queued) until PATCH active=true")
    paused_at: datetime | None
    paused_reason: str | None = Field(description="'paused by an admin', or the automatic pause after failed "
                                                  "attempts in a row, with the last error")
    consecutive_failures: int = Field(description="Failed attempts in a row (reset by a success or a resume)")


class WebhookChange(BaseModel):
    active: bool = Field(description="false pauses the subscription, true resumes it")


class NewWebhook(Webhook):
    secret: str = Field(description="Standard Webhooks signing secret (whsec_...), shown once")


class Delivery(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_type: str
    payload: dict
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
