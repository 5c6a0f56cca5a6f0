"""API keys, the egress policy at submission, and the limits on what a client controls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_api.auth import key_matches, presented_key
from taskq_core.settings import Settings
from tests.support.api import api_client, batch, counts

KEYS = ("first-key-0123456789", "second-key-0123456789")
ERROR_KEYS = {"status_code", "error", "detail", "field"}
UNKNOWN_TASK = "/tasks/00000000-0000-0000-0000-000000000000"


@pytest.fixture
def secured(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(replace(settings, api_keys=KEYS)) as client:
        yield client


WITHOUT_A_VALID_KEY = [
    {},
    {"Authorization": "Bearer wrong-key-0123456789"},
    {"Authorization": f"Basic {KEYS[0]}"},
    {"Authorization": "Bearer "},
    {"X-API-Key": KEYS[0][:-1]},
    {"X-API-Key": KEYS[0] + "x"},
]
GUARDED_ROUTES = [
    ("GET", UNKNOWN_TASK),
    ("POST", "/tasks"),
    ("POST", "/task-types"),
    ("GET", "/task-types/sync"),
    ("PATCH", "/task-types/sync"),
    ("POST", "/dlq/reprocess"),
    ("GET", "/tasks"),
    ("DELETE", UNKNOWN_TASK),
    ("DELETE", f"{UNKNOWN_TASK}/messages/1"),
    ("GET", "/task-types"),
    ("POST", "/task-types/sync/pause"),
    ("POST", "/task-types/sync/resume"),
    ("GET", "/dlq"),
    ("POST", "/dlq/purge"),
    ("GET", "/hosts"),
    ("GET", "/metrics"),
    ("GET", "/schema/openapi.json"),
    ("GET", "/schema/swagger"),
    ("GET", "/swagger/index.html"),
]


def test_every_route_but_the_probes_needs_a_key(secured: TestClient[Litestar], db_dsn: str) -> None:
    body = json.dumps(batch(1))
    for method, path in GUARDED_ROUTES:
        for headers in WITHOUT_A_VALID_KEY:
            response = secured.request(
                method,
                path,
                content=body if method in ("POST", "PATCH") else None,
                headers={**headers, "Content-Type": "application/json"},
            )
            case = f"{method} {path} with {headers}"
            assert response.status_code == 401, case
            payload = response.json()
            assert set(payload) == ERROR_KEYS, case
            assert payload["error"] == "unauthorized", case
            assert response.headers["www-authenticate"].startswith("Bearer"), case
    assert counts(db_dsn) == (0, 0, 0)


def test_the_guarded_list_covers_every_operation(secured: TestClient[Litestar]) -> None:
    """A new route must be added to GUARDED_ROUTES (or be a probe) to be known as protected."""
    spec = secured.get("/schema/openapi.json", headers={"X-API-Key": KEYS[0]}).json()
    listed = {(method, _template(path)) for method, path in GUARDED_ROUTES}
    for path, operations in spec["paths"].items():
        for method in operations:
            if path.startswith("/health/"):
                continue
            assert (method.upper(), path) in listed, f"{method.upper()} {path} is not tested"


def _template(path: str) -> str:
    """The spec's template of a concrete path used above."""
    return (
        path.replace(UNKNOWN_TASK.removeprefix("/tasks/"), "{task_id}")
        .replace("/messages/1", "/messages/{message_id}")
        .replace("/task-types/sync", "/task-types/{task_type}")
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEYS[0]}"},
        {"Authorization": f"bearer {KEYS[1]}"},
        {"X-API-Key": KEYS[1]},
    ],
)
def test_either_header_with_any_configured_key_is_let_in(
    secured: TestClient[Litestar], headers: dict[str, str]
) -> None:
    created = secured.post("/tasks", json=batch(2), headers=headers)
    assert created.status_code == 201, created.text
    task_id = created.json()["task_id"]
    assert secured.get(f"/tasks/{task_id}", headers=headers).status_code == 200
    assert secured.get(UNKNOWN_TASK, headers=headers).status_code == 404
    assert secured.get("/schema/openapi.json", headers=headers).status_code == 200


def test_probes_are_open_and_metrics_only_when_public(settings: Settings) -> None:
    for metrics_public, metrics_status in ((False, 401), (True, 200)):
        with api_client(replace(settings, api_keys=KEYS, metrics_public=metrics_public)) as client:
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 200
            assert client.get("/metrics").status_code == metrics_status
            assert client.get(UNKNOWN_TASK).status_code == 401


def test_swagger_assets_are_public_but_not_the_spec(secured: TestClient[Litestar]) -> None:
    """Vendor JS/CSS carry no data; the spec and the docs page still need a key."""
    css = secured.get("/static/swagger-ui/swagger-ui.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert secured.get("/static/swagger-ui/favicon-32x32.png").status_code == 200
    assert secured.get("/static/swagger-ui/../../../etc/passwd").status_code == 404
    assert secured.get("/schema/swagger").status_code == 401
    for path in ("/schema", "/schema/swagger"):  # the only renderers exposed
        page = secured.get(path, headers={"X-API-Key": KEYS[0]}).text
        assert "/static/swagger-ui/swagger-ui-bundle.js" in page, path
        assert "cdn." not in page, path
        assert "unpkg" not in page, path
    for other in ("/schema/redoc", "/schema/scalar", "/schema/rapidoc", "/schema/elements"):
        assert secured.get(other, headers={"X-API-Key": KEYS[0]}).status_code == 404, other


def test_without_keys_the_api_stays_open(settings: Settings) -> None:
    with api_client(settings) as client:
        assert client.post("/tasks", json=batch(1)).status_code == 201
        assert client.get("/metrics").status_code == 200


def test_the_spec_declares_the_key_schemes(secured: TestClient[Litestar]) -> None:
    spec = secured.get("/schema/openapi.json", headers={"X-API-Key": KEYS[0]}).json()
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    assert spec["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert spec["paths"]["/health/live"]["get"]["security"] == [{}]


def test_key_helpers() -> None:
    assert presented_key({"authorization": "Bearer  abc "}) == "abc"
    assert presented_key({"authorization": "Token abc", "x-api-key": "def"}) == "def"
    assert presented_key({}) is None
    encoded = [key.encode() for key in KEYS]
    assert key_matches(KEYS[1], encoded)
    assert not key_matches("", encoded)
    assert not key_matches("é" * 20, encoded)


def test_key_comparison_time_does_not_depend_on_the_matching_prefix() -> None:
    """A crude timing check: a near miss costs what a far miss costs (same length)."""
    key = "k" * 64
    encoded = [key.encode()]
    near, far = "k" * 63 + "x", "x" * 64

    def once(candidate: str) -> float:
        started = time.perf_counter()
        for _ in range(5_000):
            key_matches(candidate, encoded)
        return time.perf_counter() - started

    # Interleaved rounds, best of each: load on a shared machine hits both alike.
    near_cost = far_cost = float("inf")
    for _ in range(20):
        near_cost = min(near_cost, once(near))
        far_cost = min(far_cost, once(far))
    assert near_cost < far_cost * 1.5
    assert far_cost < near_cost * 1.5


def post(client: TestClient[Litestar], body: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = client.post("/tasks", json=body)
    return response.status_code, response.json()


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient[Litestar]]:
    policy = replace(settings, egress_block_private=True, egress_allowlist=("partner.example",))
    with api_client(policy) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (batch(1, url="http://127.0.0.1:9/x"), "url"),
        (batch(1, url="http://169.254.169.254/latest/meta-data"), "url"),
        (batch(1, url="http://localhost/x"), "url"),
        (batch(1, url="http://elsewhere.example/x"), "url"),
        (batch(1, url="http://[::1]/x"), "url"),
        (
            {
                **batch(2, url="https://partner.example/x"),
                "payloads": [
                    {"data": 1},
                    {"data": 2, "api_override": {"url": "http://10.0.0.5/admin"}},
                ],
            },
            "payloads[1].api_override.url",
        ),
    ],
)
def test_egress_policy_refuses_at_submission_naming_the_field(
    guarded: TestClient[Litestar], db_dsn: str, body: dict[str, object], field: str
) -> None:
    status, payload = post(guarded, body)
    assert status == 400
    assert payload["field"] == field
    assert "egress policy" in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_egress_policy_lets_allowed_hosts_through(guarded: TestClient[Litestar]) -> None:
    status, payload = post(guarded, batch(1, url="https://partner.example/x"))
    assert status == 201, payload


def test_egress_policy_off_accepts_internal_targets(settings: Settings) -> None:
    with api_client(settings) as client:
        assert post(client, batch(1, url="http://127.0.0.1:9/x"))[0] == 201


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


LONG = 10_000


LIMIT_VIOLATIONS: list[tuple[dict[str, object], str]] = [
    ({"headers": {f"X-{n}": "v" for n in range(101)}}, "headers"),
    ({"headers": {"X-" + "n" * 300: "v"}}, "headers"),
    ({"headers": {"X-Big": "v" * 8193}}, "headers.X-Big"),
    ({"url": "http://example.com/" + "a" * 8192}, "url"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": 600_001}, "timeout"),
    ({"timeout": "11m"}, "timeout"),
    ({"max_retries": 101}, "max_retries"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_rps": 0}, "max_rps"),
    ({"max_rps": 1_000_001}, "max_rps"),
    ({"retry_delay": -1}, "retry_delay"),
    ({"retry_delay": 86_400_001}, "retry_delay"),
    ({"item_id": "i" * 1001}, "item_id"),
    ({"item_id": "a\u0000b"}, "item_id"),
    ({"task_type": "t" * 201}, "task_type"),
    ({"task_type": "a\u0000b"}, "task_type"),
    ({"url": "http://example.com/\u0000"}, "url"),
    (
        {"payloads": [{"api_override": {"headers": {f"X-{n}": "v" for n in range(101)}}}]},
        "payloads[0].api_override.headers",
    ),
    (
        {"payloads": [{"api_override": {"headers": {"X-Big": "v" * LONG}}}]},
        "payloads[0].api_override.headers.X-Big",
    ),
    (
        {"payloads": [{"api_override": {"url": "http://example.com/" + "a" * 8192}}]},
        "payloads[0].api_override.url",
    ),
]


def test_every_limit_is_a_400_naming_the_field(client: TestClient[Litestar], db_dsn: str) -> None:
    for fields, field in LIMIT_VIOLATIONS:
        status, payload = post(client, {**batch(1), **fields})
        assert (status, payload["field"]) == (400, field), payload
    assert counts(db_dsn) == (0, 0, 0)


def test_limits_at_their_edges_are_accepted(client: TestClient[Litestar]) -> None:
    body = {
        **batch(1),
        "headers": {f"X-{n}": "v" * 80 for n in range(100)},
        "timeout": 600_000,
        "max_retries": 100,
        "max_rps": 1_000_000,
        "retry_delay": 86_400_000,
        "item_id": "i" * 1000,
        "task_type": "t" * 200,
    }
    status, payload = post(client, body)
    assert status == 201, payload


def test_body_size_and_payload_count_limits(settings: Settings) -> None:
    with api_client(replace(settings, max_payloads=3, max_body_size=2048)) as small:
        status, payload = post(small, batch(4))
        assert (status, payload["field"]) == (400, "payloads")
        status, payload = post(small, {**batch(1), "item_id": "i" * 3000})
        assert (status, payload["error"]) == (413, "payload_too_large")
