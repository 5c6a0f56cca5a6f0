"""Probes, metrics, Swagger UI and the committed OpenAPI files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_api.openapi_export import openapi_document, render, with_clean_descriptions
from taskq_core.settings import Settings
from tests.support.api import api_client, batch

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def test_probes_answer(client: TestClient[Litestar]) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ok"}


def test_metrics_count_requests_by_route_template(client: TestClient[Litestar]) -> None:
    created = client.post("/tasks", json=batch(1)).json()
    client.get(f"/tasks/{created['task_id']}")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'taskq_requests_total{app_name="taskq",method="POST",path="/tasks"' in response.text
    # Grouped by template: task ids never become label values.
    assert created["task_id"] not in response.text
    assert 'path="/tasks/{task_id}"' in response.text


def test_swagger_ui_is_reachable_at_the_reference_path(client: TestClient[Litestar]) -> None:
    ui = client.get("/swagger/index.html")
    assert ui.status_code == 200
    assert "swagger-ui" in ui.text.lower()
    spec = client.get("/swagger/doc.json").json()
    assert spec["info"]["title"] == "taskq"


def test_served_spec_has_every_operation(client: TestClient[Litestar]) -> None:
    spec = client.get("/schema/openapi.json").json()
    operations = {
        operation["operationId"]
        for path in spec["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {
        "submitTask",
        "getTaskStatus",
        "configureTaskType",
        "getTaskType",
        "reprocessDlq",
        "healthLive",
        "healthReady",
    } <= operations


def test_committed_openapi_files_are_current() -> None:
    for name, text in render(openapi_document()).items():
        committed = DOCS / name
        assert committed.exists(), f"{committed} is missing: run `make openapi`"
        assert committed.read_text(encoding="utf-8") == text, (
            f"{committed} is stale: run `make openapi` and commit the result"
        )


def test_exported_descriptions_do_not_depend_on_docstring_indentation() -> None:
    """3.11 keeps a docstring's indentation, 3.13 strips it: the export must not care."""
    as_311 = {"TaskStatus": {"description": "One.\n\n    Two.\n    Three.\n    "}}
    as_313 = {"TaskStatus": {"description": "One.\n\nTwo.\nThree.\n"}}
    nested = {"properties": {"description": {"type": "string"}}, "all": [as_311]}
    assert with_clean_descriptions(as_311) == with_clean_descriptions(as_313)
    assert with_clean_descriptions(as_313) == {
        "TaskStatus": {"description": "One.\n\nTwo.\nThree."}
    }
    assert with_clean_descriptions(nested)["properties"] == {"description": {"type": "string"}}
    assert with_clean_descriptions(nested)["all"] == [with_clean_descriptions(as_313)]
