"""Worker decisions outside the HTTP call: stale buffered messages, dead-letter reasons."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from taskq_core.deliveries import Delivery, Failed
from taskq_core.models import QueuedCall
from taskq_core.settings import Settings
from taskq_core.status import TaskStatus
from taskq_worker.metrics import WorkerMetrics
from taskq_worker.supervisor import Supervisor


def delivery(*, timeout_ms: int | None, hidden_for: float) -> Delivery:
    call = QueuedCall(
        task_id="t",
        payload_id=0,
        task_type="x",
        url="http://127.0.0.1:9/",
        method="POST",
        timeout_ms=timeout_ms,
    )
    return Delivery(
        "q", 1, "x", "{}", call, 0, TaskStatus.PENDING, hidden_until=time.monotonic() + hidden_for
    )


def test_calls_that_fit_before_the_message_reappears_start() -> None:
    supervisor = Supervisor(Settings(postgres_dsn="postgresql://127.0.0.1:9/none", timeout=5.0))
    # 2 x 5 s (the default TIMEOUT) + 1 s margin fit in 30 s.
    assert not supervisor._could_outlast_its_hiding(delivery(timeout_ms=None, hidden_for=30))
    assert not supervisor._could_outlast_its_hiding(delivery(timeout_ms=1000, hidden_for=3.5))


def test_calls_that_could_outlast_their_hiding_are_skipped() -> None:
    supervisor = Supervisor(Settings(postgres_dsn="postgresql://127.0.0.1:9/none", timeout=5.0))
    assert supervisor._could_outlast_its_hiding(delivery(timeout_ms=None, hidden_for=10.5))
    assert supervisor._could_outlast_its_hiding(delivery(timeout_ms=1000, hidden_for=2.5))


def test_dead_lettered_reason_comes_from_the_outcome_not_its_wording() -> None:
    metrics = WorkerMetrics()
    message = delivery(timeout_ms=None, hidden_for=30)
    metrics.observe(
        Failed(message, "HTTP 503 (gave up after 4 attempts)", 503, 1.0, exhausted=True)
    )
    metrics.observe(Failed(message, "HTTP 404", 404, 1.0))
    metrics.observe(Failed(message, "HTTP 429", 429, 1.0, exhausted=True, rate_limited=True))
    text = generate_latest(metrics.registry).decode()
    assert 'taskq_worker_dead_lettered_total{reason="rate_limited",task_type="x"} 1.0' in text
    assert 'taskq_worker_dead_lettered_total{reason="exhausted",task_type="x"} 1.0' in text
    assert 'taskq_worker_dead_lettered_total{reason="permanent",task_type="x"} 1.0' in text
