"""The hub people adopt, on a 390 px phone: a first-time employee enrols and shares a post within
60 seconds and 8 interactions; the card shows the image, summary, the counter against the
network's limit and a preview; what I shared stays marked after a reload (the server knows, not the
browser); preferences show in-app ticked by default; opting out asks first; a new training-kit
version is asked again of whoever read the old one."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.async_api import expect

from shared import topics
from tests.browser.conftest import PHONE, login, new_page, screenshot
from tests.browser.test_accessibility import serious_violations
from tests.integration.test_vertical_slice import employee
from tests.support import new_tenant, produce, token

pytestmark = pytest.mark.integration
WAIT_MS = 30_000


async def publish(stack, tenant: str) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=stack.content) as content:
        draft = {"title": "Our Lyon plant", "url": "https://acme.example/lyon", "language": "en",
                 "summary": "Two hundred new jobs in Lyon.", "image_url": "https://acme.example/lyon.jpg",
                 "image_alt": "The Lyon plant at dawn",
                 "share_texts": [{"network": "linkedin", "language": "en", "text": "Proud of our Lyon plant!"},
                                 {"network": "x", "language": "en", "text": "Our Lyon plant https://acme.example/x"}]}
        item = (await content.post("/v1/contents", json=draft, headers=token(tenant, "editor", subject="ed"))).json()
        published = await content.post(f"/v1/contents/{item['id']}/publish",
                                        headers=token(tenant, "approver", subject="ap"))
        assert published.status_code == 200, published.text


async def test_a_first_time_employee_enrols_and_shares_within_8_interactions_on_a_phone(stack, browser, kafka_bootstrap,
                                                                                      axe_source):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [employee(tenant, "E1", "SUB-A")])
    page = await new_page(browser, PHONE)
    await login(page, stack.web, tenant, "E1", "employee")
    started, taps = time.monotonic(), 0

    # Not an ambassador yet: the enrolment comes first, the consent text in force above its box.
    await expect(page.locator("#accept-consent")).to_be_visible(timeout=WAIT_MS)
    await page.check("#accept-consent")
    await page.click("#enrol")
    taps += 2
    for _ in range(30):  # HR's event may still be on its way: the person taps again (not counted: the test's timing)
        try:
            await expect(page.locator("#enrolled-since")).to_be_visible(timeout=2000)
            break
        except AssertionError:
            if await page.locator("#enrol").count():
                await page.click("#enrol")
    await publish(stack, tenant)
    # The feed comes to the post by itself (no refresh tap), the training kit right above it.
    post = page.locator("article.post")
    await expect(post).to_be_visible(timeout=WAIT_MS)
    await expect(post.locator("img.cover")).to_have_attribute("src", "https://acme.example/lyon.jpg")
    await expect(post.locator(".summary")).to_have_text("Two hundred new jobs in Lyon.")
    # X counts each URL as 23 characters, the shared link too: "Our Lyon plant " (15) + 23 + 1 + 23.
    await expect(page.locator(".network[data-network=x] .counter")).to_have_text("62 / 280 characters")
    await expect(page.locator(".network[data-network=linkedin] .counter")).to_have_text("24 / 3000 characters")
    assert await page.evaluate("document.getElementById('training').compareDocumentPosition("
                               "document.getElementById('feed')) & Node.DOCUMENT_POSITION_FOLLOWING")
    await page.click("#confirm-read")
    taps += 1
    linkedin = page.locator("a.share[data-network=linkedin]")
    await expect(linkedin).not_to_have_attribute("aria-disabled", "true")
    async with page.expect_popup() as popup:
        await linkedin.click()
    await (await popup.value).close()
    await page.click("button.shared[data-network=linkedin]")
    taps += 2
    await expect(page.locator(".network[data-network=linkedin] p.status")).to_have_text(
        "Thank you! Your share is counted.")
    elapsed = time.monotonic() - started
    assert taps <= 8 and elapsed < 60, (taps, elapsed)
    await expect(post.locator(".shared-mark")).to_have_text("✓ Shared on LinkedIn")
    await screenshot(page, "hub-journey-1-shared-phone")

    # Across reloads (and devices): the mark comes from tracking.
    await page.reload()
    await expect(page.locator("article.post .shared-mark")).to_have_text("✓ Shared on LinkedIn", timeout=WAIT_MS)
    await expect(page.locator(".network[data-network=linkedin]")).to_have_class("network done")
    await expect(page.locator("#channel-in_app")).to_be_checked()  # the default, shown as it is

    # An over-long text says by how much.
    await page.fill("textarea[data-network=x]", "x" * 250)
    await expect(page.locator(".network[data-network=x] .counter")).to_have_text("274 / 280 characters")
    await page.fill("textarea[data-network=x]", "x" * 260)
    await expect(page.locator(".network[data-network=x] .counter")).to_have_text("284 / 280: 4 too many for X")
    await page.click(".network[data-network=x] .preview-box summary")
    await expect(page.locator(".network[data-network=x] .preview-text")).to_contain_text("x" * 260)
    assert await serious_violations(page, axe_source) == []  # the cards, a counter over, a preview open

    # A new training kit is asked again: sharing closes until it is confirmed.
    async with httpx.AsyncClient(base_url=stack.web) as web:
        written = await web.put("/api/web/training", json={"texts": {"en": "Version two: never share prices."}},
                                headers=token(tenant, "editor", subject="ed"))
        assert written.status_code == 200, written.text
    await page.reload()
    await expect(page.locator("#training-status")).to_have_text(
        "The training kit has changed (version 1): read it and confirm again before sharing.", timeout=WAIT_MS)
    await expect(page.locator("a.share[data-network=linkedin]")).to_have_attribute("aria-disabled", "true")
    await page.click("#confirm-read")
    await expect(page.locator("a.share[data-network=linkedin]")).not_to_have_attribute("aria-disabled", "true")

    # Opting out asks first; cancelling keeps everything.
    await page.click("#opt-out")
    await expect(page.locator("#opt-out-question")).to_be_visible()
    await page.click("#opt-out-cancel")
    await expect(page.locator("#opt-out-confirm-box")).to_be_hidden()
    await expect(page.locator("#enrolled-since")).to_be_visible()
    await page.click("#opt-out")
    await page.click("#opt-out-confirm")
    await expect(page.locator("#enrolment-status")).to_have_text("You are no longer an ambassador.", timeout=WAIT_MS)
    await screenshot(page, "hub-journey-2-opted-out-phone")
