"""The fault suite in small (the whole one is `python -m deploy.reliability`): the four services as
processes under a small steady load through their public APIs, reporting killed with SIGKILL
while it consumes and started again; then, reconciled from outside with plain Kafka and
PostgreSQL clients and the KPI API, every accepted input is in Kafka exactly once, every KPI is
what the inputs imply, no consumer group lags and no notification was received twice."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from deploy.reliability.harness import Services
from deploy.reliability.load import Ledger, Load, Rates, Tenant
from deploy.reliability.receivers import SmtpReceiver, WebhookReceiver
from deploy.reliability.suite import Fault, World, kill, run_fault
from tests.support import new_tenant

pytestmark = pytest.mark.integration


async def test_kill_9_of_reporting_mid_batch_loses_and_doubles_nothing(kafka_bootstrap, database_url):
    webhooks, smtp = WebhookReceiver(), SmtpReceiver()
    await webhooks.start()
    smtp.up()
    logs = Path(tempfile.mkdtemp(prefix="portevoix-test-faults-"))
    services = Services(kafka_bootstrap, database_url, logs,
                        extra_env={"PORTEVOIX_SMTP_HOST": "127.0.0.1", "PORTEVOIX_SMTP_PORT": str(smtp.port)})
    tenant, ledger = Tenant(new_tenant()), Ledger()
    load = Load(services, ledger, tenant, Rates(clicks=10, webhooks=1, hr_events=2, enrolments=0.5, contents=0.3))
    fault = Fault("kill-reporting", "kill -9 reporting, restart", kill("reporting"))
    try:
        await services.start_all()
        await load.open()
        await load.set_up([fault.name], webhooks.url, ambassadors=8, webhook_channel=2, email_channel=2)
        world = World(services, load, ledger, tenant, webhooks, smtp, outage=0)
        row = await run_fault(world, fault, before=3, after=2, timeout=45)
    finally:
        await load.close()
        services.stop_all()
        smtp.down()
        await webhooks.stop()

    assert row.accepted > 50, row  # the load ran through the fault
    assert row.problems == [], row.problems  # KPIs, lag, outboxes, deliveries all as they must be
    assert (row.lost, row.duplicated) == (0, 0), row
    assert row.recovery_seconds is not None
    assert row.details["kpis"]["clicks_total"] >= sum(ledger.clicks.values()) > 0
