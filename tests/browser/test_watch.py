"""The industry watch page in Chromium, as an editor uses it: watch a feed (served on loopback),
see it healthy, turn an entry into a draft with an angle, dismiss another; bad input answered
next to its field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import PHONE, Stack, login, new_page, screenshot
from tests.integration.test_content_watch import Publisher, publishing
from tests.support import new_tenant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def publisher() -> Iterator[Publisher]:
    with publishing() as served:
        yield served


async def test_an_editor_watches_a_feed_and_turns_an_entry_into_a_draft(
        stack: Stack, browser: object, publisher: Publisher) -> None:
    page = await new_page(browser)
    await login(page, stack.web, new_tenant(), "eva", "editor")
    await page.goto(f"{stack.web}/watch")

    await page.click("text=Watch this feed")  # nothing filled in: said next to each field
    assert "full address" in await page.text_content("#source-url-error")
    assert await page.get_attribute("#source-name", "aria-invalid") == "true"

    await page.fill("#source-url", publisher.url("wordpress-rss2.xml"))
    await page.fill("#source-name", "Acme blog")
    await page.select_option("#source-language", "en")
    await page.click("text=Watch this feed")
    await page.wait_for_selector("#source-status.ok")
    for _ in range(40):  # the watcher reads it within a tick
        await page.reload()
        if await page.locator("#suggestions article").count() == 2:
            break
        await page.wait_for_timeout(250)
    assert await page.locator("#source-rows .badge").first.text_content() == "Healthy"

    lyon = page.locator("#suggestions article", has_text="Lyon")
    await lyon.locator("button", has_text="Make it a draft").click()
    assert "Write an angle first" in await lyon.locator(".status").text_content()
    await lyon.locator("textarea").fill("300 jobs in Lyon: proud to be part of it! #employee")
    await lyon.locator("button", has_text="Make it a draft").click()
    await lyon.locator("text=Draft created").wait_for()
    assert (await lyon.locator("a.button").get_attribute("href")).startswith("/studio#")

    other = page.locator("#suggestions article", has_text="zero-downtime")
    await other.locator("button", has_text="Not for us").click()
    await other.wait_for(state="detached")
    await page.reload()
    await page.locator("#suggestions", has_text="Nothing to curate").wait_for()
    await screenshot(page, "watch-desktop")

    phone = await new_page(browser, PHONE)
    await login(phone, stack.web, new_tenant(), "leo", "editor")
    await phone.goto(f"{stack.web}/watch")
    await phone.wait_for_selector("#source-form")
    await screenshot(phone, "watch-phone")
