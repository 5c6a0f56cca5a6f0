"""The web console at /ui, driven in headless Chromium against a real API process and worker.

One operator session: log in with an API key, read the overview, find a task by
its item id, reprocess its dead letter with an edited body (checked through the
API and at the target), pause a task type. A screenshot of each page is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from taskq_core.settings import Settings
from tests.support.api_process import running_api
from tests.support.browser import OfflineBrowser
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import running_worker

KEY = "console-test-key-0123456789abcdef"
SECRET = "Bearer very-secret-token-42"


def reply_for(request: Received) -> Reply:
    """400 (permanent failure: straight to the DLQ) for a payload asking to fail."""
    body = request.json()
    return (
        Reply(400, b'{"error": "rejected"}')
        if isinstance(body, dict) and body.get("fail")
        else Reply()
    )


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target(reply_for).start()
    yield server
    server.stop()


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        running_api(settings, tmp_path / "api.log", API_KEYS=KEY) as (base_url, _),
        httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=10) as client,
    ):
        yield client


def statuses(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/tasks/{task_id}")
    assert reply.status_code == 200, reply.text
    result: list[dict[str, Any]] = reply.json()["statuses"]
    return result


def by_payload(api: httpx.Client, task_id: str) -> list[str]:
    return [entry["status"] for entry in statuses(api, task_id)]


def log_in(page: Page, base_url: str, browser: OfflineBrowser) -> None:
    page.goto(f"{base_url}/ui/")
    expect(page).to_have_url(f"{base_url}/ui/login")
    page.fill("input[name=api_key]", "not-the-key")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    browser.screenshot(page, "01-login")
    page.fill("input[name=api_key]", KEY)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/ui/")


def test_an_operator_session_in_the_console(
    settings: Settings, api: httpx.Client, target: Target, browser: OfflineBrowser
) -> None:
    base_url = str(api.base_url).rstrip("/")
    with running_worker(settings):
        created = api.post(
            "/tasks",
            json={
                "url": target.url + "/orders",
                "task_type": "billing",
                "item_id": "order-42",
                "max_retries": 0,
                "headers": {"Authorization": SECRET},
                "payloads": [{"data": {"n": 1}}, {"data": {"n": 2, "fail": True}}],
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["task_id"]
        wait_until(lambda: by_payload(api, task_id) == ["success", "failed"], timeout=30)

        page = browser.new_page()
        log_in(page, base_url, browser)

        # Overview: the type's figures, and a refresh by itself.
        row = page.locator("#overview tr[data-task-type=billing]")
        expect(row.locator("td.dlq")).to_have_text("1")
        expect(row.locator("td.chart small")).to_have_text("1 ok · 1 failed")
        expect(page.locator("#overview[data-refreshed-at]")).to_have_count(1, timeout=15_000)
        browser.screenshot(page, "02-overview")

        # Tasks: search by item id, open the task.
        page.click("nav >> text=Tasks")
        page.fill("input[name=item_id]", "order-42")
        page.click("form.filters button")
        expect(page.locator("table.tasks tbody tr")).to_have_count(1)
        browser.screenshot(page, "03-tasks")
        page.click(f"a[href='/ui/tasks/{task_id}']")
        expect(page.locator("table.messages tbody tr")).to_have_count(2)
        expect(page.locator("tr.status-failed")).to_contain_text("400")
        browser.screenshot(page, "04-task")
        assert "very-secret-token" not in page.content()

        # DLQ: select the dead letter, edit its body, confirm, and it is delivered.
        page.click("nav >> text=DLQ")
        expect(page.locator("table.dlq")).to_contain_text("[redacted]")
        assert "very-secret-token" not in page.content()
        browser.screenshot(page, "05-dlq")
        page.locator("table.dlq tbody input[type=checkbox]").first.check()
        page.fill("input[name=override_data]", '{"n": 2, "fixed": true}')
        page.click("button[value=reprocess]")
        expect(page.locator("h1")).to_have_text("Confirm: reprocess 1 dead letter(s)")
        browser.screenshot(page, "06-dlq-confirm")
        page.click("text=Yes, reprocess")
        expect(page.get_by_role("status")).to_have_text("reprocessed 1 message(s)")
        wait_until(lambda: by_payload(api, task_id) == ["success", "success"], timeout=30)
        assert {"n": 2, "fixed": True} in [request.json() for request in target.requests_snapshot()]
        assert api.get("/dlq").json()["dead_letters"] == []

        # Task types: pause, seen by the API.
        page.click("nav >> text=Task types")
        page.click("tr[data-task-type=billing] >> text=Pause")
        expect(page.get_by_role("status")).to_have_text("billing: paused")
        expect(page.locator("tr[data-task-type=billing] .badge")).to_have_text("paused")
        browser.screenshot(page, "07-types")
        types = {entry["task_type"]: entry for entry in api.get("/task-types").json()["task_types"]}
        assert types["billing"]["paused"] is True

        # A login that expires under a refreshing overview leads to the login form.
        page.click("nav >> text=Overview")
        page.context.clear_cookies(name="taskq_console_key")
        expect(page).to_have_url(f"{base_url}/ui/login", timeout=15_000)

    assert browser.blocked == []
