"""Fixtures of the browser tests: an offline headless Chromium, screenshots kept per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import OfflineBrowser, offline_browser


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """tmp_path/screenshots, or TASKQ_SCREENSHOTS/<test name> to keep them after the run."""
    keep = os.environ.get("TASKQ_SCREENSHOTS")
    return Path(keep) / request.node.name if keep else tmp_path / "screenshots"


@pytest.fixture
def browser(screenshots: Path) -> Iterator[OfflineBrowser]:
    with offline_browser(screenshots) as chromium:
        yield chromium
