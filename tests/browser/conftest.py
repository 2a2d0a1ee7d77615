"""Browser tests: the four services and the web front run in-process on free loopback ports
against the session's real Kafka and PostgreSQL, and the system Chromium (Debian's package,
headless) is driven by Playwright. Nothing leaves the machine: every request of the browser to
another host is aborted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from tests.support import settings_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE_VERSION = "4.14.1"

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Stack:
    content: str
    distribution: str
    tracking: str
    reporting: str
    web: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
            raise RuntimeError("server stopped while starting")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    ports = {name: _free_port() for name in ("content", "distribution", "tracking", "reporting", "web")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    s = lambda cls, **kw: settings_for(cls, kafka_bootstrap, database_url, **kw)  # noqa: E731
    apps = {
        "content": content_app(s(ContentSettings, watch_allow_private_addresses=True, watch_tick_seconds=0.3)),
        "distribution": distribution_app(s(DistributionSettings, tracking_base_url=url["tracking"])),
        "tracking": tracking_app(s(TrackingSettings)),
        "reporting": reporting_app(s(ReportingSettings)),
        "web": web_app(s(WebSettings, web_local_login=True, web_kpi_poll_seconds=1.0, web_session_cookie_secure=False,
                         content_base_url=url["content"], distribution_base_url=url["distribution"],
                         tracking_base_url=url["tracking"], reporting_base_url=url["reporting"])),
    }
    async with contextlib.AsyncExitStack() as running:
        for name, app in apps.items():
            await running.enter_async_context(_serving(app, ports[name]))
        yield Stack(**url)


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core, the accessibility checker the tests inject into pages (npm, cached on first use)."""
    from tests.tools import npm_package

    home = npm_package("axe-core", AXE_VERSION)
    return (home / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)")
    from playwright.async_api import async_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def new_page(browser, viewport: dict[str, int] = DESKTOP, locale: str = "en-US"):  # noqa: ANN001, ANN201
    """A fresh browser context (its own session storage, i.e. its own login) that can reach
    loopback only."""
    context = await browser.new_context(viewport=viewport, locale=locale, is_mobile=viewport is PHONE)

    async def loopback_only(route) -> None:  # noqa: ANN001
        host = route.request.url.split("/")[2].split(":")[0]
        await (route.continue_() if host in ("127.0.0.1", "localhost") else route.abort())

    await context.route("**/*", loopback_only)
    page = await context.new_page()
    return page


async def screenshot(page, name: str) -> Path:  # noqa: ANN001
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def login(page, web: str, tenant: str, subject: str, *roles: str) -> None:  # noqa: ANN001
    await page.goto(f"{web}/login")
    await page.fill("#tenant", tenant)
    await page.fill("#subject", subject)
    for role in ("employee", "editor", "approver", "analyst", "admin"):
        await page.set_checked(f"#role-{role}", role in roles)
    async with page.expect_navigation():
        await page.click("#sign-in")
