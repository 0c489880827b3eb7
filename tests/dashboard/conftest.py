"""Real Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, against a real server.

Browsers cannot be downloaded here, so Playwright launches the system
Chromium; ``scripts/setup-system-deps.sh`` installs it. Each test gets a new
browser context (no shared cookies) at a laptop's 1280x720, and fails on any
error the page logs or any request that leaves this machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from server import RunningServer

CHROMIUM = os.environ.get("LLMOS_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium tries Google's hosts, which
# this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while sync Playwright runs, its event loop is
    # current in this thread, and later tests that call asyncio.run() would fail.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-system-deps.sh (apt chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class PageProblems:
    """Console errors, uncaught exceptions and requests to other hosts seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        # A failed API call is logged by Chromium as a resource error: the UI shows
        # those itself, and tests assert on what it shows.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def request(self, request: Request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("http", "ws")) and host not in ("127.0.0.1", "localhost"):
            self.foreign.append(request.url)


def open_page(browser: Browser, problems: PageProblems) -> Page:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.on("request", problems.request)
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    problems = PageProblems()
    opened = open_page(browser, problems)
    yield opened
    opened.context.close()
    assert problems.errors == [], f"the page logged errors: {problems.errors}"
    assert problems.foreign == [], f"the page reached other hosts: {problems.foreign}"


def log_in(page: Page, server: RunningServer, username: str, password: str) -> None:
    page.goto(f"{server.url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def go(page: Page, section: str) -> None:
    """Follow a link of the main navigation, as a user would."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()
