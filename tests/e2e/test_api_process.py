"""`taskq-api` started as a container starts it (granian, real sockets), driven like the README.

Runs the reference README's curl steps 3, 4, 6 and 7 verbatim (same bodies,
same paths) and checks the documented shapes, plus metrics, probes and Swagger.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from taskq_core.settings import Settings
from tests.support.processes import BIN, settings_environment, stop
from tests.support.target import wait_until

pytestmark = pytest.mark.e2e

README_STEP_3 = """{
        "item_id": "abc123",
        "task_type": "update-resource",
        "max_retries": 3,
        "retry_delay": 1000,
        "url": "https://api.example.com",
        "method": "POST",
        "headers": {
          "Authorization": "Bearer token"
        },
        "payloads": [
          {
            "data": {
              "accountId": "1",
              "accountType": "savings"
            },
            "api_override": {
              "url": "https://override.example.com",
              "headers": {
                "Authorization": "Bearer different-token"
              }
            }
          },
          {
            "data": {
              "accountId": "2",
              "accountType": "checking"
            }
          },
           {
            "data": {
              "accountId": "3",
              "accountType": "checking"
            }
          }
        ]
      }"""
README_STEP_6 = """{
        "task_type": "update-resource",
        "max_rps": 10.0
      }"""
JSON = {"Content-Type": "application/json"}


def is_ready(client: httpx.Client) -> bool:
    try:
        return client.get("/health/ready").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def api(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[httpx.Client]:
    environment = settings_environment(settings, API_WORKERS=request.param)
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "api.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "taskq-api")], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            # Every granian worker must have started: a SIGTERM that arrives while one
            # is still starting makes granian wait for the kill timeout (granian 2.8).
            wait_until(
                lambda: (
                    process.poll() is not None
                    or (
                        log.read_text().count("Started worker") == request.param
                        and is_ready(client)
                    )
                ),
                timeout=30,
            )
            assert process.poll() is None, log.read_text()
            yield client
    finally:
        assert stop(process) == 0, log.read_text()


def test_readme_walkthrough_against_the_real_server(api: httpx.Client) -> None:
    # Step 3: create and enqueue a task.
    created = api.post("/tasks", content=README_STEP_3, headers=JSON)
    assert created.status_code == 201, created.text
    task = created.json()
    assert set(task) == {"task_id", "message_ids"}
    assert len(task["message_ids"]) == 3

    # Step 4: check status.
    status = api.get(f"/tasks/{task['task_id']}")
    assert status.status_code == 200
    view = status.json()
    assert view["task_id"] == task["task_id"]
    assert [s["payload_id"] for s in view["statuses"]] == [0, 1, 2]
    reference_fields = {
        "message_id", "item_id", "task_type", "payload", "status", "error", "attempt",
        "updated_at", "payload_id",
    }  # fmt: skip
    for entry, account in zip(view["statuses"], ["1", "2", "3"], strict=True):
        assert reference_fields <= set(entry)
        assert entry["payload"]["accountId"] == account
        assert (entry["item_id"], entry["task_type"]) == ("abc123", "update-resource")
        assert entry["status"] in {"pending", "success", "failed"}
        datetime.fromisoformat(entry["updated_at"])
    assert "Bearer" not in status.text

    # Step 6: configure the task type's rate limit.
    configured = api.post("/task-types", content=README_STEP_6, headers=JSON)
    assert configured.status_code in (200, 201)
    body = configured.json()
    assert (body["task_type"], body["max_rps"]) == ("update-resource", 10.0)
    assert {"created_at", "updated_at"} <= set(body)

    # Step 7: read it back.
    read = api.get("/task-types/update-resource")
    assert (read.status_code, read.json()) == (200, body)

    # Step 5's contract (nothing has failed yet, so nothing to reprocess).
    reprocessed = api.post(
        "/dlq/reprocess", content='{"task_type": "update-resource"}', headers=JSON
    )
    assert reprocessed.json() == {"reprocessed_count": 0, "message_ids": []}


def test_probes_metrics_docs_and_errors_over_http(api: httpx.Client) -> None:
    assert api.get("/health/live").json() == {"status": "ok"}
    assert api.get("/health/ready").json() == {"status": "ok"}
    for _ in range(4):  # with two workers, requests land on both
        api.post("/tasks", content=b"{oops", headers=JSON)

    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert "taskq_requests_total" in metrics.text
    assert 'method="POST",path="/tasks",status_code="400"' in metrics.text

    swagger = api.get("/swagger/index.html", follow_redirects=True)
    assert swagger.status_code == 200
    assert "swagger-ui" in swagger.text.lower()
    assert api.get("/schema/openapi.json").json()["info"]["title"] == "taskq"

    bad = api.post("/tasks", content=json.dumps({"url": "ftp://x", "payloads": [{}]}), headers=JSON)
    assert bad.status_code == 400
    assert bad.json()["field"] == "url"


def test_bad_setting_stops_the_process_with_one_clear_line(settings: Settings) -> None:
    result = subprocess.run(
        [str(BIN / "taskq-api")],
        env=settings_environment(settings, PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PORT" in lines[0]
