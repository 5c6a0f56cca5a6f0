"""A fault confined to one task type stays with that type, in the recorder as in the fetcher."""

from __future__ import annotations

from loguru import logger

from taskq_core.settings import Settings
from tests.support import faults
from tests.support.api import api_client
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit


def test_outcomes_of_a_type_whose_queue_vanished_mid_call_are_dropped_not_the_process(
    settings: Settings, target: Target
) -> None:
    dsn = settings.postgres_dsn

    def slow_first(request: Received) -> Reply:
        return Reply(delay=1.0) if request.path == "/slow" and target.count() <= 1 else Reply()

    target.responder = slow_first
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}", level="WARNING")
    try:
        with api_client(settings) as client:
            task_id = submit(
                client,
                {"task_type": "vanishing", "url": f"{target.url}/slow", "payloads": [{"data": 1}]},
            )
        # A short visibility timeout: the message is then hidden only as long as its
        # call may take (longest_call + LONG_CALL_MARGIN, ~12 s), not the default 30 s.
        with running_worker(settings, timeout=1.0, visibility_timeout=5.0) as worker:
            wait_until(lambda: target.count() >= 1, timeout=10)
            table = faults.queue_table("vanishing")
            faults.run(dsn, "fault_rename_table", old=table, new=f"{table}_away")
            wait_until(
                lambda: any(
                    "could not record 1 outcome(s) of task type vanishing" in line for line in lines
                ),
                timeout=10,
            )
            with api_client(settings) as client:
                other = submit(
                    client, {"task_type": "steady", "url": target.url, "payloads": [{"data": 2}]}
                )
            wait_until(lambda: all_final(dsn, other, 1), timeout=5)
            assert worker.metrics.thread_restarts.labels("recorder")._value.get() == 0
            assert worker.not_ready() is None

            faults.run(dsn, "fault_rename_table", old=f"{table}_away", new=table)
            # The dropped outcome's message reappears when its hiding ends, and is sent again.
            wait_until(lambda: all_final(dsn, task_id, 1), timeout=40)
    finally:
        logger.remove(sink)
    assert [row["status"] for row in statuses(dsn, task_id)] == ["success"]
    assert target.count() == 3, "the first call, the other type's, the repeat"
