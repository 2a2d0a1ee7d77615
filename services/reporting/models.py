"""The HTTP API's response bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.reporting.domain import ScopeType


class Kpis(BaseModel):
    tenant: str
    scope_type: ScopeType
    scope_id: str
    kpis: dict[str, int] = Field(description="Every known KPI, 0 when nothing was counted yet")


class ContentKpis(BaseModel):
    content_id: str
    title: str | None = Field(None, description="None when the content's publication was not seen")
    owner_subsidiary: str | None = None
    campaign: str | None = None
    clicks: int = Field(description="clicks_total, the ranking value")
    kpis: dict[str, int]


class KpiReport(BaseModel):
    tenant: str
    kpis: dict[str, int]
    top_contents: list[ContentKpis] = Field(description="Contents with the most clicks, most first")
