"""Builds deploy/grafana/dashboards/portevoix.json (provisioned by docker-compose): an ops row
and a KPI row. Run `python deploy/grafana/build_dashboard.py` after changing the panels."""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parent / "dashboards" / "portevoix.json"


def panel(pid: int, title: str, exprs: list[tuple[str, str]], x: int, y: int, unit: str = "short",
          kind: str = "timeseries", w: int = 8) -> dict:
    return {
        "id": pid, "type": kind, "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(exprs)],
    }


def row(pid: int, title: str, y: int) -> dict:
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": []}


PANELS = [
    row(1, "Operations", 0),
    panel(2, "HTTP requests by status", [
        ("sum by (status) (rate(portevoix_http_requests_total[5m]))", "{{status}}")], 0, 1, "reqps"),
    panel(3, "HTTP p99 latency by route", [(
        "histogram_quantile(0.99, sum by (le, route) (rate(portevoix_http_request_duration_seconds_bucket[5m])))",
        "{{route}}")], 8, 1, "s"),
    panel(4, "Consumer lag", [
        ("sum by (consumer, topic) (portevoix_consumer_lag_records)", "{{consumer}} ← {{topic}}")], 16, 1),
    panel(5, "Events consumed by outcome", [(
        "sum by (outcome) (rate(portevoix_events_consumed_total[5m]))", "{{outcome}}")], 0, 9, "ops"),
    panel(6, "Dead-lettered (15 min)", [(
        "sum by (consumer, topic) (increase(portevoix_events_consumed_total{outcome=\"dead_lettered\"}[15m]))",
        "{{consumer}} ← {{topic}}")], 8, 9),
    panel(7, "Outbox backlog and oldest age", [
        ("sum by (instance) (portevoix_outbox_backlog_events)", "backlog {{instance}}"),
        ("max by (instance) (portevoix_outbox_oldest_age_seconds)", "age (s) {{instance}}")], 16, 9),
    panel(8, "Notifications by channel and outcome", [(
        "sum by (channel, outcome) (rate(portevoix_notifications_total[5m]))", "{{channel}} {{outcome}}")],
        0, 17, "ops"),
    panel(9, "Process memory", [("process_resident_memory_bytes", "{{instance}}")], 8, 17, "bytes"),
    panel(10, "Process CPU", [("rate(process_cpu_seconds_total[5m])", "{{instance}}")], 16, 17, "percentunit"),
    row(11, "KPIs", 25),
    panel(12, "Clicks (unique human) by subsidiary", [(
        "sum by (subsidiary) (portevoix_business_kpi{kpi=\"clicks_unique_human\", tenant=~\"$tenant\", "
        "subsidiary!=\"\"})", "{{subsidiary}}")], 0, 26),
    panel(13, "Shares by subsidiary", [(
        "sum by (subsidiary) (portevoix_business_kpi{kpi=\"shares\", tenant=~\"$tenant\", "
        "subsidiary!=\"\"})", "{{subsidiary}}")], 8, 26),
    panel(14, "Enrolments by subsidiary (all time)", [(
        "sum by (subsidiary) (portevoix_business_kpi{kpi=\"ambassadors_enrolled\", tenant=~\"$tenant\", "
        "subsidiary!=\"\"})", "{{subsidiary}}")], 16, 26),
]

DASHBOARD = {
    "uid": "portevoix", "title": "Portevoix", "tags": ["portevoix"], "schemaVersion": 39, "version": 1,
    "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "current": {}},
        {"name": "tenant", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": "label_values(tenant)", "includeAll": True, "multi": True, "current": {}},
    ]},
    "panels": PANELS,
}

if __name__ == "__main__":
    OUT.write_text(json.dumps(DASHBOARD, indent=2) + "\n")
    print(f"wrote {OUT}")
