"""The API's metrics come from one plugin: rejected submissions counted by route, not by path."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import TestClient

from taskq_api.app import create_app
from taskq_core.settings import Settings
from tests.support.api import batch


def rejected(client: TestClient[Litestar]) -> dict[str, float]:
    text = client.get("/metrics").text
    found = re.findall(
        r'^taskq_api_submissions_rejected_total\{reason="(\w+)"\} (\S+)$', text, re.M
    )
    return {reason: float(value) for reason, value in found}


def test_only_refused_submissions_are_counted_by_their_error_code(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.post("/tasks", json=batch(1)).status_code == 201
        assert client.post("/tasks", json={"payloads": []}).status_code == 400
        plain = client.post("/tasks", content=b"{}", headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        assert client.post("/task-types", json={"task_type": ""}).status_code == 400
        assert client.post("/dlq/reprocess", json={}).status_code == 400
        assert client.get("/tasks/not-a-uuid").status_code == 400
        assert client.get("/nothing").status_code == 404
        assert rejected(client) == {"invalid_field": 1.0, "unsupported_media_type": 1.0}
    # One way to reach the counters: the `metrics` dependency, not the app's state.
    assert "metrics" not in app.state
