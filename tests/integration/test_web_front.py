"""The web front on the real broker and database, in front of real content and tracking
services: its pages, the demo login (off by default), the same-origin proxy (status, headers and
body passed through, refusals kept), and the training kit with its read confirmation gating
the first share."""

from __future__ import annotations

import contextlib
import socket

import pytest

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from tests.browser.conftest import _serving
from tests.support import new_tenant, running, settings_for, token

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def front(kafka_bootstrap: str, database_url: str, **overrides):
    s = lambda cls, **kw: settings_for(cls, kafka_bootstrap, database_url, **kw)  # noqa: E731
    async with contextlib.AsyncExitStack() as stack:
        content = await stack.enter_async_context(_serving(content_app(s(ContentSettings)), _closed_port()))
        tracking = await stack.enter_async_context(_serving(tracking_app(s(TrackingSettings)), _closed_port()))
        nowhere = f"http://127.0.0.1:{_closed_port()}"
        web = web_app(s(WebSettings, content_base_url=content, tracking_base_url=tracking,
                        distribution_base_url=nowhere, reporting_base_url=nowhere, **overrides))
        yield await stack.enter_async_context(running(web))


async def test_the_pages_are_served_without_anything_from_outside(kafka_bootstrap, database_url):
    async with front(kafka_bootstrap, database_url) as web:
        for page in ("/", "/studio", "/dashboard", "/watch", "/admin", "/login"):
            r = await web.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert '<html lang="en">' in r.text and 'name="viewport"' in r.text
            assert "https://" not in r.text.split("<body>")[0]  # no CDN: scripts and styles are ours
        script = await web.get("/static/js/hub.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await web.get("/api/web/config")).json() == {"local_login": False, "oidc": False,
                                                              "kpi_poll_seconds": 5.0}
        favicon = await web.get("/favicon.ico")
        assert favicon.status_code == 200 and favicon.headers["content-type"].startswith("image/")


async def test_me_says_who_is_signed_in_where_he_lands_and_which_pages_he_may_open(kafka_bootstrap, database_url):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url) as web:
        assert (await web.get("/api/web/me")).status_code == 401
        me = (await web.get("/api/web/me", headers={**token(tenant, "editor", subject="ed-1", subsidiary="SUB-A"),
                                                     "Accept-Language": "de-DE,de;q=0.9"})).json()
    assert {k: me[k] for k in ("subject", "tenant", "roles", "subsidiary", "language", "landing")} == \
        {"subject": "ed-1", "tenant": tenant, "roles": ["editor"], "subsidiary": "SUB-A", "language": "de",
         "landing": "/studio"}
    assert [(p["page"], p["path"], p["allowed"]) for p in me["pages"]] == \
        [("hub", "/", False), ("studio", "/studio", True), ("watch", "/watch", True), ("dashboard", "/dashboard", True),
         ("admin", "/admin", False)]
    assert me["pages"][0]["roles"] == ["employee"]


async def test_the_demo_login_is_off_unless_enabled_and_claims_known_roles_only(kafka_bootstrap, database_url):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url) as web:
        off = await web.post("/login", json={"tenant": tenant, "subject": "u1", "roles": ["admin"]})
        assert off.status_code == 404 and "identity provider" in off.json()["detail"]
    async with front(kafka_bootstrap, database_url, web_local_login=True) as web:
        refused = await web.post("/login", json={"tenant": tenant, "subject": "u1", "roles": ["editor", "root"]})
        assert refused.status_code == 422 and refused.json()["detail"][0]["msg"] == "unknown roles: root"
        invalid = await web.post("/login", json={"tenant": "bad tenant!", "subject": "u1", "roles": ["editor"]})
        assert invalid.status_code == 422
        signed = await web.post("/login", json={"tenant": tenant, "subject": "u1", "roles": ["editor"]})
        assert signed.status_code == 200 and signed.json()["landing"] == "/studio"
        # A session, not a token: the browser gets an HttpOnly, Secure, SameSite=Lax cookie and a CSRF token.
        assert "token" not in signed.json() and "eyJ" not in signed.text
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("__Host-portevoix-session=") and "HttpOnly" in cookie and "Secure" in cookie
        assert "SameSite=lax" in cookie and "Path=/" in cookie
        session = {"Cookie": cookie.split(";")[0]}
        # The session's bearer goes to the services: the content service answers the editor.
        listed = await web.get("/api/content/v1/contents", headers=session)
        assert listed.status_code == 200 and listed.json() == {"items": []}
        foreign = await web.post("/login", json={"tenant": tenant, "subject": "u1", "roles": ["editor"]},
                                 headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403  # login CSRF


async def test_the_proxy_passes_status_headers_and_refusals_through(kafka_bootstrap, database_url):
    tenant = new_tenant()
    editor = token(tenant, "editor", subject="ed")
    async with front(kafka_bootstrap, database_url) as web:
        assert (await web.get("/api/content/v1/contents")).status_code == 401  # the service decides, not the front
        assert (await web.get("/api/content/v1/contents", headers=token(tenant, "employee"))).status_code == 403
        draft = {"title": "Offer", "url": "https://acme.example/o", "language": "en",
                 "share_texts": [{"network": "linkedin", "language": "en", "text": "A cheap offer"}]}
        charter = await web.put("/api/content/v1/admin/charter", json={"forbidden_terms": ["cheap"]},
                                headers=token(tenant, "admin"))
        assert charter.status_code == 200
        checked = await web.post("/api/content/v1/contents/check", json=draft, headers=editor)
        assert [(v["field"], v["position"], v["rule"]) for v in checked.json()["violations"]] == \
            [("share_texts[0].text", 2, "forbidden_terms")]
        invalid = await web.post("/api/content/v1/contents", json={**draft, "url": "not a url"}, headers=editor)
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "url"]
        created = await web.post("/api/content/v1/contents", json={**draft, "share_texts": []}, headers=editor)
        assert created.status_code == 201 and created.headers["content-type"] == "application/json"
        self_approval = await web.post(f"/api/content/v1/contents/{created.json()['id']}/publish", headers=editor)
        assert self_approval.status_code == 403  # role (and four eyes) kept by the service behind
        assert (await web.get("/api/nothing/v1/x", headers=editor)).status_code == 404
        down = await web.get("/api/reporting/v1/kpis", headers=editor)
        assert down.status_code == 502 and down.json()["detail"] == "the reporting service is unavailable"


async def test_the_training_kit_is_written_in_the_studio_and_read_before_a_first_share(kafka_bootstrap, database_url):
    tenant = new_tenant()
    ambassador = token(tenant, "employee", subject="E1")
    async with front(kafka_bootstrap, database_url) as web:
        default = (await web.get("/api/web/training", params={"lang": "fr"}, headers=ambassador)).json()
        assert default["version"] == 0 and not default["written_in_studio"] and default["language"] == "fr"
        assert default["text"].startswith("Bien partager") and default["read_version"] is None

        gated = await web.post("/api/tracking/v1/shares", json={"link_code": "abc"}, headers=ambassador)
        assert gated.status_code == 409 and gated.json()["detail"]["reason"] == "training_not_read"

        kit = {"texts": {"en": "Say it in your words.", "fr": "Dites-le avec vos mots."}}
        assert (await web.put("/api/web/training", json=kit, headers=ambassador)).status_code == 403
        scoped = token(tenant, "editor", subject="ed", subsidiary="SUB-A")
        assert (await web.put("/api/web/training", json=kit, headers=scoped)).status_code == 403
        bad = await web.put("/api/web/training", json={"texts": {"english": "x"}}, headers=token(tenant, "editor"))
        assert bad.status_code == 422
        written = await web.put("/api/web/training", json=kit, headers=token(tenant, "editor", subject="ed"))
        assert written.status_code == 200 and written.json()["version"] == 1

        read = await web.post("/api/web/training/read", json={"version": 1}, headers=ambassador)
        assert read.status_code == 200 and read.json()["version"] == 1
        mine = (await web.get("/api/web/training", headers={**ambassador, "Accept-Language": "en-GB"})).json()
        assert (mine["text"], mine["updated_by"], mine["read_version"]) == ("Say it in your words.", "ed", 1)
        other = (await web.get("/api/web/training", headers=token(new_tenant(), "employee", subject="E1"))).json()
        assert other["version"] == 0 and other["read_version"] is None  # another tenant's reader, another kit

        # Read: the share confirmation goes through to tracking, which judges the link code.
        passed = await web.post("/api/tracking/v1/shares", json={"link_code": "abcdefgh"}, headers=ambassador)
        assert passed.status_code == 404 and passed.json()["detail"]["reason"] == "unknown_link"
