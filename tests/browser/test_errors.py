"""Errors for people, in a real browser: an API's refusal is a sentence in the person's language
beside the field it concerns (FastAPI/pydantic 422 `loc` → the form field, with aria-invalid and
aria-describedby), never the service's JSON; a service failing leaves a sentence, not a blank page."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from shared import topics
from tests.browser.conftest import PHONE, login, new_page, screenshot
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_ambassador_hub import click_until
from tests.integration.test_vertical_slice import employee
from tests.support import new_tenant, produce

pytestmark = pytest.mark.integration
WAIT_MS = 30_000


async def no_json_shown(page) -> None:  # noqa: ANN001
    text = await page.locator("body").inner_text()
    assert '{"' not in text and "detail" not in text and "Value error" not in text, text


async def test_the_digest_month_refused_is_said_beside_the_month_in_the_persons_language(stack, browser):
    page = await new_page(browser)
    await login(page, stack.web, new_tenant(), "analyst-1", "analyst")
    await expect(page.locator("[data-kpi=shares] .value")).to_be_visible(timeout=WAIT_MS)  # the page has drawn
    month = page.locator("#digest-month")
    await month.fill("")
    await page.click("#digest-form button[type=submit]")
    await expect(page.locator("#digest-month-error")).to_have_text("Required.")
    await expect(month).to_have_attribute("aria-invalid", "true")
    await expect(month).to_have_attribute("aria-describedby", "digest-month-error")
    await month.fill("2026-11")
    await page.click("#digest-form button[type=submit]")
    await expect(page.locator("#digest-month-error")).to_have_count(0)
    await expect(month).not_to_have_attribute("aria-invalid", "true")
    # A browser without a month picker lets anything through: reporting's own check names no field.
    await month.evaluate("input => input.type = 'text'")
    await month.fill("26-1")
    await page.click("#digest-form button[type=submit]")
    await expect(page.locator("#digest-month-error")).to_have_text("Enter a month as YYYY-MM (e.g. 2026-11).")
    await expect(page.locator("#digest-status")).to_have_text(
        "Some values are not valid: see the messages next to the fields.")
    await page.select_option("#ui-language", "fr")
    await month.fill("")
    await page.click("#digest-form button[type=submit]")
    await expect(page.locator("#digest-month-error")).to_have_text("Obligatoire.")
    await no_json_shown(page)
    await screenshot(page, "errors-1-digest-month-desktop")


async def test_a_refused_preference_is_said_beside_its_field(stack, browser, kafka_bootstrap, axe_source):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [employee(tenant, "E1", "SUB-A")])
    page = await new_page(browser, PHONE, locale="de-DE")
    await login(page, stack.web, tenant, "E1", "employee")
    await page.check("#accept-consent")
    await click_until(page, "#enrol", "#enrolled-since")
    await expect(page.locator("#preferences-form[data-loaded]")).to_be_attached(timeout=WAIT_MS)
    await page.fill("#pref-zone", "Mars/Olympus")
    await page.click("#save-preferences")
    await expect(page.locator("#pref-zone-error")).to_have_text("Geben Sie eine Zeitzone wie Europe/Berlin ein.")
    await expect(page.locator("#preferences-status")).to_have_text(
        "Einige Werte sind ungültig: siehe die Hinweise bei den Feldern.")
    assert await serious_violations(page, axe_source) == []  # a field error shown
    await expect(page.locator("#feed-title")).to_have_text("Beiträge zum Teilen")  # the whole hub in German
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await page.fill("#pref-zone", "Europe/Berlin")
    await page.click("#save-preferences")
    await expect(page.locator("#pref-zone-error")).to_have_count(0)
    await no_json_shown(page)
    await screenshot(page, "errors-2-preferences-phone-german")


async def test_a_failing_service_leaves_a_sentence_not_a_blank_page(stack, browser):
    page = await new_page(browser)
    await page.route("**/api/reporting/**", lambda route: route.fulfill(status=500, body="Internal Server Error"))
    await login(page, stack.web, new_tenant(), "analyst-1", "analyst")
    await expect(page.locator("#dashboard-status")).to_have_text(
        "The service is unavailable for now: try again in a moment.", timeout=WAIT_MS)
    await expect(page.locator("h1")).to_be_visible()
    await no_json_shown(page)
