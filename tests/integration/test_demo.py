"""The demo's story (``deploy.demo.flow``) with a small group, the four services in-process on
the real broker and database: every KPI reporting shows equals what the demo sent, although a
share, a webhook call and a Kafka record were each delivered twice; and the report renders."""

from __future__ import annotations

import contextlib

import pytest

from deploy.demo import flow, report
from deploy.demo.api import Api
from deploy.demo.console import Console
from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from tests.support import JWT_SECRET, new_tenant, running, settings_for

pytestmark = pytest.mark.integration


async def test_the_demo_counts_exactly_what_it_sent(kafka_bootstrap, database_url):
    # Every simulated browser and the identity provider call from one address: not rate limited.
    s = lambda cls: settings_for(cls, kafka_bootstrap, database_url,  # noqa: E731
                                 rate_limit_exempt_clients=["127.0.0.1", "::1"])
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(running(app(s(settings)))) for app, settings in (
            (content_app, ContentSettings), (distribution_app, DistributionSettings),
            (tracking_app, TrackingSettings), (reporting_app, ReportingSettings))]
        api = Api(*clients, kafka_bootstrap=kafka_bootstrap, jwt_secret=JWT_SECRET, tenant=new_tenant())
        outcome = await flow.run(api, Console(), employees=150, timeout=60)

    checks = {c.kpi: c for c in outcome.results.checks}
    assert {"enrolled_ambassadors", "notifications_sent", "shares", "clicks_total", "clicks_unique_human",
            "reactions", "comments", "impressions"} <= set(checks)
    assert all(checks[k].sent > 0 for k in ("shares", "clicks_total", "clicks_unique_human", "impressions"))
    assert checks["clicks_unique_human"].sent < checks["clicks_total"].sent  # repeats and bots were in it
    assert [c for c in outcome.results.checks if not c.exact] == []
    assert len(outcome.tally.notes) == 3  # the share, the webhook call and the Kafka record sent twice
    assert {row["code"] for row in outcome.results.subsidiaries} == {"ACME-FR", "ACME-DE", "ACME-UK", "ACME-ES",
                                                                      "ACME-US"}
    assert sum(row["headcount"] for row in outcome.results.subsidiaries) == 150
    text = report.render(outcome, {"reporting": "http://127.0.0.1:8004"}, kafka_bootstrap, "postgresql://…", "logs")
    assert "Verdict: every KPI counted exactly once" in text
