"""GET /task-types figures, and pause/resume across worker replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch, queue_length
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit, submit_many

OBSERVE_SECONDS = 1.5
"""How long a test watches for calls that must not happen (a negative needs a window)."""


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def figures(client: TestClient[Litestar]) -> dict[str, dict[str, Any]]:
    response = client.get("/task-types")
    assert response.status_code == 200, response.text
    return {entry["task_type"]: entry for entry in response.json()["task_types"]}


def test_figures_of_every_type(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    client.post("/task-types", json={"task_type": "limited", "max_rps": 7.5})
    target.responder = lambda request: Reply(status=422 if request.path == "/dead" else 200)
    with running_worker(settings):
        dead = submit_many(client, "dead", f"{target.url}/dead", 3)
        done = submit_many(client, "fast", target.url, 30)
        for task_id in (dead, done):
            wait_until(
                lambda t=task_id: all_final(
                    settings.postgres_dsn, t, len(statuses(settings.postgres_dsn, t))
                )
            )
    client.post("/tasks", json=batch(5, task_type="queued"))  # no worker runs now

    by_type = figures(client)
    assert list(by_type) == sorted(by_type) == ["dead", "fast", "limited", "queued"]
    queued = by_type["queued"]
    assert (queued["backlog"], queued["visible"], queued["in_flight"], queued["dlq_depth"]) == (
        5,
        5,
        0,
        0,
    )
    assert queued["paused"] is False
    assert queued["max_rps"] is None
    assert by_type["dead"]["dlq_depth"] == 3
    assert by_type["dead"]["backlog"] == 0
    assert by_type["limited"]["max_rps"] == 7.5
    assert by_type["fast"]["effective_rps"] == pytest.approx(30 / 60, abs=0.01)
    assert by_type["fast"]["backlog"] == 0
    assert set(queued) == {
        "task_type",
        "max_rps",
        "paused",
        "created_at",
        "updated_at",
        "backlog",
        "visible",
        "in_flight",
        "retrying",
        "oldest_age_seconds",
        "dlq_depth",
        "effective_rps",
        "allowed_rps",
        "adaptive",
        "signed",
    }
    assert (queued["allowed_rps"], queued["adaptive"]) == (None, False)  # unlimited
    assert by_type["limited"]["allowed_rps"] == 7.5


def test_the_listing_shows_the_configuration_the_single_view_shows(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    configured = {
        "task_type": "shaped",
        "max_rps": 5,
        "max_concurrency": 3,
        "max_retries": 7,
        "timeout": "2s",
        "retryable_status_codes": [429, 503],
        "headers": {"Authorization": "Bearer secret-value", "X-Tenant": "acme"},
    }
    assert client.post("/task-types", json=configured).status_code == 200
    target.responder = lambda _request: Reply(status=429, headers={"Retry-After": "60"})
    with running_worker(settings):
        submit_many(client, "shaped", target.url, 1)
        wait_until(lambda: "snoozed_until" in figures(client)["shaped"], timeout=10)
    listed = figures(client)["shaped"]
    single = client.get("/task-types/shaped").json()
    assert {key: listed[key] for key in single} == single
    assert listed["max_concurrency"] == 3
    assert listed["snoozed_until"] == single["snoozed_until"]
    assert listed["headers"]["Authorization"] == "[redacted]"
    assert "secret-value" not in str(listed)


def test_pause_without_a_json_content_type_is_refused(client: TestClient[Litestar]) -> None:
    """A web page could send a bodiless POST cross-origin without a preflight: 415, not a pause."""
    client.post("/task-types", json={"task_type": "t", "max_rps": 1})
    response = client.post("/task-types/t/pause")
    assert response.status_code == 415
    assert figures(client)["t"]["paused"] is False


def test_pause_and_resume_unknown_type_is_404(client: TestClient[Litestar]) -> None:
    for action in ("pause", "resume"):
        response = client.post(f"/task-types/nope/{action}", json={})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert client.post("/task-types/nul%00/pause", json={}).status_code == 404


def test_a_paused_type_stays_queued_retries_included_and_resumes_on_every_replica(
    client: TestClient[Litestar], settings: Settings, target: Target
) -> None:
    attempts: dict[str, int] = {}

    def first_fails(request: Any) -> Reply:
        key = request.headers["idempotency-key"]
        attempts[key] = attempts.get(key, 0) + 1
        # Payload 0 fails once, so a retry is pending when the type is paused.
        return Reply(status=503 if key.endswith(":0") and attempts[key] == 1 else 200)

    target.responder = first_fails
    total = 200
    with ExitStack() as stack:
        for _ in range(2):  # two replicas
            stack.enter_context(running_worker(settings, max_workers=2))
        client.post("/task-types", json={"task_type": "p", "max_rps": 40})
        task_id = submit(
            client,
            {
                "task_type": "p",
                "url": target.url,
                "retry_delay": 1500,
                "payloads": [{"data": n} for n in range(total)],
            },
        )
        wait_until(lambda: target.count() >= 20)
        response = client.post("/task-types/p/pause", json={})
        assert response.json() == {"task_type": "p", "paused": True}
        paused_at = time.monotonic()
        assert figures(client)["p"]["paused"] is True
        time.sleep(1.0 + OBSERVE_SECONDS)  # the pause takes up to a second; then none may start
        calls_then = [r for r in target.requests_snapshot() if r.at > paused_at + 1.0]
        assert calls_then == []
        pending = [
            row for row in statuses(settings.postgres_dsn, task_id) if row["status"] == "pending"
        ]
        assert pending, "everything was delivered before the pause: nothing was tested"
        assert queue_length(settings.postgres_dsn, "p") == len(pending)

        resumed = client.post("/task-types/p/resume", json={}).json()
        assert resumed == {"task_type": "p", "paused": False}
        wait_until(
            lambda: all(
                row["status"] == "success" for row in statuses(settings.postgres_dsn, task_id)
            ),
            timeout=30,
        )
    assert attempts[f"{task_id}:0"] == 2
    assert sum(attempts.values()) == total + 1
