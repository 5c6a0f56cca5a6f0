"""The delivery engine end to end: API submission, a real worker, a real HTTP target."""

from __future__ import annotations

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


def test_success_path_delivers_every_payload_with_headers(
    settings: Settings, target: Target
) -> None:
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {
                "task_type": "sync",
                "url": f"{target.url}/accounts",
                "method": "PUT",
                "headers": {"Authorization": "Bearer secret"},
                "payloads": [{"data": {"n": n}} for n in range(5)],
            },
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 5))
    rows = statuses(settings.postgres_dsn, task_id)
    assert [row["status"] for row in rows] == ["success"] * 5
    assert all(row["http_status"] == 200 and row["attempt"] == 0 for row in rows)
    assert all(row["duration_ms"] is not None for row in rows)
    received = sorted(target.requests_snapshot(), key=lambda r: r.json()["n"])  # type: ignore[index]
    assert [r.json() for r in received] == [{"n": n} for n in range(5)]
    first = received[0]
    assert first.method == "PUT"
    assert first.path == "/accounts"
    assert first.headers["authorization"] == "Bearer secret"
    assert first.headers["idempotency-key"] == f"{task_id}:0"
    assert first.headers["x-taskq-task-id"] == task_id
    assert first.headers["x-taskq-attempt"] == "1"
    assert first.headers["content-type"] == "application/json"


def test_api_override_replaces_url_method_and_merges_headers(
    settings: Settings, target: Target
) -> None:
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {
                "url": f"{target.url}/default",
                "headers": {"X-A": "batch", "X-B": "batch"},
                "payloads": [
                    {
                        "data": 1,
                        "api_override": {
                            "url": f"{target.url}/other",
                            "method": "PATCH",
                            "headers": {"X-B": "override"},
                        },
                    },
                    {"data": 2},
                ],
            },
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 2))
    by_body = {r.json(): r for r in target.requests_snapshot()}
    assert by_body[1].path == "/other"
    assert by_body[1].method == "PATCH"
    assert by_body[1].headers["x-a"] == "batch"
    assert by_body[1].headers["x-b"] == "override"
    assert by_body[2].path == "/default"
    assert by_body[2].method == "POST"


def test_retry_then_success(settings: Settings, target: Target) -> None:
    seen: dict[str, int] = {}

    def flaky(request: Received) -> Reply:
        key = request.headers["idempotency-key"]
        seen[key] = seen.get(key, 0) + 1
        return Reply(status=503) if seen[key] <= 2 else Reply(status=201)

    target.responder = flaky
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client, {"url": target.url, "retry_delay": 50, "payloads": [{"data": {"n": 1}}]}
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "success"
    assert row["attempt"] == 2
    assert row["http_status"] == 201
    attempts = [r.headers["x-taskq-attempt"] for r in target.requests_snapshot()]
    assert attempts == ["1", "2", "3"]


def test_retry_after_is_honoured(settings: Settings, target: Target) -> None:
    def limited(request: Received) -> Reply:
        if target.count() == 1:
            return Reply(status=429, headers={"Retry-After": "1"})
        return Reply()

    target.responder = limited
    with (
        api_client(
            settings,
        ) as client,
        running_worker(settings, retry_max_delay=5.0),
    ):
        task_id = submit(
            client, {"url": target.url, "retry_delay": 10, "payloads": [{"data": None}]}
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    first, second = target.requests_snapshot()
    # The computed backoff would be ~10 ms; Retry-After asked for a full second.
    # The retry is read when it comes due, not at the next idle poll of its
    # queue (those back off to a second apart).
    assert 0.95 <= second.at - first.at < 1.2
    # A 429 snoozes: the call after it is still the first attempt (design decision 11).
    assert second.headers["x-taskq-attempt"] == "1"


def test_client_error_is_not_retried_and_goes_to_dlq(settings: Settings, target: Target) -> None:
    target.responder = lambda _request: Reply(status=404)
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(client, {"url": target.url, "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert row["error"] == "HTTP 404"
    assert row["dlq_message_id"] is not None
    assert target.count() == 1


def test_exhausted_retries_go_to_dlq_then_reprocess_succeeds(
    settings: Settings, target: Target
) -> None:
    healthy = {"value": False}
    target.responder = lambda _request: Reply() if healthy["value"] else Reply(status=500)
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {
                "task_type": "flaky",
                "url": target.url,
                "max_retries": 2,
                "retry_delay": 10,
                "payloads": [{"data": 1}, {"data": 2}],
            },
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 2))
        rows = statuses(settings.postgres_dsn, task_id)
        assert [row["status"] for row in rows] == ["failed", "failed"]
        assert all(row["attempt"] == 2 for row in rows)
        assert all("gave up after 3 attempts" in row["error"] for row in rows)
        assert target.count() == 6

        healthy["value"] = True
        response = client.post("/dlq/reprocess", json={"task_id": task_id})
        assert response.status_code in (200, 201), response.text
        assert response.json()["reprocessed_count"] == 2
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 2))
        again = client.post("/dlq/reprocess", json={"task_type": "flaky"})
        assert again.json()["reprocessed_count"] == 0
    rows = statuses(settings.postgres_dsn, task_id)
    assert [row["status"] for row in rows] == ["success", "success"]
    assert target.count() == 8


def test_timeout_is_retried_then_fails(settings: Settings, target: Target) -> None:
    target.responder = lambda _request: Reply(delay=1.0)
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {
                "url": target.url,
                "timeout": 200,
                "max_retries": 1,
                "retry_delay": 10,
                "payloads": [{"data": 1}],
            },
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1), timeout=15)
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("timeout")
    assert row["duration_ms"] < 900


def test_connection_refused_is_retryable(settings: Settings) -> None:
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {
                "url": "http://127.0.0.1:9/closed",
                "max_retries": 1,
                "retry_delay": 10,
                "payloads": [{"data": 1}],
            },
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert row["attempt"] == 1
    assert row["error"].startswith("connection error")


def test_a_call_longer_than_the_visibility_timeout_is_not_delivered_twice(
    settings: Settings, target: Target
) -> None:
    target.responder = lambda _request: Reply(delay=2.5)
    with api_client(settings) as client, running_worker(settings, visibility_timeout=1.0):
        task_id = submit(client, {"url": target.url, "timeout": 5000, "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1), timeout=15)
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "success"
    assert target.count() == 1


def test_a_cookie_one_target_sets_is_never_sent_on_other_calls(
    settings: Settings, target: Target
) -> None:
    def responder(request: Received) -> Reply:
        if request.path == "/login":
            return Reply(headers={"Set-Cookie": "session=tenant-a; Path=/"})
        if request.path == "/moved":  # a redirect hop is where a session's cookies join in
            return Reply(status=307, headers={"Location": f"{target.url}/elsewhere"})
        return Reply()

    target.responder = responder
    with api_client(settings) as client, running_worker(settings, max_workers=1):
        first = submit(client, {"url": f"{target.url}/login", "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, first, 1))
        second = submit(client, {"url": f"{target.url}/moved", "payloads": [{"data": 2}]})
        wait_until(lambda: all_final(settings.postgres_dsn, second, 1))
    received = target.requests_snapshot()
    assert [r.path for r in received] == ["/login", "/moved", "/elsewhere"]
    assert all("cookie" not in r.headers for r in received)
