"""Delayed and scheduled delivery through the real API, database and worker (issue 15)."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, batch, counts, queue_length
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


def _visible(dsn: str, task_type: str) -> int:
    """How many messages a worker could read now (reading hides them: tests only)."""
    with psycopg.connect(dsn) as conn:
        return len(
            conn.execute(SQL["test_take_all"], {"queue": queue_name_for(task_type)}).fetchall()
        )


def test_held_messages_are_pending_with_their_time_and_invisible(
    settings: Settings, db_dsn: str
) -> None:
    body = batch(3) | {"delay": "1h"}
    body["payloads"][2]["delay"] = 0
    with api_client(settings) as client:
        before = datetime.now(UTC)
        task_id = submit(client, body)
        view = client.get(f"/tasks/{task_id}").json()["statuses"]

    assert [row["status"] for row in view] == ["pending"] * 3
    held = [datetime.fromisoformat(row["scheduled_for"]) for row in view[:2]]
    assert all(before + timedelta(minutes=59) < at < before + timedelta(minutes=61) for at in held)
    assert view[2]["scheduled_for"] is None
    assert queue_length(db_dsn, "sync") == 3
    assert _visible(db_dsn, "sync") == 1


def test_bad_schedules_are_refused_whole_naming_the_field(settings: Settings, db_dsn: str) -> None:
    far = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    cases = [
        ({"delay": -5}, "delay"),
        ({"not_before": "next tuesday"}, "not_before"),
        ({"not_before": far}, "not_before"),
        ({"delay": "1s", "not_before": "2030-01-01T00:00:00Z"}, "delay"),
        ({"delay": 10**30}, "delay"),
        ({"delay": 1.5}, "delay"),
        ({"delay": "1e400"}, "delay"),
        ({"delay": "9" * 400 + "h"}, "delay"),
        ({"not_before": "2030-01-01T00:00:00Z" + " " * 10_000}, "not_before"),
        ({"not_before": 1893456000}, "not_before"),
        ({"not_before": "9999-12-31T23:59:59.999999999-23:59"}, "not_before"),
    ]
    with api_client(settings) as client:
        for fields, field in cases:
            response = client.post("/tasks", json=batch(2) | fields)
            assert response.status_code == 400, fields
            assert response.json()["field"] == field
        payload_level = batch(2)
        payload_level["payloads"][1]["delay"] = "-1ms"
        response = client.post("/tasks", json=payload_level)
        assert response.status_code == 400
        assert response.json()["field"] == "payloads[1].delay"
    assert counts(db_dsn)[0] == 0


def test_a_past_not_before_is_delivered_at_once(settings: Settings, target: Target) -> None:
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(client, batch(1, url=target.url) | {"not_before": "2001-01-01T00:00:00Z"})
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    (row,) = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "success"
    assert row["scheduled_for"] is None


def test_held_messages_are_delivered_at_their_time_by_an_idle_worker(
    settings: Settings, target: Target
) -> None:
    arrivals: dict[int, float] = {}

    def record(request: Received) -> Reply:
        arrivals[request.json()["n"]] = time.time()  # type: ignore[index]
        return Reply()

    target.responder = record
    delays_ms = [400, 800, 1200, 1600, 2000]
    with api_client(settings) as client, running_worker(settings):
        # The worker is idle and has read the queue dry before anything is due.
        submit(
            client,
            batch(1, url=target.url, task_type="timed") | {"payloads": [{"data": {"n": -1}}]},
        )
        wait_until(lambda: target.count() == 1)
        body = batch(0, url=target.url, task_type="timed")
        body["payloads"] = [{"data": {"n": n}, "delay": ms} for n, ms in enumerate(delays_ms)]
        task_id = submit(client, body)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, len(delays_ms)), timeout=15)
    rows = statuses(settings.postgres_dsn, task_id)
    lateness = [arrivals[n] - row["scheduled_for"].timestamp() for n, row in enumerate(rows)]
    assert [row["status"] for row in rows] == ["success"] * len(delays_ms)
    assert min(lateness) >= 0, lateness  # never early
    # Issue 15: within 100 ms of its time when workers are idle (the median, so
    # that one slice of a loaded CI machine does not decide it).
    assert statistics.median(lateness) < 0.1, lateness


def test_a_held_message_can_be_cancelled_and_is_never_called(
    settings: Settings, target: Target
) -> None:
    with api_client(settings) as client:
        task_id = submit(client, batch(2, url=target.url, task_type="held") | {"delay": "1h"})
        response = client.delete(f"/tasks/{task_id}")
        view = client.get(f"/tasks/{task_id}").json()["statuses"]
    assert response.status_code == 200, response.text
    assert response.json()["cancelled_count"] == 2
    assert response.json()["in_flight_count"] == 0
    assert [row["status"] for row in view] == ["cancelled"] * 2
    assert queue_length(settings.postgres_dsn, "held") == 0
