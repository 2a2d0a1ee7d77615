"""Reading the KPIs back: wait (by polling the API) until reporting has counted what was sent,
then gather what the report shows — per-subsidiary tables, rankings and the monthly digest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deploy.demo.api import Api, DemoError, expect, poll
from deploy.demo.console import Console
from deploy.demo.directory import headcount
from deploy.demo.population import SUBSIDIARIES

MEDIA_RATES = {"currency": "EUR", "rates": {"linkedin": {"cpm": 32.0, "cpc": 3.1}, "x": {"cpm": 6.5, "cpc": 0.9},
                                            "xing": {"cpm": 18.0, "cpc": 2.2}, "facebook": {"cpm": 9.0, "cpc": 1.1}}}


@dataclass
class Check:
    kpi: str
    sent: int
    counted: int | float | None

    @property
    def exact(self) -> bool:
        return self.counted == self.sent


@dataclass
class Results:
    kpis: dict[str, Any]
    checks: list[Check]
    subsidiaries: list[dict[str, Any]] = field(default_factory=list)
    boards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    digest: dict[str, Any] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.checks)


async def set_media_rates(api: Api) -> None:
    expect(await api.reporting.put("/v1/kpis/media-rates", json=MEDIA_RATES, headers=api.admin), 200,
           what="set the media rates")


async def kpis(api: Api, scope_type: str = "tenant", scope_id: str | None = None) -> dict[str, Any]:
    params = {"scope_type": scope_type} | ({"scope_id": scope_id} if scope_id else {})
    return expect(await api.reporting.get("/v1/kpis", params=params, headers=api.analyst), 200,
                  what=f"KPIs of {scope_type} {scope_id or ''}")["kpis"]


async def wait_for_scope(api: Api, scope_type: str, scope_id: str, expected: dict[str, int], what: str,
                         timeout: float) -> dict[str, Any]:
    """The scope's KPIs once they reach ``expected``; a DemoError naming what is missing if not."""
    last: dict[str, Any] = {}

    async def arrived() -> dict[str, Any] | None:
        nonlocal last
        last = await kpis(api, scope_type, scope_id)
        return last if all(last.get(k) == v for k, v in expected.items()) else None

    def missing() -> str:
        return ", ".join(f"{k} {last.get(k)} of {v}" for k, v in expected.items() if last.get(k) != v)

    return await poll(arrived, what=what, timeout=timeout, describe=missing)


async def wait_for_counts(api: Api, console: Console, sent: dict[str, int], timeout: float) -> Results:
    """Every tallied KPI of the tenant equal to what was sent. A count that does not settle is
    reported as a failed check (with the last value read), not hidden."""
    try:
        counted = await wait_for_scope(api, "tenant", api.tenant, sent, "reporting to count everything sent",
                                       timeout)
    except DemoError as error:
        console.info(f"⚠ {error}")
        counted = await kpis(api)
    return Results(counted, [Check(k, v, counted.get(k)) for k, v in sent.items()])


async def gather(api: Api, results: Results) -> None:
    """The tables, rankings and digest the report prints."""
    for subsidiary in SUBSIDIARIES:
        row = await kpis(api, "subsidiary", subsidiary.code)
        row["headcount"] = (await headcount(api, subsidiary.code))["headcount"]
        results.subsidiaries.append({"code": subsidiary.code, "language": subsidiary.language, **row})
    for board, kpi in (("contents", "engagements"), ("subsidiaries", "engagements"), ("ambassadors", "shares")):
        answer = expect(await api.reporting.get(f"/v1/kpis/leaderboards/{board}", params={"kpi": kpi, "top": 5},
                                                headers=api.analyst), 200, what=f"{board} leaderboard")
        results.boards[board] = answer["entries"]
    month = datetime.now(UTC).strftime("%Y-%m")
    results.digest = expect(await api.reporting.get("/v1/kpis/digest", params={"month": month},
                                                    headers=api.analyst), 200, what="the monthly digest")
