"""The KPI report the demo ends with: plain text, tables aligned, nothing but what the APIs said
(and, for the exactness check, what the demo itself sent)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deploy.demo.flow import Outcome

WIDTH = 96
NO_VALUE = "–"


def number(value: Any) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def percent(value: Any) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f} %"


def duration(seconds: Any) -> str:
    if seconds is None:
        return NO_VALUE
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "   ") -> list[str]:
    """Left-aligned first column, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        return indent + "  ".join([first, *(str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])
    return [line(headers), indent + "  ".join("─" * w for w in widths), *(line(r) for r in rows)]


def title(text: str) -> list[str]:
    return ["", f" {text}", " " + "─" * (WIDTH - 2)]


def headline(outcome: Outcome) -> list[str]:
    k = outcome.results.kpis
    people = len(outcome.population.people)
    enrolled = k.get("enrolled_ambassadors") or 0
    rows = [
        ("Ambassadors enrolled", number(enrolled), f"{enrolled / people:.0%} of {people:,} employees"),
        ("Ambassadors notified", number(k.get("notified_ambassadors")),
         f"{number(k.get('notifications_sent'))} notifications, {len(outcome.contents)} contents"),
        ("Shares", number(k.get("shares")),
         f"by {number(k.get('sharing_ambassadors'))} ambassadors: adoption {percent(k.get('adoption_rate'))}"),
        ("Clicks", number(k.get("clicks_total")), f"{number(k.get('clicks_unique_human'))} unique human clicks"),
        ("Reactions", number(k.get("reactions")),
         f"and {number(k.get('comments'))} comments, {number(k.get('reshares'))} reshares"),
        ("Impressions", number(k.get("impressions")), f"engagement rate {percent(k.get('engagement_rate'))}"),
        ("Potential reach (estimated)", number(k.get("potential_reach")), "declared audiences of the sharers"),
        ("Earned media value (estimated)", number(k.get("earned_media_value")), "EUR, at the tenant's CPM/CPC"),
        ("Median time to first share", duration(k.get("median_time_to_first_share_seconds")), "after publication"),
    ]
    return [*title("Group KPIs (all time, GET /v1/kpis)"), *table(("KPI", "value", ""), rows)]


def subsidiaries(outcome: Outcome) -> list[str]:
    rows = [(s["code"], s["language"], number(s["headcount"]), number(s.get("enrolled_ambassadors")),
             number(s.get("notified_ambassadors")), number(s.get("shares")), percent(s.get("adoption_rate")),
             number(s.get("clicks_total")), number(s.get("clicks_unique_human")), number(s.get("engagements")),
             number(s.get("potential_reach"))) for s in outcome.results.subsidiaries]
    headers = ("Subsidiary", "lang", "people", "ambass.", "notified", "shares", "adoption", "clicks", "human",
               "engagements", "reach")
    return [*title("Per subsidiary (scope_type=subsidiary; people from /v1/directory/headcount)"),
            *table(headers, rows)]


def rankings(outcome: Outcome) -> list[str]:
    boards = outcome.results.boards
    lines = title("Rankings (GET /v1/kpis/leaderboards/…)")
    lines.append("   Top contents by engagements (clicks + reactions + comments + reshares)")
    lines += [f"     {e['rank']}. {number(e['value']):>8}  {e['title'] or e['id']}" for e in boards["contents"]]
    lines.append("   Top subsidiaries by engagements")
    lines += [f"     {e['rank']}. {number(e['value']):>8}  {e['id']}" for e in boards["subsidiaries"]]
    lines.append("   Top named ambassadors by shares")
    if boards["ambassadors"]:  # by the display name each chose to publish (reporting never gives their id)
        lines += [f"     {e['rank']}. {number(e['value']):>8}  {e['label']}" for e in boards["ambassadors"]]
    else:
        lines.append("     (nobody is named: only ambassadors who opted in to being named are ranked, and none has)")
    return lines


def digest(outcome: Outcome) -> list[str]:
    d = outcome.results.digest
    values = {k["kpi"]: k for k in d["kpis"]}

    def figure(name: str) -> str:
        entry = values.get(name, {})
        change = entry.get("change")
        return number(entry.get("value")) + (f" ({change:+.0%})" if change is not None else "")

    compared = any(values.get(n, {}).get("previous") for n in ("shares", "clicks_total", "engagements"))
    versus = "vs last month" if compared else "first month: nothing to compare with"
    best = d["best_posts"][0]["title"] if d["best_posts"] else NO_VALUE
    return [*title(f"Monthly digest {d['month']} (GET /v1/kpis/digest?month={d['month']}, also as HTML)"),
            f"   {figure('shares')} shares, {figure('clicks_total')} clicks, {figure('engagements')} engagements, "
            f"reach {figure('potential_reach')} ({versus}).",
            f"   Best post: {best}."]


def exactness(outcome: Outcome) -> list[str]:
    checks = outcome.results.checks
    rows = [(c.kpi, number(c.sent), number(c.counted), "✔" if c.exact else "✘ MISMATCH") for c in checks]
    lines = [*title("Exactness: what the demo sent vs what reporting counted"),
             *table(("KPI", "sent", "counted", ""), rows)]
    lines += [f"   · {note}" for note in outcome.tally.notes]
    verdict = ("every KPI counted exactly once ✔" if outcome.results.exact
               else f"{sum(not c.exact for c in checks)} KPI(s) differ ✘")
    return [*lines, f"   Verdict: {verdict}"]


def whereabouts(urls: dict[str, str], kafka: str, database: str, logs: str) -> list[str]:
    lines = title("Where things are")
    lines += [f"   {name:<13} API docs {url}/docs   metrics {url}/metrics"
              for name, url in urls.items() if name != "web"]
    if "web" in urls:
        lines.append(f"   web front     {urls['web']}/  (hub, studio, dashboard; demo sign-in)")
    lines += [f"   Kafka {kafka}   PostgreSQL {database}", f"   Logs (JSON lines) {logs}"]
    return lines


def render(outcome: Outcome, urls: dict[str, str], kafka: str, database: str, logs: str) -> str:
    banner = "═" * WIDTH
    parts = [banner, f" Portevoix — KPI report for ACME Group (tenant {outcome.tenant})", banner,
             *headline(outcome), *subsidiaries(outcome), *rankings(outcome), *digest(outcome), *exactness(outcome),
             *whereabouts(urls, kafka, database, logs), banner]
    return "\n".join(parts)
