"""A task type's delivery defaults (POST /task-types) reach its calls; a batch's own fields win."""

from __future__ import annotations

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


def test_type_defaults_apply_where_the_batch_is_silent(settings: Settings, target: Target) -> None:
    def respond(request: Received) -> Reply:
        return Reply(status=404 if request.path == "/gone" else 418)

    target.responder = respond
    with api_client(settings) as client, running_worker(settings, max_retries=0):
        configured = client.post(
            "/task-types",
            json={
                "task_type": "partner",
                "max_retries": 2,
                "retry_delay": 10,
                "retry_max_delay": 50,
                "retryable_status_codes": [404, 418],
                "headers": {"X-Tenant": "acme", "Authorization": "Bearer type-secret"},
            },
        )
        assert configured.status_code == 200, configured.text
        silent = submit(
            client, {"task_type": "partner", "url": f"{target.url}/teapot", "payloads": [{}]}
        )
        own = submit(
            client,
            {
                "task_type": "partner",
                "url": f"{target.url}/gone",
                "max_retries": 1,
                "headers": {"authorization": "Bearer batch-secret"},
                "payloads": [{}],
            },
        )
        wait_until(
            lambda: (
                all_final(settings.postgres_dsn, silent, 1)
                and all_final(settings.postgres_dsn, own, 1)
            )
        )
    [silent_row] = statuses(settings.postgres_dsn, silent)
    [own_row] = statuses(settings.postgres_dsn, own)
    # 418 is retryable for this type only, with the type's 2 retries (MAX_RETRIES=0).
    assert (silent_row["status"], silent_row["attempt"]) == ("failed", 2)
    # The batch's max_retries wins over the type's.
    assert (own_row["status"], own_row["attempt"]) == ("failed", 1)
    calls = target.requests_snapshot()
    teapot = [r for r in calls if r.path == "/teapot"]
    gone = [r for r in calls if r.path == "/gone"]
    assert (len(teapot), len(gone)) == (3, 2)
    assert all(r.headers["x-tenant"] == "acme" for r in calls)
    assert {r.headers["authorization"] for r in teapot} == {"Bearer type-secret"}
    # Header names compare without case: the batch's replaces the type's.
    assert {r.headers["authorization"] for r in gone} == {"Bearer batch-secret"}


def test_a_type_timeout_applies_and_a_batch_timeout_wins(
    settings: Settings, target: Target
) -> None:
    target.responder = lambda _request: Reply(delay=0.6)
    with api_client(settings) as client, running_worker(settings, max_retries=0, timeout=5.0):
        client.post("/task-types", json={"task_type": "hasty", "timeout": 200})
        short = submit(client, {"task_type": "hasty", "url": target.url, "payloads": [{}]})
        long = submit(
            client, {"task_type": "hasty", "url": target.url, "timeout": "3s", "payloads": [{}]}
        )
        wait_until(
            lambda: (
                all_final(settings.postgres_dsn, short, 1)
                and all_final(settings.postgres_dsn, long, 1)
            )
        )
    [short_row] = statuses(settings.postgres_dsn, short)
    [long_row] = statuses(settings.postgres_dsn, long)
    assert short_row["status"] == "failed"
    assert short_row["error"].startswith("timeout")
    assert long_row["status"] == "success"
