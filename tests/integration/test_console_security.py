"""The /ui console: keys via an http-only cookie, CSRF on every form that changes state,
HTML error pages instead of 500s for hostile input, and no way around the API's own guard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch

KEY = "console-key-0123456789abcdef"
STATE_CHANGING_FORMS = [
    ("/ui/types/rate", {"task_type": "sync", "max_rps": "5"}),
    ("/ui/types/pause", {"task_type": "sync"}),
    ("/ui/types/resume", {"task_type": "sync"}),
    ("/ui/dlq/confirm", {"action": "purge", "message_id": "1"}),
    ("/ui/dlq/apply", {"action": "purge", "message_id": "1"}),
    ("/ui/login", {"api_key": KEY}),
    ("/ui/logout", {"next": "/ui/login"}),
]


def csrf_token(client: TestClient[Litestar]) -> str:
    page = client.get("/ui/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(replace(settings, api_keys=(KEY,))) as client:
        yield client


def log_in(client: TestClient[Litestar]) -> str:
    token = csrf_token(client)
    reply = client.post(
        "/ui/login", data={"csrf_token": token, "api_key": KEY}, follow_redirects=False
    )
    assert reply.status_code == 303
    return token


def test_pages_need_a_login_and_the_cookie_is_locked_down(
    console: TestClient[Litestar],
) -> None:
    for path in ("/ui/", "/ui/types", "/ui/tasks", "/ui/dlq", "/ui/overview/fragment"):
        reply = console.get(path, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, "/ui/login"), path
    assert console.get("/ui/static/console.js").status_code == 200  # assets are public

    token = csrf_token(console)
    refused = console.post("/ui/login", data={"csrf_token": token, "api_key": KEY + "x"})
    assert refused.status_code == 401
    reply = console.post(
        "/ui/login", data={"csrf_token": token, "api_key": KEY}, follow_redirects=False
    )
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith("taskq_console_key=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/ui"):
        assert flag in cookie
    page = console.get("/ui/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # The console's cookie is not an API credential: the API still wants the header.
    assert console.get("/task-types").status_code == 401


def test_every_state_changing_form_needs_the_csrf_token(console: TestClient[Litestar]) -> None:
    token = log_in(console)
    assert console.post("/tasks", json=batch(1), headers={"X-API-Key": KEY}).status_code == 201
    for path, fields in STATE_CHANGING_FORMS:
        for sent in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
            reply = console.post(path, data={**fields, **sent}, follow_redirects=False)
            assert reply.status_code == 403, (path, sent, reply.text)
            assert "CSRF" in reply.text
    paused = console.post(
        "/ui/types/pause", data={"csrf_token": token, "task_type": "sync"},
        follow_redirects=False,
    )  # fmt: skip
    assert paused.status_code == 303
    assert console.get("/task-types", headers={"X-API-Key": KEY}).json()["task_types"][0]["paused"]


@pytest.mark.parametrize(
    ("path", "fields", "status", "says"),
    [
        ("/ui/types/rate", {"task_type": "x", "max_rps": "1e400"}, 400, "max_rps"),
        ("/ui/types/rate", {"task_type": "x", "max_rps": "-1"}, 400, "max_rps"),
        ("/ui/types/rate", {"task_type": "x", "max_rps": "nan"}, 400, "max_rps"),
        ("/ui/types/rate", {"task_type": "a\x00b", "max_rps": "1"}, 400, "task_type"),
        ("/ui/types/rate", {"task_type": "t" * 201}, 400, "task_type"),
        ("/ui/types/pause", {"task_type": "never-seen"}, 404, "never-seen"),
        ("/ui/dlq/confirm", {"action": "purge"}, 400, "select at least one"),
        ("/ui/dlq/confirm", {"action": "purge", "message_id": "9" * 30}, 400, "message ids"),
        ("/ui/dlq/confirm", {"action": "purge", "message_id": "0"}, 400, "message ids"),
        ("/ui/dlq/confirm", {"action": "drop", "message_id": "1"}, 400, "reprocess or purge"),
        (
            "/ui/dlq/confirm",
            {"action": "reprocess", "message_id": "1", "override_data": "{" * 5000},
            400,
            "not JSON",
        ),
        (
            "/ui/dlq/confirm",
            {"action": "reprocess", "message_id": "1", "override_url": "ftp://x/"},
            400,
            "url",
        ),
    ],
)
def test_hostile_form_input_gets_an_error_page(
    console: TestClient[Litestar], path: str, fields: dict[str, str], status: int, says: str
) -> None:
    token = log_in(console)
    reply = console.post(path, data={"csrf_token": token, **fields})
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("text/html")
    assert says in reply.text


def test_hostile_queries_get_an_error_page(console: TestClient[Litestar]) -> None:
    log_in(console)
    for path, status in [
        ("/ui/tasks?status=bogus", 400),
        ("/ui/tasks?cursor=not-a-cursor", 400),
        ("/ui/tasks?task_id=nope", 400),
        ("/ui/tasks?item_id=" + "x" * 5000, 400),
        ("/ui/dlq?task_id=nope", 400),
        ("/ui/tasks/00000000-0000-0000-0000-000000000000", 404),
    ]:
        reply = console.get(path)
        assert reply.status_code == status, (path, reply.text)
        assert reply.headers["content-type"].startswith("text/html"), path


def test_forms_only_take_urlencoded_bodies(console: TestClient[Litestar]) -> None:
    token = log_in(console)
    reply = console.post(
        "/ui/types/pause",
        content=f'{{"csrf_token": "{token}", "task_type": "sync"}}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 415
    assert "x-www-form-urlencoded" in reply.text
    # The API itself still wants JSON.
    api = console.post("/tasks", data={"url": "x"}, headers={"X-API-Key": KEY})
    assert api.status_code == 415


def test_without_keys_the_console_is_open_but_forms_still_need_csrf(settings: Settings) -> None:
    with api_client(settings) as client:
        assert client.get("/ui/").status_code == 200
        assert client.post("/ui/types/pause", data={"task_type": "x"}).status_code == 403


def test_task_search_by_id_and_pages(console: TestClient[Litestar]) -> None:
    log_in(console)
    ids = [
        console.post("/tasks", json=batch(1), headers={"X-API-Key": KEY}).json()["task_id"]
        for _ in range(27)
    ]
    found = console.get(f"/ui/tasks?task_id={ids[0]}", follow_redirects=False)
    assert found.headers["location"] == f"/ui/tasks/{ids[0]}"
    first = console.get("/ui/tasks?task_type=sync")
    assert first.text.count('<a href="/ui/tasks/') == 25
    assert ids[-1] in first.text  # newest first
    next_link = re.search(r'<a class="next" href="([^"]+)"', first.text)
    assert next_link is not None
    second = console.get(next_link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert second.text.count('<a href="/ui/tasks/') == 2
    assert ids[0] in second.text
    assert '<a class="next"' not in second.text
