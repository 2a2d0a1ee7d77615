"""Scenario 1, in a real browser: an employee signs in, enrols with the consent text, confirms
reading the training kit, receives a published post, shares it with the tracked link, the link
is followed (302), and the click shows in his results; then the KPI dashboard shows it too."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import expect

from shared import topics
from tests.browser.conftest import PHONE, login, new_page, screenshot
from tests.integration.test_vertical_slice import employee
from tests.support import eventually, new_tenant, produce, token

pytestmark = pytest.mark.integration
BROWSER_AGENT = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}
WAIT_MS = 30_000


async def click_until(page, button: str, done: str) -> None:  # noqa: ANN001
    """Click ``button`` until ``done`` is visible: the services learn of the employee, and of a
    post, asynchronously (Kafka), as a person would retry."""
    async def attempt() -> bool:
        if await page.locator(done).count():  # a slow answer to the previous click arrived
            return True
        await page.click(button)
        try:
            await page.wait_for_selector(done, timeout=1000)
            return True
        except Exception:  # not there yet
            return False
    await eventually(attempt, timeout=30)


async def test_an_employee_enrols_shares_a_post_and_sees_the_click_counted(stack, browser, kafka_bootstrap):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [employee(tenant, "E1", "SUB-A")])
    page = await new_page(browser)
    await login(page, stack.web, tenant, "E1", "employee")
    assert urlsplit(page.url).path == "/"
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#consent-text")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#enrol")).to_be_disabled()  # consent first
    await screenshot(page, "hub-1-enrolment-desktop")

    await page.check("#accept-consent")
    await page.fill("#reach-linkedin", "800")
    await click_until(page, "#enrol", "#enrolled-since")
    await expect(page.locator("#feed-empty")).to_be_visible(timeout=WAIT_MS)

    # A post for SUB-A is written and published (four eyes: editor ≠ approver) through the API.
    async with httpx.AsyncClient(base_url=stack.content) as content:
        draft = {"title": "Notre usine de Lyon", "url": "https://acme.example/lyon", "language": "fr",
                 "audience": {"subsidiaries": ["SUB-A"]},
                 "share_texts": [{"network": "linkedin", "language": "fr", "text": "Fiers de notre usine !"},
                                 {"network": "x", "language": "fr", "text": "Notre usine de Lyon"}]}
        item = (await content.post("/v1/contents", json=draft, headers=token(tenant, "editor", subject="ed"))).json()
        published = await content.post(f"/v1/contents/{item['id']}/publish",
                                        headers=token(tenant, "approver", subject="ap"))
        assert published.status_code == 200, published.text

    await click_until(page, "#refresh-feed", "article.post")
    linkedin = page.locator("a.share[data-network=linkedin]")
    await expect(page.locator("textarea[data-network=linkedin]")).to_have_value("Fiers de notre usine !")
    # Before the training kit is read, sharing is closed: in the page, and at the front's API.
    await expect(linkedin).to_have_attribute("aria-disabled", "true")
    await expect(page.locator("button.shared[data-network=linkedin]")).to_be_disabled()
    async def tracked_link(network: str) -> str:
        shown = await page.locator(f".network:has(textarea[data-network={network}]) p.muted").text_content()
        return shown.split(": ", 1)[1]
    tracked = await tracked_link("linkedin")
    code = urlsplit(tracked).path.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=stack.web) as web:
        refused = await web.post("/api/tracking/v1/shares", json={"link_code": code},
                                 headers=token(tenant, "employee", subject="E1"))
    assert refused.status_code == 409 and refused.json()["detail"]["reason"] == "training_not_read"
    await screenshot(page, "hub-2-feed-before-training-desktop")

    await page.click("#confirm-read")
    await expect(page.locator("#training-status")).to_have_text(re.compile("^Read on"))
    href = await linkedin.get_attribute("href")
    assert urlsplit(href).netloc == "www.linkedin.com" and parse_qs(urlsplit(href).query) == {"url": [tracked]}
    # The suggested text is editable: X's share page carries the edited text and the tracked link.
    await page.fill("textarea[data-network=x]", "Fière de notre usine de Lyon #salariée")
    x_share = parse_qs(urlsplit(await page.locator("a.share[data-network=x]").get_attribute("href")).query)
    assert x_share == {"text": ["Fière de notre usine de Lyon #salariée"], "url": [await tracked_link("x")]}

    # Someone follows the tracked link: the redirector answers 302 to the article.
    async with httpx.AsyncClient() as outside:
        async def redirected() -> httpx.Response | None:
            r = await outside.get(tracked, headers=BROWSER_AGENT)
            return r if r.status_code == 302 else None
        answer = await eventually(redirected)
    assert answer.headers["location"].startswith("https://acme.example/lyon?")

    await page.click("button.shared[data-network=linkedin]")
    await expect(page.locator("article.post .network").first.locator("p.status")).to_have_text(
        "Thank you! Your share is counted.")

    async def counted() -> bool:
        await page.click("#refresh-results")
        await page.wait_for_timeout(300)
        mine = {k: await page.locator(f"#my-kpis [data-kpi={k}] .value").text_content()
                for k in ("clicks_total", "shares")}
        return mine == {"clicks_total": "1", "shares": "1"}
    await eventually(counted, timeout=30)
    # The leaderboard names only ambassadors who opted in: not E1, until E1 chooses to be named
    # in the preferences (carried to reporting by the directory's ambassador.updated).
    await expect(page.locator("#leaderboard-empty")).to_be_visible()
    await expect(page.locator("#pref-named")).not_to_be_checked()
    await page.check("#pref-named")
    await page.click("#save-preferences")
    await expect(page.locator("#preferences-status")).to_have_text("Saved")

    async def named() -> bool:
        await page.click("#refresh-results")
        await page.wait_for_timeout(300)
        return await page.locator("#leaderboard tr.me").count() == 1
    await eventually(named, timeout=30)
    await page.reload()
    await expect(page.locator("#pref-named")).to_be_checked(timeout=WAIT_MS)  # kept, shown again
    await screenshot(page, "hub-3-shared-and-counted-desktop")

    await page.select_option("#ui-language", "fr")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.locator("#results-title")).to_have_text("Mes résultats")
    await expect(page.locator("a.share[data-network=linkedin]")).to_have_text("Partager sur LinkedIn")
    await expect(page.locator("#my-kpis [data-kpi=clicks_total] .name")).to_have_text("Clics")
    await screenshot(page, "hub-4-french-desktop")

    phone = await new_page(browser, PHONE)
    await login(phone, stack.web, tenant, "E1", "employee")
    await expect(phone.locator("article.post")).to_be_visible(timeout=WAIT_MS)
    await screenshot(phone, "hub-5-phone")

    # The KPI dashboard, as an analyst of the same tenant: the click is there, live.
    dashboard = await new_page(browser)
    await login(dashboard, stack.web, tenant, "analyst-1", "analyst")
    assert urlsplit(dashboard.url).path == "/dashboard"
    await expect(dashboard.locator("[data-kpi=clicks_total] .value")).to_have_text("1", timeout=WAIT_MS)
    await expect(dashboard.locator("#series-chart svg path")).to_have_count(1)
    await expect(dashboard.locator("#subsidiary-chart svg rect")).to_have_count(1)
    await expect(dashboard.locator("#board-contents tr")).to_have_count(1)
    await expect(dashboard.locator("#live-updated")).to_contain_text("Updated at")
    digest = dashboard.frame_locator("#digest-frame")
    await expect(digest.locator("h1")).to_contain_text("Your month in numbers", timeout=WAIT_MS)
    await expect(digest.locator("li").first).to_contain_text("Notre usine de Lyon")
    async with dashboard.expect_download() as download:
        await dashboard.click("#csv-kpis")
    csv = (await download.value).suggested_filename
    assert csv == "kpis.csv"
    await screenshot(dashboard, "dashboard-1-desktop")
    phone_dashboard = await new_page(browser, PHONE)
    await login(phone_dashboard, stack.web, tenant, "analyst-1", "analyst")
    await expect(phone_dashboard.locator("[data-kpi=clicks_total] .value")).to_have_text("1", timeout=WAIT_MS)
    await expect(phone_dashboard.frame_locator("#digest-frame").locator("h1")).to_be_visible(timeout=WAIT_MS)
    await screenshot(phone_dashboard, "dashboard-2-phone")
