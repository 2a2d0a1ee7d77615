"""The studio as a subsidiary's comms team uses it, in a real browser: the audience picker shows
only their subtree; a post with two LinkedIn angles and an X angle, their counters and previews;
an uploaded image that needs its alt text; a charter violation named humanly next to its field;
scheduled by a second person and found in the calendar. And a subsidiary editor answering the
group's offers: one localised, one declined with a reason."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from shared import topics
from shared.envelope import new_event
from shared.events import EmployeeUpserted
from tests.browser.conftest import new_page, screenshot
from tests.support import eventually, kafka_record, new_tenant, produce, token

pytestmark = pytest.mark.integration
WAIT_MS = 30_000
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")
TREE = [("GRP", "Acme group", None), ("FR", "Acme France", "GRP"), ("FR-LYO", "Acme Lyon", "FR"),
        ("DE", "Acme Deutschland", "GRP")]
PEOPLE = [("fr-1", "FR", "Paris", "fr-FR"), ("ly-1", "FR-LYO", "Lyon", "fr-FR"), ("de-1", "DE", "Berlin", "de-DE")]


async def sign_in(page, web: str, tenant: str, subject: str, role: str, subsidiary: str | None) -> None:  # noqa: ANN001
    await page.goto(f"{web}/login")
    await page.fill("#tenant", tenant)
    await page.fill("#subject", subject)
    for each in ("employee", "editor", "approver", "analyst", "admin"):
        await page.set_checked(f"#role-{each}", each == role)
    await page.fill("#subsidiary", subsidiary or "")
    async with page.expect_navigation():
        await page.click("#sign-in")
    assert urlsplit(page.url).path == "/studio"


async def org(stack, kafka_bootstrap: str, tenant: str) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=stack.distribution) as distribution:
        for code, name, parent in TREE:
            r = await distribution.put(f"/v1/admin/subsidiaries/{code}", headers=token(tenant, "admin"),
                                       json={"name": name, "parent": parent})
            assert r.status_code == 200, r.text
        await produce(kafka_bootstrap, topics.HR_EMPLOYEES.name, [kafka_record(new_event(
            "hr.employee.upserted", source="hr/sap", subject=who, tenant=tenant, data=EmployeeUpserted(
                employee_id=who, email=f"{who}@example.com", given_name="Ada", family_name="Byron", subsidiary=unit,
                department="Comms", site=site, country=unit[:2], language=language,
                effective_at="2026-01-01T00:00:00Z", version=1))) for who, unit, site, language in PEOPLE])

        async def everyone_known() -> bool:
            r = await distribution.get("/v1/directory/org", headers=token(tenant, "editor"))
            return len(r.json()["sites"]) == 3 or None
        await eventually(everyone_known)


async def test_a_subsidiary_editor_writes_angles_with_an_image_and_finds_the_post_in_the_calendar(
        stack, browser, kafka_bootstrap):
    tenant = new_tenant()
    await org(stack, kafka_bootstrap, tenant)
    async with httpx.AsyncClient(base_url=stack.content) as content:
        charter = await content.put("/v1/admin/charter", headers=token(tenant, "admin"),
                                    json={"forbidden_terms": ["cheap"]})
        assert charter.status_code == 200, charter.text

    editor = await new_page(browser)
    await sign_in(editor, stack.web, tenant, "ed-fr", "editor", "FR")
    # The picker: his subsidiary (always in the audience) and its unit; nothing of the group or DE.
    await expect(editor.locator("#aud-unit-FR")).to_be_checked(timeout=WAIT_MS)
    await expect(editor.locator("#aud-unit-FR")).to_be_disabled()
    await expect(editor.locator("label[for=aud-unit-FR-LYO]")).to_contain_text("Acme Lyon (FR-LYO) · 1 people")
    await expect(editor.locator("#aud-unit-DE")).to_have_count(0)
    await expect(editor.locator("#aud-unit-GRP")).to_have_count(0)
    await expect(editor.locator("#aud-site-Berlin")).to_have_count(0)
    await expect(editor.locator("#audience-hint")).to_contain_text("Your posts go to Acme France")
    await editor.check("#aud-site-Lyon")

    await editor.fill("#title", "Our Lyon plant opens")
    await editor.fill("#url", "https://acme.example/lyon")
    await editor.select_option("#content-form #language", "en")
    await editor.fill("#share-linkedin", "A cheap way to power a plant: the sun.")
    # The violation, named humanly next to its field, marked in the preview; no rule id shown.
    finding = editor.locator("#findings-share-linkedin li[data-rule=forbidden_terms]")
    await expect(finding).to_have_text("Forbidden term: “cheap” may not be used.", timeout=WAIT_MS)
    await expect(editor.locator("#preview-share-linkedin mark.violation")).to_have_text("cheap")
    await expect(editor.locator("#violations")).not_to_contain_text("forbidden_terms")
    await expect(editor.locator("#count-share-linkedin")).to_have_text("38 / 3000 characters")

    await editor.fill("#share-linkedin", "A clean way to power a plant: the sun.")
    await expect(editor.locator("#check-status")).to_have_text("No charter violation.", timeout=WAIT_MS)
    await expect(finding).to_have_count(0)
    await editor.click("#add-angle-linkedin")
    second = editor.locator("#angles-linkedin .angle textarea").nth(1)
    await expect(second).to_be_focused()
    await second.fill("Lyon runs on sunshine now. " + "Really. " * 400)
    over = editor.locator("#angles-linkedin .counter").nth(1)
    await expect(over).to_have_text("3227 / 3000: 227 too many")
    await expect(over).to_have_class("counter over")
    await second.fill("Lyon runs on sunshine now.")
    # X: every link weighs 23, and the shared link is added to the text.
    await editor.fill("#share-x", "Solar Lyon, see https://acme.example/a/very/long/path/indeed")
    await expect(editor.locator("#count-share-x")).to_have_text("63 / 280 characters")  # 16 + 23 + 1 + 23
    await expect(editor.locator("#preview-share-x .link-title")).to_have_text("Our Lyon plant opens")
    await expect(editor.locator("#preview-share-linkedin .link-card .muted")).to_have_text("acme.example")

    # An uploaded image (named .png, checked by its bytes) and, before saving, its alt text.
    await editor.set_input_files("#image-file", files=[{"name": "plant.png", "mimeType": "image/png", "buffer": PNG}])
    await expect(editor.locator("#image-status")).to_have_text("Image uploaded.", timeout=WAIT_MS)
    image_id = (await editor.input_value("#image-url")).rsplit("/", 1)[1]
    await expect(editor.locator("#image-url")).to_have_value(f"{stack.web}/api/content/v1/images/{tenant}/{image_id}")
    await editor.set_input_files("#image-file", files=[{"name": "evil.png", "mimeType": "image/png",
                                                         "buffer": b"<svg onload=alert(1)></svg>"}])
    await expect(editor.locator("#image-status")).to_have_text("Only PNG, JPEG, GIF and WebP images are accepted.",
                                                               timeout=WAIT_MS)
    await editor.click("#save")
    await expect(editor.locator("#image-alt-error")).to_have_text("Describe the image for people who cannot see it.")
    await expect(editor.locator("#image-alt")).to_be_focused()
    await editor.fill("#image-alt", "Solar panels on the roof of the Lyon plant")
    await expect(editor.locator("#preview-share-x .link-card img")).to_have_attribute(
        "alt", "Solar panels on the roof of the Lyon plant")
    await editor.evaluate("""() => {  // in three hours, as the datetime-local field takes it (local time)
        const at = new Date(Date.now() + 3 * 3600e3);
        const input = document.getElementById("publish-at");
        input.value = new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        input.dispatchEvent(new Event("input", { bubbles: true })); }""")
    await screenshot(editor, "studio-journey-1-writing")
    await editor.click("#save")
    await expect(editor.locator("#state")).to_have_attribute("data-state", "draft", timeout=WAIT_MS)
    await editor.click("#submit")
    await expect(editor.locator("#state")).to_have_attribute("data-state", "in_review", timeout=WAIT_MS)

    async with httpx.AsyncClient(base_url=stack.content) as content:
        [item] = (await content.get("/v1/contents", headers=token(tenant, "editor"))).json()["items"]
    assert [(s["network"], s["language"], s["variant"]) for s in item["share_texts"]] == [
        ("linkedin", "en", 0), ("linkedin", "en", 1), ("x", "en", 0)]
    assert item["image_alt"] == "Solar panels on the roof of the Lyon plant"
    assert (item["owner_subsidiary"], item["audience"]["subsidiaries"], item["audience"]["sites"]) == (
        "FR", ["FR"], ["Lyon"])

    approver = await new_page(browser)
    await sign_in(approver, stack.web, tenant, "ap-fr", "approver", "FR")
    await approver.click("button.open:has-text('Our Lyon plant opens')")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "in_review", timeout=WAIT_MS)
    await approver.click("#approve")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "approved", timeout=WAIT_MS)
    await approver.click("#schedule")
    await expect(approver.locator("#state")).to_have_attribute("data-state", "scheduled", timeout=WAIT_MS)

    await editor.reload()
    due = editor.locator("#calendar-days li.due.due_publish")
    await expect(due).to_contain_text("Goes out", timeout=WAIT_MS)
    await expect(due.locator("button")).to_have_text("Our Lyon plant opens")
    await expect(due).to_contain_text("scheduled")
    await editor.select_option("#calendar-view", "month")
    await expect(editor.locator("#calendar-days li.due.due_publish button")).to_have_text("Our Lyon plant opens")
    await screenshot(editor, "studio-journey-2-calendar")
    await due.locator("button").click()
    await expect(editor.locator("#state")).to_have_attribute("data-state", "scheduled", timeout=WAIT_MS)
    await expect(editor.locator("#angles-linkedin textarea")).to_have_count(2)


async def test_a_subsidiary_editor_localises_one_group_offer_and_declines_another(stack, browser):
    tenant = new_tenant()
    group_editor, group_approver = token(tenant, "editor", subject="g-ed"), token(tenant, "approver", subject="g-ap")
    async with httpx.AsyncClient(base_url=stack.content) as content:
        for title in ("Group results 2026", "Group sponsorship"):
            draft = {"title": title, "url": "https://acme.example/group", "language": "en",
                     "share_texts": [{"network": "linkedin", "language": "en", "text": f"{title}: read it"}]}
            item = (await content.post("/v1/contents", json=draft, headers=group_editor)).json()
            assert (await content.post(f"/v1/contents/{item['id']}/approve", headers=group_approver)).status_code == 409
            assert (await content.post(f"/v1/contents/{item['id']}/submit", headers=group_editor)).status_code == 200
            assert (await content.post(f"/v1/contents/{item['id']}/approve", headers=group_approver)).status_code == 200
            offered = await content.post(f"/v1/contents/{item['id']}/offers", headers=group_editor,
                                         json={"subsidiaries": ["FR", "DE"]})
            assert offered.status_code == 200, offered.text

    page = await new_page(browser)
    await sign_in(page, stack.web, tenant, "ed-fr", "editor", "FR")
    results = page.locator("li.offer:has-text('Group results 2026')")
    await expect(results).to_have_attribute("data-status", "offered", timeout=WAIT_MS)
    await expect(results).to_contain_text("waiting for your answer")
    await results.locator("button.localise-open").click()
    await results.locator("input[id^=loc-title-]").fill("Résultats du groupe 2026")
    await results.locator("textarea[id^=loc-text-]").fill("Les résultats du groupe : à lire")
    await results.locator("button.send-localised").click()
    await expect(page.locator("#state")).to_have_attribute("data-state", "in_review", timeout=WAIT_MS)
    await expect(page.locator("#title")).to_have_value("Résultats du groupe 2026")
    await expect(results).to_have_attribute("data-status", "localised")

    sponsorship = page.locator("li.offer:has-text('Group sponsorship')")
    await sponsorship.locator("button.decline").click()
    await expect(sponsorship.locator("p.status")).to_have_text("Say why, in a few words.")
    await sponsorship.locator("input[id^=decline-reason-]").fill("No sponsorship in France this year")
    await sponsorship.locator("button.decline").click()
    await expect(sponsorship).to_have_attribute("data-status", "declined", timeout=WAIT_MS)
    await expect(sponsorship).to_contain_text("No sponsorship in France this year")
    await screenshot(page, "studio-journey-3-offers")

    async with httpx.AsyncClient(base_url=stack.content) as content:
        offers = (await content.get("/v1/offers", headers=group_editor)).json()["offers"]
    assert sorted((o["group_item"]["title"], o["subsidiary"], o["status"]) for o in offers) == [
        ("Group results 2026", "DE", "offered"), ("Group results 2026", "FR", "localised"),
        ("Group sponsorship", "DE", "offered"), ("Group sponsorship", "FR", "declined")]
