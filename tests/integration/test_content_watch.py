"""The industry watch against real feeds on loopback, the real database and broker: publishers'
formats (WordPress RSS 2.0, an Atom newsroom, RSS 1.0, ISO-8859-1) become suggestions, each story
once across sources (same link, near-identical title); polling is conditional (ETag); failing
feeds back off and are parked with their cause (not a feed, 410 Gone) while the others flow;
two pollers never poll one source twice; an editor turns a suggestion into a draft in one action."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.content.main import ContentSettings, create_app
from services.content.watch import handlers as watch
from shared import db
from tests.support import eventually, new_tenant, running, settings_for, token

pytestmark = pytest.mark.integration
FEEDS = Path(__file__).parent / "feeds"
TYPES = {".xml": "application/rss+xml", ".html": "text/html; charset=utf-8"}


class Publisher:
    """Feeds served on loopback as publishers serve them: ETag and 304, a feed that is gone (410)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.conditional: Counter[str] = Counter()
        publisher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                name = self.path.lstrip("/")
                publisher.hits[name] += 1
                if name == "gone.xml":
                    self.send_response(410)
                    self.end_headers()
                    return
                file = FEEDS / name
                if not file.is_file():
                    self.send_response(404)
                    self.end_headers()
                    return
                etag = f'"{file.stat().st_mtime_ns}"'
                if self.headers.get("If-None-Match") == etag:
                    publisher.conditional[name] += 1
                    self.send_response(304)
                    self.end_headers()
                    return
                body = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", TYPES[file.suffix])
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@contextlib.contextmanager
def publishing() -> Iterator[Publisher]:
    """A publisher serving on loopback (in a thread) until the block ends."""
    served = Publisher()
    threading.Thread(target=served.server.serve_forever, daemon=True).start()
    try:
        yield served
    finally:
        served.server.shutdown()


@pytest.fixture(scope="module")
def publisher() -> Iterator[Publisher]:
    with publishing() as served:
        yield served


def content_settings(kafka_bootstrap: str, database_url: str, **overrides: Any) -> ContentSettings:
    return settings_for(ContentSettings, kafka_bootstrap, database_url, watch_allow_private_addresses=True,
                        watch_max_failures=2, watch_poll_interval_seconds=3600, **overrides)


def poll_settings(**overrides: Any) -> watch.PollSettings:
    return watch.PollSettings(**{"interval": timedelta(hours=1), "max_failures": 2, "timeout": 5,
                                 "max_bytes": 1 << 20, "allow_private_addresses": True, **overrides})


async def watched(client: httpx.AsyncClient, editor: dict[str, str], publisher: Publisher, name: str,
                  language: str = "en", **more: Any) -> dict[str, Any]:
    response = await client.post("/v1/watch/sources", headers=editor, json={
        "url": publisher.url(name), "name": name, "language": language, "tags": ["watch"], **more})
    assert response.status_code == 201, response.text
    return response.json()


async def sources_of(client: httpx.AsyncClient, editor: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (await client.get("/v1/watch/sources", headers=editor)).json()}


async def test_publishers_feeds_become_suggestions_each_story_once_and_broken_ones_are_parked(
        kafka_bootstrap: str, database_url: str, publisher: Publisher) -> None:
    tenant = new_tenant()
    editor = token(tenant, "editor", subject="eva")
    app = create_app(content_settings(kafka_bootstrap, database_url, watch_tick_seconds=0.2))
    async with running(app) as client:
        for name in ("wordpress-rss2.xml", "newsroom-atom.xml", "trade-press-rdf.xml", "regional-latin1.xml",
                     "truncated.xml", "not-a-feed.html", "gone.xml"):
            await watched(client, editor, publisher, name)
            if name == "wordpress-rss2.xml":  # first in the queue: the others find its stories there
                await eventually(lambda: _health(client, editor, "wordpress-rss2.xml", "ok"), timeout=30)

        async def settled() -> bool:
            health = {n: s["health"] for n, s in (await sources_of(client, editor)).items()}
            return health["gone.xml"] == "parked" and all(
                h == "ok" for n, h in health.items() if n not in ("not-a-feed.html", "gone.xml"))
        await eventually(settled, timeout=30)
        queue = (await client.get("/v1/watch/suggestions", headers=editor, params={"limit": 500})).json()
        sources = await sources_of(client, editor)

    titles = sorted(s["title"] for s in queue)
    assert titles == sorted([
        "Our new plant in Lyon – 300 jobs by 2027",          # WordPress; the RDF title and Latin-1 link are it
        "Five lessons from our zero-downtime migration",
        "Acme rejoint l’initiative Industrie bas carbone",  # HTML title, entities, markup gone
        "Résultats du troisième trimestre 2026",
        "La robotique collaborative en 2027",
        "Fête des lumières : le programme",                 # ISO-8859-1 decoded
        "Read before the cut",                              # the readable part of a truncated feed
    ])
    lyon = next(s for s in queue if s["title"].startswith("Our new plant"))
    assert lyon["image_url"].endswith("lyon-plant-1200x630.jpg") and "<" not in lyon["summary"]
    assert set(lyon["also_from"]) == {sources["trade-press-rdf.xml"]["id"], sources["regional-latin1.xml"]["id"]}
    carbon = next(s for s in queue if "carbone" in s["title"])
    assert carbon["image_url"].endswith("bas-carbone.png") and carbon["published_at"].startswith("2026-12-01T09:30")
    assert {s["language"] for s in queue} == {"en"} and all(s["tags"] == ["watch"] for s in queue)

    broken = sources["not-a-feed.html"]
    assert broken["health"] in ("failing", "parked") and "not an RSS or Atom feed" in broken["last_error"]
    assert "410" in sources["gone.xml"]["last_error"] and publisher.hits["gone.xml"] == 1  # parked at once


async def _health(client: httpx.AsyncClient, editor: dict[str, str], name: str, wanted: str) -> bool:
    return (await sources_of(client, editor))[name]["health"] == wanted


async def test_polling_is_conditional_and_a_parked_source_resumes(
        kafka_bootstrap: str, database_url: str, publisher: Publisher) -> None:
    tenant = new_tenant()
    editor = token(tenant, "editor")
    async with running(create_app(content_settings(kafka_bootstrap, database_url, watch_tick_seconds=0.2))) as client:
        source = await watched(client, editor, publisher, "newsroom-atom.xml")
        await eventually(lambda: _health(client, editor, "newsroom-atom.xml", "ok"), timeout=30)
        before = publisher.conditional["newsroom-atom.xml"]
        resumed = await client.patch(f"/v1/watch/sources/{source['id']}", headers=editor, json={"resume": True})
        assert resumed.status_code == 200, resumed.text

        async def asked_again() -> bool:
            return publisher.conditional["newsroom-atom.xml"] > before
        await eventually(asked_again, timeout=30)  # If-None-Match sent, 304 answered
        queue = (await client.get("/v1/watch/suggestions", headers=editor)).json()
        assert len(queue) == 2  # nothing twice
        assert (await sources_of(client, editor))["newsroom-atom.xml"]["entries_seen"] == 2


async def test_two_pollers_never_poll_one_source_twice(
        kafka_bootstrap: str, database_url: str, publisher: Publisher) -> None:
    """Two replicas' pollers at the same moment: each due source is fetched by one of them."""
    tenant = new_tenant()
    editor = token(tenant, "editor")
    app = create_app(content_settings(kafka_bootstrap, database_url, watch_tick_seconds=3600))
    async with running(app) as client:
        names = ["wordpress-rss2.xml", "newsroom-atom.xml", "trade-press-rdf.xml", "regional-latin1.xml"]
        ids = [(await watched(client, editor, publisher, name, subsidiary=f"S{i}"))["id"]
               for i, name in enumerate(names)]
        before = Counter(publisher.hits)
        pools = [await db.create_pool(database_url, "content") for _ in range(2)]
        try:
            async with httpx.AsyncClient() as one, httpx.AsyncClient() as two:
                polled = await asyncio.gather(*(watch.poll_due(pool, http, poll_settings())
                                                for pool, http in zip(pools, (one, two), strict=True)))
        finally:
            for pool in pools:
                await pool.close()
        assert sum(polled) >= len(ids)  # other tests' sources may be due too: never fewer than ours
        assert all(publisher.hits[name] - before[name] == 1 for name in names), publisher.hits - before


async def test_an_editor_turns_a_suggestion_into_a_draft_once_and_only_in_their_scope(
        kafka_bootstrap: str, database_url: str, publisher: Publisher) -> None:
    tenant = new_tenant()
    editor, lyon_editor = token(tenant, "editor", subject="eva"), token(tenant, "editor", subsidiary="ACME-LY")
    async with running(create_app(content_settings(kafka_bootstrap, database_url, watch_tick_seconds=0.2))) as client:
        await watched(client, editor, publisher, "wordpress-rss2.xml")
        await eventually(lambda: _health(client, editor, "wordpress-rss2.xml", "ok"), timeout=30)
        queue = (await client.get("/v1/watch/suggestions", headers=editor)).json()
        lyon = next(s for s in queue if "Lyon" in s["title"])
        adopt = f"/v1/watch/suggestions/{lyon['id']}/adopt"
        body = {"angle": "300 jobs in Lyon: proud to be part of it! #employee", "networks": ["linkedin", "x"],
                "image_alt": "The new plant's glass front at dusk"}

        assert (await client.post(adopt, headers=lyon_editor, json=body)).status_code == 404  # a group suggestion
        assert (await client.post(adopt, headers=token(new_tenant(), "editor"), json=body)).status_code == 404
        assert (await client.post(adopt, headers=token(tenant, "approver"), json=body)).status_code == 403
        assert (await client.post(adopt, headers=editor, json={**body, "angle": ""})).status_code == 422
        first, second = await asyncio.gather(client.post(adopt, headers=editor, json=body),
                                             client.post(adopt, headers=editor, json=body))
        assert sorted([first.status_code, second.status_code]) == [201, 409]
        draft = (first if first.status_code == 201 else second).json()
        assert (draft["title"], draft["state"], draft["url"]) == (lyon["title"], "draft", lyon["link"])
        assert draft["image_url"] == lyon["image_url"] and draft["summary"] == lyon["summary"]
        assert draft["image_alt"] == "The new plant's glass front at dusk"
        assert sorted(t["network"] for t in draft["share_texts"]) == ["linkedin", "x"]
        got = await client.get(f"/v1/contents/{draft['id']}", headers=editor)
        assert got.status_code == 200 and got.json()["tags"] == ["watch"]

        adopted = (await client.get("/v1/watch/suggestions", headers=editor, params={"state": "adopted"})).json()
        assert [(s["id"], s["content_id"], s["decided_by"]) for s in adopted] == [(lyon["id"], draft["id"], "eva")]
        other = next(s for s in queue if s["id"] != lyon["id"])
        dismissed = await client.post(f"/v1/watch/suggestions/{other['id']}/dismiss", headers=editor)
        assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
        assert (await client.get("/v1/watch/suggestions", headers=editor)).json() == []


async def test_a_feed_on_an_internal_address_is_refused_unless_allowed(
        kafka_bootstrap: str, database_url: str, publisher: Publisher) -> None:
    tenant = new_tenant()
    editor = token(tenant, "editor")
    settings = content_settings(kafka_bootstrap, database_url, watch_tick_seconds=3600)
    async with running(create_app(settings)) as client:
        source = await watched(client, editor, publisher, "newsroom-atom.xml")
        pool = client._transport.app.state.service.pool  # type: ignore[attr-defined]
        hits = publisher.hits["newsroom-atom.xml"]
        async with httpx.AsyncClient() as http:
            with contextlib.suppress(Exception):
                await watch.poll_one(pool, http, poll_settings(allow_private_addresses=False),
                                     {**source, "tenant": tenant, "etag": None, "last_modified": None})
        refused = (await sources_of(client, editor))["newsroom-atom.xml"]
        assert "internal address" in refused["last_error"] and publisher.hits["newsroom-atom.xml"] == hits
