"""Kafka stopped and restarted under clicks: every redirect answered is a click that reaches the
topic once Kafka is back (the click and its event are committed to PostgreSQL first), and so is
an engagement webhook accepted while Kafka is down (202: stored with its webhook-id, published
by the outbox when Kafka is back; the sender's retry is answered duplicate).

This test stops and restarts the local broker of this run (deploy.local, PORTEVOIX_RUN_DIR); with
an external or containerised broker it is skipped. It always leaves the broker up."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest

from deploy.local import kafka as local_kafka
from services.tracking.main import TrackingSettings, create_app
from shared.topics import ENGAGEMENTS
from tests.integration.test_tracking_slice import BROWSER, notify
from tests.integration.test_tracking_webhooks import batch, event, learnt, new_source, signed
from tests.support import header, new_tenant, read_topic, running, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def local_broker(kafka_bootstrap: str) -> Iterator[local_kafka.KafkaConfig]:
    config = local_kafka.KafkaConfig.from_env()
    if config.bootstrap != kafka_bootstrap or local_kafka.running_pid(config) is None:
        pytest.skip("the broker is not this run's local one: it cannot be stopped from here")
    try:
        yield config
    finally:
        local_kafka.up(config)  # whatever happened, the following tests get their broker back


async def test_clicks_during_a_broker_outage_are_all_delivered_after_it(
        local_broker: local_kafka.KafkaConfig, kafka_bootstrap: str, database_url: str) -> None:
    settings = settings_for(TrackingSettings, kafka_bootstrap, database_url, kafka_send_timeout_seconds=2.0)
    tenant = new_tenant()
    async with running(create_app(settings)) as client:
        content_id, _, code, _ = await notify(kafka_bootstrap, tenant, "https://example.com/outage", None)
        await learnt(database_url, code)
        source, secret = await new_source(client, tenant)
        answered: list[int] = []
        clicking = True

        async def click_all_along() -> None:
            while clicking:
                answered.append((await client.get(f"/r/{code}", headers=BROWSER)).status_code)
                await asyncio.sleep(0.01)

        clicker = asyncio.create_task(click_all_along())
        try:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(local_kafka.down, local_broker)
            during = [(await client.get(f"/r/{code}", headers=BROWSER)).status_code for _ in range(20)]
            body = batch(event(content_id, "reaction", count=5))
            headers = signed(secret, body)
            during_outage = await client.post(f"/v1/webhooks/{source}", content=body, headers=headers)
            await asyncio.to_thread(local_kafka.up, local_broker)
            await asyncio.sleep(0.5)
        finally:
            clicking = False
            with contextlib.suppress(Exception):
                await clicker
        # A connector that did not get the answer retries with the same webhook-id.
        retried = await client.post(f"/v1/webhooks/{source}", content=body, headers=headers)

        assert during == [302] * 20  # the redirect does not wait for Kafka
        assert during_outage.status_code == 202, during_outage.text  # durable in PostgreSQL
        assert during_outage.json()["duplicate"] is False
        assert (retried.status_code, retried.json()["duplicate"]) == (202, True)
        assert set(answered) == {302}
        redirects = len(answered) + len(during)

        records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                                   expect=redirects + 1, timeout=120, settle=2.0)
    clicks = {header(r, "ce_id") for r in records if json.loads(r.value)["kind"] == "click"}
    reactions = {header(r, "ce_id") for r in records if json.loads(r.value)["kind"] == "reaction"}
    assert len(clicks) == redirects  # every answered click, each once (a republished copy has the same id)
    assert len(reactions) == 1
