"""The JSON log lines of a real API and a real worker: context present, secrets absent.

Both processes run with LOG_FORMAT=json and LOG_LEVEL=debug, so a secret that
leaked at any level would be in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskq_core.settings import Settings
from tests.e2e.conftest import ApiProcess
from tests.support.processes import start_worker, stop
from tests.support.target import Reply, Target, wait_until

pytestmark = pytest.mark.e2e

SECRETS = {
    "Authorization": "Bearer secret-authorization-value",
    "Cookie": "session=secret-cookie-value",
    "X-Api-Key": "secret-api-key-value",
    "X-Session-Token": "secret-token-value",
    "X-Db-Password": "secret-password-value",
}
QUERY_SECRET = "secret-query-value"
MESSAGE_FIELDS = {"task_id", "message_id", "task_type", "attempt", "url"}


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line the process wrote must be one JSON object (granian's own lines included)."""
    lines = []
    for line in log.read_text().splitlines():
        if line.strip():
            lines.append(json.loads(line))
    return lines


def assert_no_secret(log: Path) -> None:
    text = log.read_text()
    for value in [*SECRETS.values(), QUERY_SECRET]:
        assert value not in text, f"{value!r} leaked into {log.name}"


@pytest.mark.parametrize("api_process", [1], indirect=True)
def test_api_and_worker_log_context_without_secrets(
    settings: Settings, target: Target, api_process: ApiProcess, tmp_path: Path
) -> None:
    target.responder = lambda request: (
        Reply(status=500) if request.path.startswith("/broken") else Reply(status=404)
    )
    with httpx.Client(base_url=f"http://{api_process.address}", timeout=10) as api:
        created = api.post(
            "/tasks",
            json={
                "task_type": "logged",
                "url": f"{target.url}/broken?token={QUERY_SECRET}",
                "headers": SECRETS,
                "max_retries": 1,
                "retry_delay": 50,
                "payloads": [{"data": {"n": 1}}],
            },
            headers={"X-Request-ID": "client-chosen-id"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == "client-chosen-id"
        refused = api.post("/tasks", json={"url": "ftp://x", "payloads": [{}]})
        generated = refused.headers["X-Request-ID"]
        assert len(generated) == 32
        hostile = api.get("/health/live", headers={"X-Request-ID": '{"a":"b"}' + "x" * 200})
        assert len(hostile.headers["X-Request-ID"]) == 32  # replaced, not echoed
        task_id = created.json()["task_id"]

    worker_log = tmp_path / "worker.log"
    worker = start_worker(settings, worker_log, LOG_LEVEL="debug")
    try:
        wait_until(
            lambda: any("moved to the DLQ" in line for line in worker_log.read_text().splitlines()),
            timeout=20,
        )
    finally:
        assert stop(worker) == 0

    # API: one line per request with its id; the id also marks the handler's own line.
    api_lines = json_lines(api_process.log)
    requests = [line for line in api_lines if line.get("method") == "POST"]
    assert {(line["request_id"], line["status"]) for line in requests} >= {
        ("client-chosen-id", 201),
        (generated, 400),
    }
    assert all(line["path"] == "/tasks" and "duration_ms" in line for line in requests)
    queued = [line for line in api_lines if line.get("msg", "").startswith("queued")]
    assert queued[0]["request_id"] == "client-chosen-id"
    assert queued[0]["task_id"] == task_id
    assert_no_secret(api_process.log)

    # Worker: a retry at INFO, then the failure at WARNING, each with the message's context.
    about_message = [line for line in json_lines(worker_log) if line.get("task_id") == task_id]
    retry = next(line for line in about_message if "retrying" in line["msg"])
    failed = next(line for line in about_message if "moved to the DLQ" in line["msg"])
    assert (retry["level"], retry["attempt"], retry["http_status"]) == ("info", 1, 500)
    assert (failed["level"], failed["attempt"]) == ("warning", 2)
    for line in (retry, failed):
        assert set(line) >= MESSAGE_FIELDS
        assert line["task_type"] == "logged"
        assert line["url"] == f"{target.url}/broken"  # no query string
    assert_no_secret(worker_log)
