"""What a batch of outcomes costs the database, and what it must not depend on (issue 13).

A delivered message's status row gets one new version (its reply rides in the
status update), and the batch's calls per host are added to the breakers in
the outcome transaction; a fault in that part never holds the outcomes back.
"""

from __future__ import annotations

from taskq_core.settings import Settings
from tests.support import faults
from tests.support.api import api_client
from tests.support.target import Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit_many

WORKER = "taskq-worker"  # the worker pool's application_name


def status_row_versions(dsn: str) -> int:
    return int(faults.run(dsn, "fault_status_row_versions")[0][1])


def test_a_success_and_its_reply_are_one_new_version_of_the_status_row(
    settings: Settings, target: Target
) -> None:
    count = 20
    with api_client(settings) as client:
        task_id = submit_many(client, "one-write", target.url, count)
        with running_worker(settings):
            wait_until(lambda: all_final(settings.postgres_dsn, task_id, count), timeout=20)
        # The worker's statistics reach the counters when its connections close.
        wait_until(lambda: not faults.connected(settings.postgres_dsn, WORKER), timeout=10)
        wait_until(lambda: status_row_versions(settings.postgres_dsn) >= count, timeout=10)

        assert status_row_versions(settings.postgres_dsn) == count
        view = client.get(f"/tasks/{task_id}").json()["statuses"]
    assert {row["status"] for row in view} == {"success"}
    assert all(row["response"] is not None for row in view)  # the reply was kept all the same


def test_outcomes_are_written_when_the_breakers_cannot_be(
    settings: Settings, target: Target
) -> None:
    faults.run(settings.postgres_dsn, "fault_break_host_calls")
    with api_client(settings) as client, running_worker(settings):
        task_id = submit_many(client, "breakers-broken", target.url, 10)
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 10), timeout=20)

    rows = statuses(settings.postgres_dsn, task_id)
    assert [row["status"] for row in rows] == ["success"] * 10
    assert [row["attempt"] for row in rows] == [0] * 10  # written once: no call was repeated
    assert len(target.received) == 10
