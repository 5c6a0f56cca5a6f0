"""Headless Debian Chromium driven by Playwright, with every non-local request blocked.

Playwright uses the system browser (no browser download: none is reachable here);
`.ci/run` installs Debian's `chromium` when it is missing. Requests to anything but
127.0.0.1/localhost are aborted and recorded, so a page that needs the internet
fails its test instead of passing on a machine that happens to be online.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = Path(os.environ.get("TASKQ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def require_chromium() -> Path:
    """The browser's path, or a skip that says how to get it."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does) "
            "or set TASKQ_CHROMIUM to a Chromium binary"
        )
    return CHROMIUM if CHROMIUM.exists() else Path(str(shutil.which("chromium")))


@dataclass
class OfflineBrowser:
    """A browser whose pages reach only this machine; `blocked` lists what they tried."""

    browser: Browser
    screenshots: Path
    blocked: list[str] = field(default_factory=list)

    def new_page(self) -> Page:
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", self._only_local)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    def screenshot(self, page: Page, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def _only_local(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"} or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@contextmanager
def offline_browser(screenshots: Path) -> Iterator[OfflineBrowser]:
    executable = require_chromium()
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield OfflineBrowser(browser, screenshots)
        finally:
            browser.close()
