"""Targets that misbehave, and targets the egress policy must refuse."""

from __future__ import annotations

import time

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.hostile import RawTarget
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit, submit_many


def test_resets_and_garbage_are_retried_then_failed_while_others_flow(
    settings: Settings, target: Target
) -> None:
    resetting = RawTarget(b"").start()
    garbage = RawTarget(b"\x00\xffnot http at all\r\n\r\n").start()
    try:
        with api_client(settings) as client, running_worker(settings, max_workers=4):
            bad = [
                submit(
                    client,
                    {
                        "task_type": name,
                        "url": hostile.url,
                        "max_retries": 1,
                        "retry_delay": 10,
                        "payloads": [{"data": n} for n in range(3)],
                    },
                )
                for name, hostile in (("reset", resetting), ("garbage", garbage))
            ]
            good = submit_many(client, "fine", target.url, 20)
            wait_until(lambda: all_final(settings.postgres_dsn, good, 20), timeout=15)
            for task_id in bad:
                wait_until(lambda t=task_id: all_final(settings.postgres_dsn, t, 3), timeout=15)
    finally:
        resetting.stop()
        garbage.stop()
    for task_id in bad:
        rows = statuses(settings.postgres_dsn, task_id)
        assert {row["status"] for row in rows} == {"failed"}
        assert all(row["attempt"] == 1 for row in rows)
        assert all(row["error"].startswith("connection error") for row in rows)


def test_huge_and_dripping_bodies_do_not_hold_a_thread(settings: Settings, target: Target) -> None:
    def respond(request: Received) -> Reply:
        if request.path == "/huge":
            return Reply(body=b"x" * (8 * 1024 * 1024))
        return Reply()

    target.responder = respond
    with api_client(settings) as client, running_worker(settings, max_workers=2):
        huge = submit(client, {"url": f"{target.url}/huge", "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, huge, 1), timeout=15)
    [row] = statuses(settings.postgres_dsn, huge)
    assert row["status"] == "success"


def test_egress_policy_refuses_blocked_addresses_permanently(
    settings: Settings, target: Target
) -> None:
    # The API refuses what it can decide at submission (tested with the API); a
    # worker must still refuse on its own, for messages queued before the policy.
    with api_client(settings) as client:
        task_id = submit(client, {"url": target.url, "payloads": [{"data": 1}]})
    with running_worker(settings, egress_block_private=True):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("egress refused")
    assert target.count() == 0


def test_allowlisted_name_cannot_redirect_into_a_blocked_range(
    settings: Settings, target: Target
) -> None:
    port = target.url.rsplit(":", 1)[1]

    def respond(request: Received) -> Reply:
        if request.path == "/start":
            return Reply(status=302, headers={"Location": f"http://127.0.0.1:{port}/inside"})
        return Reply()

    target.responder = respond
    with api_client(settings) as client:
        task_id = submit(
            client, {"url": f"http://localhost:{port}/start", "payloads": [{"data": 1}]}
        )
    started = time.monotonic()
    with running_worker(settings, egress_block_private=True, egress_allowlist=("localhost",)):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert "127.0.0.1" in row["error"]
    assert [r.path for r in target.requests_snapshot()] == ["/start"]
    assert time.monotonic() - started < 10


def test_redirects_can_be_turned_off(settings: Settings, target: Target) -> None:
    target.responder = lambda request: (
        Reply(status=302, headers={"Location": "/next"}) if request.path == "/first" else Reply()
    )
    with api_client(settings) as client, running_worker(settings, follow_redirects=False):
        task_id = submit(client, {"url": f"{target.url}/first", "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "failed"
    assert row["error"] == "HTTP 302"
    assert [r.path for r in target.requests_snapshot()] == ["/first"]
