"""The console's rate form changes the rate limit and nothing else about a type."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.integration.test_console_security import KEY, log_in
from tests.support.api import api_client

AUTH = {"X-API-Key": KEY}


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(replace(settings, api_keys=(KEY,))) as client:
        yield client


def configure(client: TestClient[Litestar], **fields: object) -> None:
    reply = client.post("/task-types", json={"task_type": "shaped", **fields}, headers=AUTH)
    assert reply.status_code == 200, reply.text


def test_a_new_rate_keeps_adaptive_concurrency_and_defaults(
    console: TestClient[Litestar],
) -> None:
    configure(
        console,
        max_rps=50,
        adaptive=True,
        min_rps=2,
        max_concurrency=7,
        max_retries=9,
        headers={"X-Team": "payments"},
    )
    token = log_in(console)
    reply = console.post(
        "/ui/types/rate",
        data={"csrf_token": token, "task_type": "shaped", "max_rps": "20"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    view = console.get("/task-types/shaped", headers=AUTH).json()
    assert view["max_rps"] == 20
    assert (view["adaptive"], view["min_rps"], view["max_concurrency"]) == (True, 2, 7)
    assert view["max_retries"] == 9
    assert view["headers"] == {"X-Team": "payments"}
    assert view["allowed_rps"] <= 20


def test_an_adaptive_type_cannot_be_made_unlimited_from_the_form(
    console: TestClient[Litestar],
) -> None:
    configure(console, max_rps=50, adaptive=True)
    token = log_in(console)
    reply = console.post(
        "/ui/types/rate", data={"csrf_token": token, "task_type": "shaped", "max_rps": ""}
    )
    assert reply.status_code == 400
    assert "adaptive" in reply.text
    assert console.get("/task-types/shaped", headers=AUTH).json()["max_rps"] == 50


def test_an_unknown_type_is_created_with_the_rate_alone(console: TestClient[Litestar]) -> None:
    token = log_in(console)
    console.post(
        "/ui/types/rate",
        data={"csrf_token": token, "task_type": "fresh", "max_rps": "3"},
        follow_redirects=False,
    )
    view = console.get("/task-types/fresh", headers=AUTH).json()
    assert (view["max_rps"], view["adaptive"], view.get("max_concurrency")) == (3, False, None)


def test_the_api_patch_changes_the_rate_alone_and_refuses_other_fields(
    console: TestClient[Litestar],
) -> None:
    configure(console, max_rps=50, adaptive=True, max_concurrency=4)
    reply = console.patch("/task-types/shaped", json={"max_rps": 10}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    assert (reply.json()["max_rps"], reply.json()["adaptive"]) == (10, True)
    assert reply.json()["max_concurrency"] == 4
    for body, field in (
        ('{"max_rps": null}', "adaptive"),
        ('{"max_rps": 0}', "max_rps"),
        ('{"max_rps": 1e400}', "max_rps"),
        ('{"adaptive": false, "max_rps": 1}', "adaptive"),
        ("{}", "max_rps"),
    ):
        headers = {**AUTH, "Content-Type": "application/json"}
        refused = console.patch("/task-types/shaped", content=body, headers=headers)
        assert refused.status_code == 400, (body, refused.text)
        assert field in refused.text, (body, refused.text)
    for missing in ("never-seen", "nul%00type"):
        gone = console.patch(f"/task-types/{missing}", json={"max_rps": 1}, headers=AUTH)
        assert gone.status_code == 404, gone.text
    assert console.get("/task-types/shaped", headers=AUTH).json()["max_rps"] == 10
