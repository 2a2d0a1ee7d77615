"""Scenario 2, in a real browser: a comms editor writes a post that breaks the brand charter,
sees the violation highlighted as he types, fixes it and submits it; the four-eyes rule stops
him approving his own text; a second person, signed in separately, approves and publishes it."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, login, new_page, screenshot
from tests.support import new_tenant, token

pytestmark = pytest.mark.integration
WAIT_MS = 30_000


async def test_an_editor_fixes_a_charter_violation_and_a_second_person_approves_and_publishes(stack, browser):
    tenant = new_tenant()
    async with httpx.AsyncClient(base_url=stack.content) as content:
        charter = await content.put("/v1/admin/charter", headers=token(tenant, "admin"),
                                    json={"forbidden_terms": ["cheap"], "mandatory_disclosure": "#employee"})
        assert charter.status_code == 200, charter.text

    editor = await new_page(browser)
    await login(editor, stack.web, tenant, "ed-1", "editor")
    assert urlsplit(editor.url).path == "/studio"
    await expect(editor.locator("#four-eyes")).to_have_text("Four eyes: whoever writes a version cannot approve it.")
    await editor.fill("#title", "Our spring offer")
    await editor.fill("#url", "https://acme.example/spring")
    await editor.fill("#share-linkedin", "A cheap offer for everyone #employee")

    # The live check marks the forbidden word where it stands in the text.
    mark = editor.locator("#preview-share-linkedin mark.violation")
    await expect(mark).to_have_text("cheap", timeout=WAIT_MS)
    await expect(editor.locator("#share-linkedin")).to_have_attribute("aria-invalid", "true")
    await expect(editor.locator("#check-status")).to_have_text("1 charter violation(s): see the highlighted text.")
    await expect(editor.locator("#violations li[data-rule=forbidden_terms]")).to_contain_text("LinkedIn")
    await screenshot(editor, "studio-1-violation-desktop")

    await editor.fill("#share-linkedin", "A fair offer for everyone #employee")
    await expect(editor.locator("#check-status")).to_have_text("No charter violation.", timeout=WAIT_MS)
    await expect(mark).to_have_count(0)
    await expect(editor.locator("#share-linkedin")).to_have_attribute("aria-invalid", "false")
    await editor.click("#save")
    await expect(editor.locator("#state")).to_have_attribute("data-state", "draft", timeout=WAIT_MS)
    await editor.click("#submit")
    await expect(editor.locator("#state")).to_have_attribute("data-state", "in_review", timeout=WAIT_MS)
    # Four eyes, visible: the author is told why he cannot approve, and the buttons say so.
    await expect(editor.locator("#four-eyes")).to_contain_text("you wrote this version (ed-1)")
    await expect(editor.locator("#approve")).to_be_disabled()
    await expect(editor.locator("#publish")).to_be_disabled()
    await screenshot(editor, "studio-2-submitted-desktop")

    approver = await new_page(browser)
    await login(approver, stack.web, tenant, "ap-1", "approver")
    assert urlsplit(approver.url).path == "/studio"
    await approver.click("button.open:has-text('Our spring offer')")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "in_review", timeout=WAIT_MS)
    await expect(approver.locator("#four-eyes")).to_have_text("Four eyes: written by ed-1; you may review it.")
    await expect(approver.locator("#check-status")).to_have_text("No charter violation.", timeout=WAIT_MS)
    await approver.click("#approve")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "approved", timeout=WAIT_MS)
    await approver.click("#publish")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "published", timeout=WAIT_MS)
    await expect(approver.locator("#audit li")).to_have_count(4)  # created, submitted, approved, published
    await screenshot(approver, "studio-3-published-desktop")

    async with httpx.AsyncClient(base_url=stack.content) as content:
        items = (await content.get("/v1/contents", headers=token(tenant, "editor"))).json()["items"]
    assert [(i["title"], i["state"], i["created_by"], i["approved_by"]) for i in items] == \
        [("Our spring offer", "published", "ed-1", "ap-1")]
    assert items[0]["share_texts"][0]["text"] == "A fair offer for everyone #employee"

    phone = await new_page(browser, PHONE)
    await login(phone, stack.web, tenant, "ap-1", "approver")
    await phone.click("button.open:has-text('Our spring offer')")
    await expect(phone.locator("#state")).to_have_attribute("data-state", "published", timeout=WAIT_MS)
    await phone.select_option("#ui-language", "fr")
    await expect(phone.locator("#state")).to_have_text("publié")
    await screenshot(phone, "studio-4-phone-french")
