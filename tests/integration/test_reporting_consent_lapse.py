"""Reporting reads a consent lapse and its renewal (``ambassador.updated`` with ``change``) as what
they are: the same ambassador, not enrolled while the lapse lasts, and neither a withdrawal nor
a new enrolment. Against the real Kafka and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from services.reporting.main import create_app
from shared import topics
from shared.events import AmbassadorEnrolled, AmbassadorUpdated, Network, ProfileChange
from tests.integration.test_reporting_kpis import at, event, kpis, send, settings
from tests.support import eventually, new_tenant, running, token

pytestmark = pytest.mark.integration


async def test_a_lapse_and_its_renewal_are_neither_a_withdrawal_nor_an_enrolment(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    profile = {"ambassador_id": "a1", "subsidiary": "fr", "department": "mkt", "country": "FR", "language": "fr",
               "network_audience": {Network.linkedin: 1000}}
    history = [
        event(tenant, "ambassador.enrolled", "a1", AmbassadorEnrolled(
            **profile, effective_at=at("2025-05-01T00:00:00"))),
        event(tenant, "ambassador.updated", "a1", AmbassadorUpdated(
            **profile, change=ProfileChange.consent_lapsed, effective_at=at("2025-05-20T00:00:00"))),
        event(tenant, "ambassador.updated", "a1", AmbassadorUpdated(
            **profile, change=ProfileChange.consent_renewed, effective_at=at("2025-06-05T00:00:00"))),
    ]
    analyst = token(tenant, "analyst")
    name = f"reporting_lapse_{uuid.uuid4().hex[:8]}"
    async with running(create_app(settings(kafka_bootstrap, database_url), name=name)) as client:
        await send(kafka_bootstrap, topics.AMBASSADORS, history)

        async def june() -> dict[str, object] | None:
            values = await kpis(client, analyst, window="month", at="2025-06-15T00:00:00Z")
            return values if values.get("enrolled_ambassadors") == 1 else None

        # A fresh consumer group reads ambassadors.v1 from its start: all the suite wrote before.
        june_values = await eventually(june, timeout=120)
        may = await kpis(client, analyst, window="month", at="2025-05-15T00:00:00Z")
    assert (may["ambassadors_enrolled"], may.get("ambassadors_withdrawn", 0), may.get("enrolled_ambassadors", 0)) == (
        1, 0, 0)  # lapsed at the end of May: not enrolled then, and not withdrawn
    assert (june_values.get("ambassadors_enrolled", 0), june_values.get("ambassadors_withdrawn", 0)) == (0, 0)
