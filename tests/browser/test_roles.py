"""Role-aware pages, in a real browser: each role lands where its work is, sees in the navigation
only the pages it may open, and no page calls an API the role cannot use (no 403 on the way); a
page the roles do not open says which role is missing; a page opened signed out goes to sign in;
the administration page lists the people HR told of."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from shared import topics
from tests.browser.conftest import PHONE, login, new_page, screenshot
from tests.integration.test_vertical_slice import employee
from tests.support import new_tenant, produce

pytestmark = pytest.mark.integration
WAIT_MS = 30_000

# role → (landing path, the navigation's links)
JOURNEYS = {
    "employee": ("/", ["/"]),
    "editor": ("/studio", ["/studio", "/watch", "/dashboard"]),
    "approver": ("/studio", ["/studio"]),
    "analyst": ("/dashboard", ["/dashboard"]),
    "admin": ("/admin", ["/studio", "/watch", "/dashboard", "/admin"]),
}
# A page element that shows the page drew its data (not only its frame).
READY = {"/": "#enrolment-body h3", "/studio": "#audience-hint", "/dashboard": "[data-kpi=shares] .value",
         "/admin": "#people-rows tr[data-employee]"}


def refusals(page) -> list[str]:  # noqa: ANN001
    """Every API answer 401/403 the page receives, collected as it runs."""
    seen: list[str] = []
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if "/api/" in r.url and r.status in (401, 403)
            else None)
    return seen


@pytest.mark.parametrize("role", list(JOURNEYS))
async def test_each_role_lands_where_its_work_is_and_calls_nothing_it_may_not(stack, browser, kafka_bootstrap, role):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [employee(tenant, "E1", "SUB-A")])
    page = await new_page(browser, PHONE)
    refused = refusals(page)
    await login(page, stack.web, tenant, "E1" if role == "employee" else f"{role}-1", role)
    landing, links = JOURNEYS[role]
    await expect(page.locator(READY[landing])).to_be_visible(timeout=WAIT_MS)
    assert urlsplit(page.url).path == landing
    assert await page.locator("header nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == links
    await expect(page.locator("header nav a[aria-current=page]")).to_have_attribute("href", landing)
    await page.wait_for_timeout(500)  # late calls of the page
    assert refused == []
    await screenshot(page, f"roles-{role}-phone")


async def test_a_page_the_roles_do_not_open_says_which_role_is_missing(stack, browser):
    page = await new_page(browser)
    refused = refusals(page)
    await login(page, stack.web, new_tenant(), "analyst-1", "analyst")
    await page.goto(f"{stack.web}/studio")
    await expect(page.locator("#forbidden-needs")).to_have_text("It needs the role Editor, Approver, or Administrator.")
    await expect(page.locator("#forbidden a")).to_have_attribute("href", "/dashboard")
    await page.goto(f"{stack.web}/")  # the hub sends a person without the employee role to his work
    await expect(page).to_have_url(f"{stack.web}/dashboard")
    await page.select_option("#ui-language", "de")
    await page.goto(f"{stack.web}/admin")
    await expect(page.locator("#forbidden-needs")).to_have_text("Sie erfordert die Rolle Administrator.")
    assert refused == []


async def test_a_page_opened_signed_out_goes_to_sign_in_and_back(stack, browser):
    page = await new_page(browser)
    await page.goto(f"{stack.web}/admin")
    await expect(page).to_have_url(f"{stack.web}/login?reason=signed_out&next=%2Fadmin")


async def test_the_administration_page_searches_the_people_hr_told_of(stack, browser, kafka_bootstrap):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name,
                  [employee(tenant, "E1", "SUB-A"), employee(tenant, "E2", "SUB-B")])
    page = await new_page(browser)
    refused = refusals(page)
    await login(page, stack.web, tenant, "admin-1", "admin")
    rows = page.locator("#people-rows tr[data-employee]")
    for _ in range(60):  # HR's events reach distribution asynchronously: search again, as a person would
        if await rows.count() == 2:
            break
        await page.click("#people-search")
        await page.wait_for_timeout(500)
    await expect(rows).to_have_count(2)
    await expect(page.locator("#people-rows tr[data-employee=E1] [data-consent]")).to_have_text("None")
    await page.fill("#people-q", "e2@acme")
    await page.click("#people-search")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-employee", "E2")
    # A field-level error is a sentence beside its field: an org unit needs a name.
    await page.fill("#org-code", "SUB-C")
    await page.evaluate("document.getElementById('org-name').removeAttribute('required')")
    await page.click("#org-save")
    await expect(page.locator("#org-name-error")).to_have_text("Required.")
    await expect(page.locator("#org-name")).to_have_attribute("aria-invalid", "true")
    assert refused == []
    await screenshot(page, "admin-1-desktop")
