"""Browser tests: Playwright driving real Chromium (/usr/bin/chromium, Debian package `chromium`) against a
live server. Without Chromium they skip, saying why; with ORCHESTRA_REQUIRE_BROWSER=1 (CI) a missing
browser fails instead. Screenshots of the pages go to test-artifacts/screenshots/ (not committed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path(os.environ.get("ORCHESTRA_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# As root in a container Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _missing(reason: str) -> None:
    if os.environ.get("ORCHESTRA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ORCHESTRA_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (install the Debian package `chromium`, or set ORCHESTRA_CHROMIUM)")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (make install)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Site:
    """The live server as a browser user sees it: one browser context (cookies) per signed-in user."""

    def __init__(self, browser: object, base: str, test_name: str) -> None:
        self.browser = browser
        self.base = base
        self.test_name = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name)
        self.contexts: list[object] = []
        self.shots = 0

    def url(self, path: str) -> str:
        return self.base + path

    def new_page(self, *, width: int = 1200, height: int = 900) -> object:
        context = self.browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors
        return page

    def login(self, username: str, password: str, **size: int) -> object:
        page = self.new_page(**size)
        page.goto(self.url("/orchestra/accounts/login/"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/orchestra/app/")
        return page

    def shot(self, page: object, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        page.screenshot(path=str(SCREENSHOTS / f"{self.test_name}-{self.shots:02d}-{name}.png"), full_page=True)  # type: ignore[attr-defined]

    def close(self) -> None:
        for context in self.contexts:
            context.close()  # type: ignore[attr-defined]


@pytest.fixture
def site(browser, live_server, settings, media, request) -> Iterator[Site]:
    # Files and images link to the live server, so the browser can load them.
    settings.ORCHESTRA_URL = live_server.url
    settings.STATIC_ROOT = media.parent / "static"
    site = Site(browser, live_server.url, request.node.name)
    yield site
    site.close()
