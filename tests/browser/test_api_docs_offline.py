"""The API docs render in a browser that cannot reach the internet (issue 17).

Before, Swagger UI's JS and CSS came from a CDN: offline, the page was blank.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from taskq_core.settings import Settings
from tests.support.api_process import running_api
from tests.support.browser import OfflineBrowser

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def operations_in_spec() -> int:
    paths = json.loads(SPEC.read_text())["paths"]
    return sum(len(operations) for operations in paths.values())


def test_swagger_ui_renders_every_operation_offline(
    settings: Settings, tmp_path: Path, browser: OfflineBrowser
) -> None:
    with running_api(settings, tmp_path / "api.log") as (base_url, _):
        page = browser.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{base_url}/swagger/index.html")
        page.locator(".opblock").first.wait_for(state="visible")
        browser.screenshot(page, "swagger")

        assert page.url == f"{base_url}/schema/swagger"
        assert page.locator(".opblock").count() == operations_in_spec()
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any(path.replace("\u200b", "") == "/tasks" for path in paths), paths
        assert page.locator(".info .title").inner_text().startswith("taskq")
        favicon = page.locator("link[rel=icon]").get_attribute("href")
        assert favicon is not None
        assert favicon.startswith("/static/swagger-ui/")
        assert httpx.get(base_url + favicon).headers["content-type"] == "image/png"
        assert browser.blocked == []
        assert failed == []
