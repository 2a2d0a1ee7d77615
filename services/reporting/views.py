"""Renderings of API tables, pure: CSV of any table, the digest as e-mail-ready HTML."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Mapping
from typing import Any


def to_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return out.getvalue()


def series_rows(series: Mapping[str, Any], kpi_names: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per window, one column per KPI."""
    names = list(kpi_names)
    rows = [{"window_start": p["window_start"].isoformat() if p["window_start"] else "", **p["kpis"]}
            for p in series["points"]]
    return rows, ["window_start", *names]


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{value:,}"


def _change(value: float | None) -> str:
    if value is None:
        return ""
    arrow = "▲" if value > 0 else ("▼" if value < 0 else "=")
    return f"{arrow} {value:+.1%}"


def digest_html(digest: Mapping[str, Any]) -> str:
    """A self-contained HTML e-mail: inline styles, tables only (what mail clients render)."""
    e = html.escape
    cell = 'style="padding:4px 8px;border-bottom:1px solid #ddd"'
    kpi_rows = "".join(
        f"<tr><td {cell}>{e(k['kpi'].replace('_', ' '))}{' (est.)' if k['kind'] == 'estimated' else ''}</td>"
        f"<td {cell} align=\"right\">{_number(k['value'])}</td><td {cell} align=\"right\">{_number(k['previous'])}</td>"
        f"<td {cell} align=\"right\">{_change(k['change'])}</td></tr>" for k in digest["kpis"])
    posts = "".join(f"<li>#{p['rank']} {e(p.get('title') or p['id'])} — {p['value']:,} engagements</li>"
                    for p in digest["best_posts"]) or "<li>No engagement this month.</li>"
    people = "".join(f"<li>#{a['rank']} {e(a['label'])} — {a['value']:,} shares</li>"
                     for a in digest["best_ambassadors"]) or "<li>No named ambassador shared this month.</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your month in numbers — {e(digest['month'])}</title></head>
<body style="font-family:Arial,Helvetica,sans-serif;color:#222;max-width:640px;margin:auto">
<h1 style="font-size:20px">Your month in numbers — {e(digest['month'])}</h1>
<p>{e(digest['scope_type'])} {e(digest['scope_id'])}; KPI definitions version {e(digest['definitions_version'])}.</p>
<table cellspacing="0" style="border-collapse:collapse;width:100%">
<tr><th align="left" {cell}>KPI</th><th align="right" {cell}>This month</th><th align="right" {cell}>Previous</th>
<th align="right" {cell}>Change</th></tr>
{kpi_rows}
</table>
<h2 style="font-size:16px">Best posts</h2><ol style="list-style:none;padding:0">{posts}</ol>
<h2 style="font-size:16px">Best ambassadors</h2><ol style="list-style:none;padding:0">{people}</ol>
</body></html>
"""
