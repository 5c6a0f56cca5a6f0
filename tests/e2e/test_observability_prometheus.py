"""The dashboard and the alert rules against a real Prometheus scraping a real API and worker.

Prometheus scrapes `taskq-api` (two granian workers: multiprocess metrics) and
`taskq-worker` every second while tasks flow (successes, retries, permanent
and exhausted failures, a rate-limited backlog, a refused submission). Then
every PromQL expression of deploy/grafana/taskq-dashboard.json and
deploy/prometheus/alerts.yml must parse and evaluate, and every metric it names
must exist. Skipped, with the reason, when the Prometheus binaries are missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskq_core.settings import Settings
from tests.e2e.conftest import ApiProcess
from tests.support.processes import free_port, start_worker, stop
from tests.support.prometheus import (
    ALERTS,
    Binaries,
    alert_expressions,
    binaries,
    dashboard_expressions,
    metric_names,
    running_prometheus,
    with_grafana_variables,
)
from tests.support.target import Reply, Target, wait_until

pytestmark = pytest.mark.e2e

QUICK_BATCHES = 6
QUICK_PAYLOADS = 3


@pytest.fixture
def prometheus_binaries() -> Binaries:
    found = binaries()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def reply_for(path: str) -> Reply:
    return {"/gone": Reply(status=404), "/broken": Reply(status=500)}.get(path, Reply())


def send_traffic(api: httpx.Client, target: Target) -> int:
    """Every kind of outcome; returns the number of payloads accepted."""
    assert api.post("/task-types", json={"task_type": "limited", "max_rps": 2}).status_code in (
        200,
        201,
    )
    batches: list[dict[str, Any]] = [
        {"task_type": "limited", "url": target.url, "payloads": [{"data": n} for n in range(30)]},
        {"task_type": "quick", "url": f"{target.url}/gone", "payloads": [{"data": 1}]},
        {
            "task_type": "flaky",
            "url": f"{target.url}/broken?token=in-the-query",
            "max_retries": 1,
            "retry_delay": 50,
            "payloads": [{"data": 1}, {"data": 2}],
        },
    ]
    batches += [
        {"task_type": "quick", "url": target.url, "payloads": [{"data": n}] * QUICK_PAYLOADS}
        for n in range(QUICK_BATCHES)
    ]
    for batch in batches:
        created = api.post("/tasks", json=batch)
        assert created.status_code == 201, created.text
    refused = api.post("/tasks", json={"task_type": "quick", "url": "ftp://x", "payloads": [{}]})
    assert refused.status_code == 400
    return sum(len(batch["payloads"]) for batch in batches)


def query(prometheus: httpx.Client, expression: str) -> dict[str, Any]:
    answer = prometheus.get("/api/v1/query", params={"query": expression})
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200, (expression, body)
    assert body["status"] == "success", (expression, body)
    return body


def scalar(prometheus: httpx.Client, expression: str) -> float | None:
    result = query(prometheus, expression)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_dashboard_and_alerts_evaluate_against_live_metrics(
    prometheus_binaries: Binaries,
    settings: Settings,
    target: Target,
    api_process: ApiProcess,
    tmp_path: Path,
) -> None:
    checked = subprocess.run(
        [str(prometheus_binaries.promtool), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    target.responder = lambda request: reply_for(request.path.split("?")[0])
    worker_port = free_port()
    worker = start_worker(settings, tmp_path / "worker.log", METRICS_PORT=worker_port)
    scrape = {"taskq-api": api_process.address, "taskq-worker": f"127.0.0.1:{worker_port}"}
    try:
        with (
            running_prometheus(prometheus_binaries.prometheus, tmp_path, scrape, rules=ALERTS)
            as prometheus,
            httpx.Client(base_url=f"http://{api_process.address}", timeout=10) as api,
        ):  # fmt: skip
            payloads = send_traffic(api, target)
            expressions = [
                (where, with_grafana_variables(expression))
                for where, expression in dashboard_expressions() + alert_expressions()
            ]
            assert len(expressions) > 30
            wanted = set().union(*(metric_names(expression) for _, expression in expressions))

            def missing() -> set[str]:
                answer = prometheus.get("/api/v1/label/__name__/values").json()
                return wanted - set(answer["data"])

            try:
                wait_until(lambda: not missing(), timeout=60, interval=0.5)
            except AssertionError:
                pytest.fail(f"metrics named by the dashboard or alerts never appeared: {missing()}")

            for where, expression in expressions:
                body = query(prometheus, expression)
                assert body["data"]["resultType"] in {"vector", "scalar", "matrix"}, where

            # Two API processes, one set of numbers: the multiprocess files are summed.
            wait_until(
                lambda: scalar(prometheus, "sum(taskq_api_payloads_accepted_total)") == payloads,
                timeout=15,
            )
            posts = 'sum(taskq_requests_total{method="POST",path="/tasks"})'
            assert scalar(prometheus, posts) == len(range(QUICK_BATCHES)) + 4
            assert scalar(prometheus, "sum(taskq_api_submissions_rejected_total)") == 1.0

            # Prometheus itself evaluated every rule without an error.
            def rules_evaluated() -> bool:
                groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
                states = [rule["health"] for group in groups for rule in group["rules"]]
                assert "err" not in states, groups
                return bool(states) and all(state == "ok" for state in states)

            wait_until(rules_evaluated, timeout=15, interval=0.5)
    finally:
        assert stop(worker) == 0
