"""Signing in to the web front with a real OpenID Connect provider (mock-oauth2-server, started
once per session), at the HTTP level: the authorization code flow with PKCE, the refusals (state,
nonce, PKCE, the provider's errors, tokens without a tenant), the session cookie's flags, CSRF,
the refresh before expiry, the RP-initiated logout; and the same IdP token accepted by a service
behind the proxy, through the one claim mapping of ``shared.auth`` (a Keycloak-style
``realm_access.roles`` and Okta-style ``groups``, mapped to Portevoix roles)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from tests.browser.conftest import _free_port, _serving
from tests.support import new_tenant, running, settings_for

pytestmark = pytest.mark.integration
FRONT = "https://portevoix.example"  # what the browser sees (the test's client speaks to the app directly)
CLIENT_ID = "portevoix"  # the provider puts it in the ID token's aud; the services expect it in the access token's
CLAIMS = {"auth_roles_claims": ["realm_access.roles", "groups"],
          "auth_role_mapping": {"pv-editors": ["editor"], "pv-ambassadors": ["employee"], "pv-analysts": "analyst"}}


def idp_settings(issuer: str) -> dict:
    return {"jwt_jwks_url": f"{issuer}/jwks", "jwt_issuer": issuer, "jwt_audience": CLIENT_ID, **CLAIMS}


@contextlib.asynccontextmanager
async def front(kafka_bootstrap: str, database_url: str, issuer: str, **overrides):
    """The content service and the web front, both reading the provider's tokens the same way."""
    s = lambda cls, **kw: settings_for(cls, kafka_bootstrap, database_url, **idp_settings(issuer), **kw)  # noqa: E731
    async with contextlib.AsyncExitStack() as stack:
        content = await stack.enter_async_context(_serving(content_app(s(ContentSettings)), _free_port()))
        web = web_app(s(WebSettings, **{"web_public_url": FRONT, "web_oidc_issuer": issuer,
                                        "web_oidc_client_id": CLIENT_ID, "web_oidc_client_secret": "front-secret",
                                        "content_base_url": content, **overrides}))
        await stack.enter_async_context(running(web))
        transport = httpx.ASGITransport(app=web)
        yield await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=FRONT))


async def authorize(web: httpx.AsyncClient, next_page: str | None = None) -> str:
    started = await web.get("/auth/login", params={"next": next_page} if next_page else None)
    assert started.status_code == 302, started.text
    return started.headers["location"]


async def at_provider(url: str, user: str, claims: dict) -> str:
    """The person signs in on the provider's page; the provider sends the browser back: that URL."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.post(url, data={"username": user, "claims": json.dumps(claims)})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def person(tenant: str, *groups: str, **extra) -> dict:
    return {"tenant": tenant, "aud": [CLIENT_ID], "realm_access": {"roles": ["offline_access", *groups]}, **extra}


async def sign_in(web: httpx.AsyncClient, tenant: str, *groups: str, user: str = "E1",
                  next_page: str | None = None) -> httpx.Response:
    back = await at_provider(await authorize(web, next_page), user, person(tenant, *groups))
    return await web.get(back)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def session_row(database_url: str, tenant: str) -> dict | None:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM web.sessions WHERE tenant = $1", tenant)
        return dict(row) if row else None
    finally:
        await conn.close()


async def test_code_flow_with_pkce_opens_a_cookie_session_whose_bearer_the_services_accept(
        kafka_bootstrap, database_url, oidc_provider):
    tenant, issuer = new_tenant(), oidc_provider.issuer()
    async with front(kafka_bootstrap, database_url, issuer) as web:
        url = await authorize(web, "/studio?tab=calendar")
        asked = query(url)
        assert url.startswith(f"{issuer}/authorize?")
        assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
        assert asked["redirect_uri"] == f"{FRONT}/auth/callback" and "openid" in asked["scope"].split()
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
        assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32 and asked["state"] != asked["nonce"]

        back = await at_provider(url, "E1", person(tenant, "pv-editors", "pv-ambassadors"))
        signed = await web.get(back)
        assert signed.status_code == 303 and signed.headers["location"] == "/studio?tab=calendar"
        cookies = signed.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("__Host-portevoix-session="))
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
            assert flag in session_cookie
        assert "Domain" not in session_cookie
        assert any(c.startswith("__Host-portevoix-sign-in=") and "Max-Age=0" in c for c in cookies)

        me = await web.get("/auth/session")
        assert me.status_code == 200
        info = me.json()
        assert (info["subject"], info["tenant"], info["roles"], info["kind"]) == \
            ("E1", tenant, ["editor", "employee"], "oidc")
        assert "eyJ" not in me.text and "eyJ" not in signed.text  # no token reaches the browser
        row = await session_row(database_url, tenant)
        assert row["access_token"].startswith("eyJ") and row["refresh_token"] and row["id_token"]
        assert web.cookies["__Host-portevoix-session"] not in json.dumps(row, default=str)  # only its hash

        # The proxy sends the session's bearer; the content service reads the IdP's roles the same way.
        assert (await web.get("/api/content/v1/contents")).status_code == 200
        draft = {"title": "Hello", "url": "https://acme.example/h", "language": "en", "share_texts": []}
        bare = await web.post("/api/content/v1/contents", json=draft, headers={"Origin": FRONT})
        assert bare.status_code == 403 and bare.json()["detail"]["reason"] == "csrf"
        wrong = await web.post("/api/content/v1/contents", json=draft,
                               headers={"Origin": FRONT, "X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        foreign = await web.post("/api/content/v1/contents", json=draft,
                                 headers={"Origin": "https://evil.example", "X-CSRF-Token": info["csrf_token"]})
        assert foreign.status_code == 403
        created = await web.post("/api/content/v1/contents", json=draft,
                                 headers={"Origin": FRONT, "X-CSRF-Token": info["csrf_token"]})
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == "E1"
        # The front's own routes too: an editor (group level) writes the training kit.
        kit = await web.put("/api/web/training", json={"texts": {"en": "Be yourself."}},
                            headers={"X-CSRF-Token": info["csrf_token"]})
        assert kit.status_code == 200 and kit.json()["updated_by"] == "E1"


async def test_the_landing_page_follows_the_mapped_roles(kafka_bootstrap, database_url, oidc_provider):
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer()) as web:
        assert (await sign_in(web, new_tenant(), "pv-analysts")).headers["location"] == "/dashboard"
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer()) as web:
        assert (await sign_in(web, new_tenant(), "pv-ambassadors", next_page="//evil.example/x")) \
            .headers["location"] == "/"  # never another site


async def test_state_mismatch_replay_and_another_browser_are_refused(kafka_bootstrap, database_url, oidc_provider):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer()) as web:
        back = await at_provider(await authorize(web), "E1", person(tenant, "pv-editors"))
        code = query(back)["code"]
        forged = await web.get("/auth/callback", params={"code": code, "state": "not-the-state"})
        assert forged.status_code == 303 and forged.headers["location"] == "/login?error=state_mismatch"
        assert not any(c.startswith("__Host-portevoix-session=") for c in forged.headers.get_list("set-cookie"))
        # The sign-in was used up by the forged attempt: the real answer cannot be replayed either.
        assert (await web.get(back)).headers["location"] == "/login?error=state_mismatch"
        assert (await web.get("/auth/session")).status_code == 401
        assert await session_row(database_url, tenant) is None

        # An answer meant for another browser (no sign-in cookie here) is refused.
        back = await at_provider(await authorize(web), "E1", person(tenant, "pv-editors"))
        web.cookies.clear()
        assert (await web.get(back)).headers["location"] == "/login?error=state_mismatch"


async def test_nonce_mismatch_tampered_pkce_and_provider_errors_are_refused(kafka_bootstrap, database_url,
                                                                            oidc_provider):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer()) as web:
        url = await authorize(web)
        injected = url.replace(f"nonce={query(url)['nonce']}", "nonce=injected-nonce")
        back = await web.get(await at_provider(injected, "E1", person(tenant, "pv-editors")))
        assert back.headers["location"] == "/login?error=nonce_mismatch"

        url = await authorize(web)  # a code obtained for another code challenge: the verifier does not match
        other = url.replace(query(url)["code_challenge"], "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        back = await web.get(await at_provider(other, "E1", person(tenant, "pv-editors")))
        assert back.headers["location"] == "/login?error=token_refused"

        state = query(await authorize(web))["state"]
        denied = await web.get("/auth/callback", params={"error": "access_denied", "state": state})
        assert denied.headers["location"] == "/login?error=access_denied"
        odd = await web.get("/auth/callback", params={"error": "<script>", "state": "x"})
        assert odd.headers["location"] == "/login?error=failed"  # only known codes reach the page

        # A person without a tenant claim: the services would refuse the token, so no session.
        back = await at_provider(await authorize(web), "E1", {"aud": [CLIENT_ID], "groups": ["pv-editors"]})
        assert (await web.get(back)).headers["location"] == "/login?error=token_refused"
        assert (await web.get("/auth/session")).status_code == 401
        assert await session_row(database_url, tenant) is None


async def test_the_access_token_is_refreshed_before_it_expires_and_a_failed_refresh_ends_the_session(
        kafka_bootstrap, database_url, oidc_provider):
    tenant = new_tenant()
    # The provider's tokens live 120 s; refreshing 118 s before the end makes the next call refresh.
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer(),
                     web_session_refresh_margin_seconds=118) as web:
        await sign_in(web, tenant, "pv-editors")
        first = await session_row(database_url, tenant)
        await asyncio.sleep(2.5)
        calls = await asyncio.gather(*(web.get("/api/content/v1/contents") for _ in range(4)))
        assert [c.status_code for c in calls] == [200] * 4  # several calls at once: one refresh, all served
        second = await session_row(database_url, tenant)
        assert second["access_token"] != first["access_token"]
        assert second["access_expires_at"] > first["access_expires_at"]
        assert second["expires_at"] == first["expires_at"]  # a refresh never extends the session's end

        conn = await asyncpg.connect(database_url)
        try:  # the provider no longer honours the refresh token (revoked, or the person left)
            await conn.execute("UPDATE web.sessions SET refresh_token = 'revoked', "
                               "access_expires_at = now() - interval '1 second' WHERE tenant = $1", tenant)
        finally:
            await conn.close()
        ended = await web.get("/api/content/v1/contents")
        assert ended.status_code == 401 and ended.json()["detail"]["reason"] == "expired"
        assert await session_row(database_url, tenant) is None


async def test_logout_needs_the_csrf_token_and_ends_the_session_at_the_provider(kafka_bootstrap, database_url,
                                                                             oidc_provider):
    tenant, issuer = new_tenant(), oidc_provider.issuer()
    async with front(kafka_bootstrap, database_url, issuer) as web:
        await sign_in(web, tenant, "pv-ambassadors")
        csrf = (await web.get("/auth/session")).json()["csrf_token"]
        id_token = (await session_row(database_url, tenant))["id_token"]
        refused = await web.post("/auth/logout", headers={"Origin": FRONT})
        assert refused.status_code == 403 and await session_row(database_url, tenant) is not None

        out = await web.post("/auth/logout", headers={"Origin": FRONT, "X-CSRF-Token": csrf})
        assert out.status_code == 200
        redirect = out.json()["redirect"]
        asked = query(redirect)
        assert redirect.startswith(f"{issuer}/endsession?")
        assert asked["id_token_hint"] == id_token and asked["client_id"] == CLIENT_ID
        assert asked["post_logout_redirect_uri"] == f"{FRONT}/login?reason=logged_out"
        assert any(c.startswith("__Host-portevoix-session=") and "Max-Age=0" in c
                   for c in out.headers.get_list("set-cookie"))
        assert await session_row(database_url, tenant) is None
        async with httpx.AsyncClient() as browser:
            at_idp = await browser.get(redirect)
        assert at_idp.status_code == 302 and at_idp.headers["location"].startswith(f"{FRONT}/login?reason=logged_out")


async def test_the_demo_login_ends_in_the_same_session_and_plain_http_loopback_only_may_drop_secure(
        kafka_bootstrap, database_url, oidc_provider):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer(), web_local_login=True,
                     web_session_cookie_secure=False, web_public_url=None) as web:
        body = {"tenant": tenant, "subject": "E7", "roles": ["employee"]}
        remote = await web.post("/login", json=body)  # Host portevoix.example: Secure all the same
        assert remote.status_code == 200, remote.text
        assert "Secure" in remote.headers["set-cookie"]
        local = await web.post("/login", json=body, headers={"Host": "127.0.0.1:8005"})
        cookie = local.headers["set-cookie"]
        assert cookie.startswith("portevoix-session=") and "Secure" not in cookie and "HttpOnly" in cookie
        assert local.json()["kind"] == "local" and local.json()["landing"] == "/"
        # A pasted token: checked as the services check it, the reason said when refused.
        garbage = await web.post("/auth/token", json={"token": "a.b.c"})
        assert garbage.status_code == 401 and garbage.json()["detail"]["reason"] == "token_refused"
        assert garbage.json()["detail"]["message"]  # the verifier's reason, e.g. "Not enough segments"


async def test_a_provider_out_of_reach_at_refresh_time_ends_no_session(kafka_bootstrap, database_url, oidc_provider):
    tenant = new_tenant()
    async with front(kafka_bootstrap, database_url, oidc_provider.issuer(),
                     web_session_refresh_margin_seconds=118) as web:
        await sign_in(web, tenant, "pv-editors")
        first = await session_row(database_url, tenant)
        oidc = web._transport.app.state.oidc  # type: ignore[attr-defined]
        provider = await oidc.provider()
        oidc._provider = (oidc._provider[0], dataclasses.replace(
            provider, token_endpoint=f"http://127.0.0.1:{_free_port()}/token"))  # nothing listens there
        await asyncio.sleep(2.5)
        still = await web.get("/api/content/v1/contents")
        assert still.status_code == 200  # the token it has is still valid: used, refresh postponed
        assert (await session_row(database_url, tenant))["access_token"] == first["access_token"]
