"""Accessibility, measured by an outside checker: axe-core (from npm, installed into the cache on
first use by tests/tools.py) injected into every page, each signed in with the roles that open it
and drawn with its data, at 390 and 1440 px: no critical and no serious violation; every visible
control reachable with the keyboard, and ids unique."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import expect

from shared import topics
from tests.browser.conftest import login, new_page
from tests.integration.test_vertical_slice import employee
from tests.support import new_tenant, produce

pytestmark = pytest.mark.integration
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
# page → (path, roles, an element showing the page drew its data)
PAGES = {
    "hub": ("/", ("employee",), "#enrolment-body h3"),
    "studio": ("/studio", ("editor",), "#audience-hint"),
    "watch": ("/watch", ("editor",), "#content h1"),
    "dashboard": ("/dashboard", ("analyst",), "[data-kpi=shares] .value"),
    "admin": ("/admin", ("admin",), "#people-rows tr"),
}


async def serious_violations(page, axe_source: str) -> list[str]:  # noqa: ANN001
    await page.add_script_tag(content=axe_source)
    found = await page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ["violations"] });
        return result.violations.filter(v => v.impact === "critical" || v.impact === "serious")
            .map(v => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")) }));
    }""")
    return [json.dumps(v) for v in found] + await keyboard_and_ids(page)


async def keyboard_and_ids(page) -> list[str]:  # noqa: ANN001
    """Every visible control is reachable with the keyboard (no negative tabindex, none disabled
    by a missing href), and no two elements share an id."""
    return await page.evaluate("""() => {
        const controls = [...document.querySelectorAll("button, a, input, select, textarea, summary")]
            .filter(e => e.offsetParent !== null && !e.disabled && e.getAttribute("aria-disabled") !== "true");
        const unreachable = controls.filter(e => e.tabIndex < 0 || (e.tagName === "A" && !e.hasAttribute("href")))
            .map(e => `unreachable: ${e.outerHTML.slice(0, 80)}`);
        const ids = [...document.querySelectorAll("[id]")].map(e => e.id);
        const twice = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))].map(id => `duplicate id: ${id}`);
        return [...unreachable, ...twice];
    }""")


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_page_has_no_serious_accessibility_violation(stack, browser, kafka_bootstrap, axe_source, width):
    tenant = new_tenant()
    await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [employee(tenant, "E1", "SUB-A")])
    problems: dict[str, list[str]] = {}
    login_page = await new_page(browser, WIDTHS[width])
    await login_page.goto(f"{stack.web}/login")
    await expect(login_page.locator("h1")).to_be_visible()
    problems["login"] = await serious_violations(login_page, axe_source)
    for name, (path, roles, ready) in PAGES.items():
        page = await new_page(browser, WIDTHS[width])
        await login(page, stack.web, tenant, "E1" if "employee" in roles else f"{name}-1", *roles)
        if not page.url.endswith(path):
            await page.goto(f"{stack.web}{path}")
        await expect(page.locator(ready).first).to_be_attached(timeout=30_000)
        problems[name] = await serious_violations(page, axe_source)
    assert not any(problems.values()), json.dumps(problems, indent=1)
