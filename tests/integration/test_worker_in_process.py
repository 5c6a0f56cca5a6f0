"""A worker Supervisor run inside another program leaves that program's threads alone.

Pinning to one CPU (WORKER_CPU_AFFINITY) is the worker process's own business,
done by its entry points; a Supervisor embedded elsewhere (as these tests do)
must not pin the host's threads.
"""

from __future__ import annotations

import os

import pytest

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.target import Target, wait_until
from tests.support.worker import all_final, running_worker, submit_many

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs a Linux machine with two CPUs or more",
)


def thread_cpus() -> set[frozenset[int]]:
    found = set()
    for task in os.listdir("/proc/self/task"):
        try:
            found.add(frozenset(os.sched_getaffinity(int(task))))
        except ProcessLookupError:
            continue
    return found


def test_an_embedded_supervisor_pins_no_thread_of_its_host(
    settings: Settings, target: Target
) -> None:
    before = thread_cpus()
    assert len(before) == 1  # every thread may run on the same CPUs
    with api_client(settings) as client:
        task_id = submit_many(client, "embedded", target.url, 200)
    with running_worker(settings, worker_cpu_affinity="auto"):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 200), timeout=30)
        assert thread_cpus() == before
