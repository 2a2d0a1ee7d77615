"""Signing in, in a real browser: through a real OpenID Connect provider's login page
(mock-oauth2-server), with the session in an HttpOnly cookie the page cannot read, and out again
through the provider; the sign-in page says why one is there (signed out, session ended, a bad
or expired token, a refused sign-in) and has its heading; no favicon 404."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import expect

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from shared.auth import issue_token
from tests.browser.conftest import _free_port, _serving, login, new_page, screenshot
from tests.integration.test_web_oidc import CLIENT_ID, idp_settings
from tests.support import JWT_SECRET, new_tenant, settings_for

pytestmark = pytest.mark.integration
WAIT_MS = 30_000


@pytest.fixture(scope="module")
async def idp_front(kafka_bootstrap: str, database_url: str, oidc_provider) -> AsyncIterator[str]:
    """Content, distribution, reporting and the web front, all reading the provider's tokens."""
    issuer = oidc_provider.issuer()
    s = lambda cls, **kw: settings_for(cls, kafka_bootstrap, database_url, **idp_settings(issuer), **kw)  # noqa: E731
    async with contextlib.AsyncExitStack() as running:
        urls = {}
        for name, app in (("content", content_app(s(ContentSettings))),
                          ("distribution", distribution_app(s(DistributionSettings))),
                          ("reporting", reporting_app(s(ReportingSettings)))):
            urls[name] = await running.enter_async_context(_serving(app, _free_port()))
        port = _free_port()
        web = web_app(s(WebSettings, web_oidc_issuer=issuer, web_oidc_client_id=CLIENT_ID,
                        web_oidc_client_secret="front-secret", web_session_cookie_secure=False,
                        content_base_url=urls["content"], distribution_base_url=urls["distribution"],
                        reporting_base_url=urls["reporting"], tracking_base_url=urls["reporting"]))
        yield await running.enter_async_context(_serving(web, port))


async def test_an_editor_signs_in_at_the_identity_provider_and_out_again(idp_front, browser):
    tenant = new_tenant()
    page = await new_page(browser)
    await page.goto(f"{idp_front}/studio")
    await expect(page.locator("#login-message")).to_contain_text("not signed in", timeout=WAIT_MS)
    assert urlsplit(page.url).path == "/login"
    await expect(page.locator("h1")).to_have_text("Sign in to Portevoix")
    await expect(page.locator("#local-login")).to_be_hidden()
    await screenshot(page, "sign-in-1-signed-out")

    await page.click("#oidc-sign-in")  # the provider's own login page
    await page.wait_for_selector("input[name=username]", timeout=WAIT_MS)
    assert page.url.startswith(idp_front.rsplit(":", 1)[0]) and "/authorize?" in page.url
    await page.fill("input[name=username]", "ed-1")
    await page.fill("textarea[name=claims]", json.dumps({"tenant": tenant, "aud": [CLIENT_ID],
                                                         "realm_access": {"roles": ["pv-editors"]}}))
    async with page.expect_navigation(url=f"{idp_front}/studio"):
        await page.click("input[type=submit]")
    await expect(page.locator("header .who")).to_contain_text(f"ed-1 · {tenant}", timeout=WAIT_MS)
    # The IdP's group became the editor role: the studio is in the navigation, the admin page is not.
    await expect(page.locator("header nav a[href='/studio']")).to_be_visible()
    assert await page.locator("header nav a[href='/admin']").count() == 0
    # The session is an HttpOnly cookie: nothing a script could read or send elsewhere.
    assert await page.evaluate("document.cookie") == ""
    stored = await page.evaluate("Object.values(sessionStorage).concat(Object.values(localStorage)).join(' ')")
    assert "eyJ" not in stored
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "portevoix-session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    await screenshot(page, "sign-in-2-studio-after-idp")

    async with page.expect_navigation(url=f"{idp_front}/login?reason=logged_out"):
        await page.click("#logout")  # through the provider's end_session_endpoint
    await expect(page.locator("#login-message")).to_have_text("You are signed out.")
    await page.goto(f"{idp_front}/studio")
    await expect(page.locator("#login-message")).to_contain_text("not signed in", timeout=WAIT_MS)


async def test_the_sign_in_page_says_why_and_refuses_bad_tokens_with_a_reason(stack, browser, database_url):
    page = await new_page(browser)
    await page.goto(f"{stack.web}/login")
    await expect(page.locator("h1")).to_have_text("Sign in to Portevoix")
    assert (await page.request.get(f"{stack.web}/favicon.ico")).status == 200
    await expect(page.locator("#login-message")).to_be_hidden()

    await page.click("#token-title")  # the token form is folded away when the demo login is on
    await page.fill("#token", "not a token")
    await page.click("#use-token")
    await expect(page.locator("#token-status")).to_contain_text("This is not a token")
    expired = issue_token(JWT_SECRET, subject="E1", tenant=new_tenant(), roles=["employee"], ttl_seconds=-120)
    await page.fill("#token", expired)
    await page.click("#use-token")
    await expect(page.locator("#token-status")).to_contain_text("expired")
    await page.fill("#token", expired[:-4] + "AAAA")
    await page.click("#use-token")
    await expect(page.locator("#token-status")).to_contain_text("not accepted")
    await screenshot(page, "sign-in-3-bad-token")

    await page.goto(f"{stack.web}/login?error=access_denied")
    await expect(page.locator("#login-message")).to_contain_text("refused by your identity provider")
    await page.goto(f"{stack.web}/login?error=anything-else")
    await expect(page.locator("#login-message")).to_contain_text("Sign-in failed")

    # A session that ends (here: removed, as after its end or a refused refresh): back to sign-in, said so.
    tenant = new_tenant()
    await login(page, stack.web, tenant, "E1", "employee")
    assert urlsplit(page.url).path == "/"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM web.sessions WHERE tenant = $1", tenant)
    finally:
        await conn.close()
    await page.reload()
    await expect(page.locator("#login-message")).to_contain_text("Your session has ended", timeout=WAIT_MS)
    assert "next=%2F" in page.url
    await screenshot(page, "sign-in-4-session-ended")
