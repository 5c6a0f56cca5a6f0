"""The worker's metrics and health endpoints, scraped from a real worker process."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from tests.support.api import api_client
from tests.support.processes import free_port, start_worker, stop
from tests.support.target import Reply, Target, wait_until
from tests.support.worker import all_final, submit, submit_many

pytestmark = pytest.mark.e2e


def metric(text: str, name: str, labels: str = "") -> float | None:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_worker_exports_delivery_and_queue_metrics(
    settings: Settings, target: Target, tmp_path: Path
) -> None:
    target.responder = lambda request: Reply(status=404) if request.path == "/gone" else Reply()
    port = free_port()
    with api_client(settings) as client:
        client.post("/task-types", json={"task_type": "backlog", "max_rps": 1})
        submit_many(client, "backlog", target.url, 50)
        done = submit(
            client,
            {"task_type": "quick", "url": target.url, "payloads": [{"data": n} for n in range(5)]},
        )
        gone = submit(
            client, {"task_type": "quick", "url": f"{target.url}/gone", "payloads": [{"data": 1}]}
        )
    worker = start_worker(settings, tmp_path / "worker.log", METRICS_PORT=port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: all_final(settings.postgres_dsn, done, 5), timeout=15)
        wait_until(lambda: all_final(settings.postgres_dsn, gone, 1), timeout=15)

        def scraped() -> str:
            try:
                return httpx.get(f"{base}/metrics", timeout=2).text
            except httpx.HTTPError:
                return ""

        wait_until(lambda: metric(scraped(), "taskq_dlq_messages") == 1.0, timeout=15)
        text = scraped()
        assert (
            metric(text, "taskq_worker_deliveries_total", '{outcome="success",task_type="quick"}')
            == 5.0
        )
        assert (
            metric(text, "taskq_worker_deliveries_total", '{outcome="failed",task_type="quick"}')
            == 1.0
        )
        visible = metric(text, "taskq_queue_visible_messages", '{task_type="backlog"}')
        assert visible is not None
        assert 30 <= visible <= 50
        assert metric(text, "taskq_worker_rate_limited_total", '{task_type="backlog"}')
        # Nothing lowered it: the rate the type is sent at is its max_rps (issue 16).
        assert metric(text, "taskq_task_type_allowed_rps", '{task_type="backlog"}') == 1.0
        assert metric(text, "taskq_task_type_allowed_rps", '{task_type="quick"}') is None
        assert "taskq_worker_call_duration_seconds_bucket" in text
        assert httpx.get(f"{base}/health/live", timeout=2).status_code == 200
        assert httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
    finally:
        assert stop(worker) == 0
