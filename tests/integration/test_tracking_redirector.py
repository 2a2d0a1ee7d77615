"""The redirector's edges against the real broker and database: HEAD from link-preview tools,
and codes crafted to bend the redirect or the response headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.tracking.main import TrackingSettings, create_app
from shared.topics import ENGAGEMENTS
from tests.integration.test_tracking_slice import BROWSER, notify
from tests.integration.test_tracking_webhooks import learnt
from tests.support import header, new_tenant, read_topic, running, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings_for(TrackingSettings, kafka_bootstrap, database_url))) as client:
        yield client


async def test_head_answers_like_get_and_counts_as_a_preview(client: httpx.AsyncClient, kafka_bootstrap: str,
                                                             database_url: str) -> None:
    tenant = new_tenant()
    _, _, code, _ = await notify(kafka_bootstrap, tenant, "https://example.com/head?x=1", None)
    await learnt(database_url, code)
    head = await client.head(f"/r/{code}", headers=BROWSER)
    get = await client.get(f"/r/{code}", headers={"User-Agent": BROWSER["User-Agent"] + " other"})
    assert head.status_code == get.status_code == 302
    assert head.headers["location"] == get.headers["location"]
    assert (await client.head("/r/unknownCode123")).status_code == 404
    records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=2, settle=1.0)
    assert [json.loads(r.value)["human"] for r in records] == [False, True]


@pytest.mark.parametrize("path", [
    "/r/javascript%3Aalert(1)",
    "/r/https%3A%2F%2Fevil.example",
    "/r/%5C%5Cevil.example",
    "/r/%2F%2Fevil.example%2F",
    "/r/abcdef%0D%0ASet-Cookie:%20a=b",
    "/r/abcdef%E2%80%A8x",
    "/r/abcdef?url=https://evil.example",
    "/r/..%2F..%2Fadmin",
])
async def test_crafted_codes_never_redirect_nor_inject_headers(client: httpx.AsyncClient, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(method, path, headers=BROWSER)
        assert response.status_code == 404, (method, path)
        assert "location" not in response.headers and "set-cookie" not in response.headers


async def test_concurrent_clicks_of_one_client_are_all_recorded_and_one_is_unique(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    """Clicks arriving together share one transaction (group commit): each is still answered
    only once recorded, and the unique-click decision holds within the group."""
    tenant = new_tenant()
    _, _, code, _ = await notify(kafka_bootstrap, tenant, "https://example.com/together", None)
    await learnt(database_url, code)
    answers = await asyncio.gather(*(client.get(f"/r/{code}", headers=BROWSER) for _ in range(30)))
    assert [a.status_code for a in answers] == [302] * 30
    records = await read_topic(kafka_bootstrap, ENGAGEMENTS.name, lambda r: header(r, "ce_tenantid") == tenant,
                               expect=30, settle=1.0)
    data = [json.loads(r.value) for r in records]
    assert len({header(r, "ce_id") for r in records}) == 30
    assert sum(d["unique"] for d in data) == 1 and all(d["human"] for d in data)
