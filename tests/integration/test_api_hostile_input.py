"""What a hostile or careless client sends: a 4xx naming the problem, never a 500, nothing stored.

Issue 11 items 7 (header syntax), 8 (bounded storage per request), 9 (bounded
task types), 10 (JSON only) and 13 (overflows, invalid UTF-8, deep nesting,
malformed ids, `/` in a task type), all through the real app and database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_api.json_depth import MAX_JSON_DEPTH
from taskq_core.queue_names import queue_name_for
from taskq_core.settings import Settings
from tests.support.api import SQL, api_client, batch, counts

ERROR_KEYS = {"status_code", "error", "detail", "field"}
WRITES = ["/tasks", "/task-types", "/dlq/reprocess"]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    with api_client(settings) as test_client:
        yield test_client


def post(
    client: TestClient[Litestar],
    path: str,
    body: bytes | str,
    content_type: str | None = "application/json",
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    payload = response.json()
    assert set(payload) == ERROR_KEYS, payload
    assert payload["status_code"] == response.status_code
    return response.status_code, payload


def with_fields(**fields: object) -> str:
    return json.dumps({**batch(2), **fields})


# -- item 7: header names and values a worker could not send -----------------------------------


@pytest.mark.parametrize(
    ("headers", "field", "reason"),
    [
        ({"X-Euro": "5 \u20ac"}, "headers.X-Euro", "latin-1"),
        ({"X-Snowman": "\u2603"}, "headers.X-Snowman", "latin-1"),
        ({"X-Split": "a\r\nX-Injected: 1"}, "headers.X-Split", "line breaks"),
        ({"X-Nul": "a\x00b"}, "headers.X-Nul", "NUL"),
        ({"X-Bell": "a\x07b"}, "headers.X-Bell", "control"),
        ({"X-Del": "a\x7fb"}, "headers.X-Del", "control"),
        ({"Authorization": " Bearer token"}, "headers.Authorization", "space or tab"),
        ({"X-Trailing": "value\t"}, "headers.X-Trailing", "space or tab"),
        ({"Bad Name": "v"}, "headers", "not a valid header name"),
        ({"X-A:": "v"}, "headers", "not a valid header name"),
        ({"X-\u00e9": "v"}, "headers", "not a valid header name"),
    ],
)
def test_header_that_cannot_be_sent_is_refused_naming_it(
    client: TestClient[Litestar], db_dsn: str, headers: dict[str, str], field: str, reason: str
) -> None:
    status, payload = post(client, "/tasks", with_fields(headers=headers))
    assert (status, payload["field"]) == (400, field)
    assert reason in str(payload["detail"])
    # The value is a secret: the error never quotes it.
    for value in headers.values():
        if len(value.strip()) > 1:
            assert value.strip() not in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_override_header_is_refused_naming_its_payload(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    payloads = [{"data": 0}, {"data": 1, "api_override": {"headers": {"X-Key": "caf\u00e9\u2615"}}}]
    status, payload = post(client, "/tasks", with_fields(payloads=payloads))
    assert (status, payload["field"]) == (400, "payloads[1].api_override.headers.X-Key")
    assert counts(db_dsn) == (0, 0, 0)


def test_latin1_and_empty_values_are_accepted(client: TestClient[Litestar]) -> None:
    headers = {"X-Latin": "caf\u00e9 na\u00efve", "X-Empty": "", "X-Inner": "a \t b"}
    response = client.post("/tasks", json={**batch(1), "headers": headers})
    assert response.status_code == 201, response.text


# -- item 8: what one request may store ------------------------------------------------------


def test_the_821_kb_request_of_the_issue_is_refused_naming_the_headers_limit(
    client: TestClient[Litestar], db_dsn: str
) -> None:
    # 100 headers of 8 KiB and 100 payloads: it used to store 81 MB.
    headers = {f"X-Filler-{n}": "v" * 8192 for n in range(100)}
    body = json.dumps({**batch(100), "headers": headers})
    assert 800_000 < len(body) < 900_000
    status, payload = post(client, "/tasks", body)
    assert (status, payload["field"]) == (400, "headers")
    assert "MAX_HEADERS_SIZE" in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_override_headers_have_the_same_limit(client: TestClient[Litestar], db_dsn: str) -> None:
    override = {"headers": {f"X-F-{n}": "v" * 8000 for n in range(5)}}
    body = with_fields(payloads=[{"data": 1, "api_override": override}])
    status, payload = post(client, "/tasks", body)
    assert (status, payload["field"]) == (400, "payloads[0].api_override.headers")
    assert counts(db_dsn) == (0, 0, 0)


def test_headers_under_the_limit_copied_into_10000_messages_are_refused_with_413(
    settings: Settings, db_dsn: str
) -> None:
    # 31 KiB of headers is allowed once, but this body (~400 KB) would store ~310 MB.
    headers = {f"X-F-{n}": "v" * 7900 for n in range(4)}
    body = json.dumps({**batch(10_000), "headers": headers})
    with api_client(replace(settings, max_payloads=10_000)) as client:
        status, payload = post(client, "/tasks", body)
    assert (status, payload["error"], payload["field"]) == (413, "payload_too_large", "headers")
    assert "MAX_REQUEST_STORAGE" in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_an_accepted_batch_stores_no_more_than_the_limit(settings: Settings, db_dsn: str) -> None:
    limit = 2 * 1024 * 1024
    headers = {"Authorization": "Bearer " + "t" * 1000}
    with api_client(replace(settings, max_request_storage=limit)) as client:
        accepted = client.post("/tasks", json={**batch(1000), "headers": headers})
        assert accepted.status_code == 201, accepted.text
        refused = client.post("/tasks", json={**batch(2000), "headers": headers})
        assert refused.status_code == 413, refused.text
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(SQL["test_stored_bytes"], {"queue": queue_name_for("sync")}).fetchone()
    assert row is not None
    assert 1000 * 1000 < int(row[0]) <= limit


# -- item 9: task types are bounded ----------------------------------------------------------


def test_task_types_beyond_max_task_types_are_refused(settings: Settings, db_dsn: str) -> None:
    with api_client(replace(settings, max_task_types=3)) as client:
        for name in ("a", "b"):
            assert client.post("/tasks", json=batch(1, task_type=name)).status_code == 201
        assert client.post("/task-types", json={"task_type": "c"}).status_code == 200
        refused = client.post("/tasks", json=batch(1, task_type="d"))
        configured = client.post("/task-types", json={"task_type": "e", "max_rps": 5})
        # Existing types keep working.
        again = client.post("/tasks", json=batch(1, task_type="a"))
        changed = client.post("/task-types", json={"task_type": "c", "max_rps": 5})
    for response in (refused, configured):
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "too_many_task_types"
        assert response.json()["field"] == "task_type"
        assert "MAX_TASK_TYPES" in response.json()["detail"]
    assert (again.status_code, changed.status_code) == (201, 200)
    assert counts(db_dsn)[1:] == (3, 3)


# -- item 10: JSON only ----------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        None,
    ],
)
def test_post_refuses_anything_but_json_with_415(
    client: TestClient[Litestar], db_dsn: str, path: str, content_type: str | None
) -> None:
    body = with_fields() if path == "/tasks" else json.dumps({"task_type": "x"})
    status, payload = post(client, path, body, content_type)
    assert (status, payload["error"]) == (415, "unsupported_media_type")
    assert "application/json" in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


def test_json_with_utf8_charset_is_accepted(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/tasks",
        content=with_fields(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


# -- item 13: what used to be a 500 ----------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/tasks", with_fields(timeout="9" * 400), ("timeout", "too large")),
        ("/tasks", with_fields(timeout="9" * 400 + "h"), ("timeout", "too large")),
        ("/tasks", with_fields(timeout="9" * 30 + "h"), ("timeout", "at most")),
        ("/tasks", with_fields()[:-1] + ', "timeout": ' + "9" * 500 + "}", ("timeout", "600000")),
        (
            "/tasks",
            b'{"url": "http://e.com/", "task_type": "\xff", "payloads": []}',
            (None, "UTF-8"),
        ),
        ("/task-types", b'{"task_type": "caf\xe9"}', (None, "UTF-8")),
        ("/dlq/reprocess", b'{"task_type": "\xc3\x28"}', (None, "UTF-8")),
        ("/tasks", with_fields()[:-1] + ', "x": ' + nested(5000) + "}", (None, "nested")),
        (
            "/tasks",
            with_fields(payloads=[{"data": "DEEP"}]).replace('"DEEP"', nested(5000)),
            (None, "nested"),
        ),
        ("/task-types", '{"task_type": ' + nested(5000) + "}", (None, "nested")),
        ("/task-types", nested(5000), (None, "nested")),
        ("/dlq/reprocess", '{"task_id": ' + nested(5000) + "}", (None, "nested")),
        ("/tasks", with_fields(task_type="partner/sync"), ("task_type", "must not contain '/'")),
        ("/task-types", '{"task_type": "t", "max_rps": 1e400}', ("max_rps", "out of range")),
        (
            "/tasks",
            with_fields(payloads=[{"data": 1}, {"data": {"x": [1, "1e999"]}}]).replace(
                '"1e999"', "-1.5E+999"
            ),
            ("payloads[1].data.x[1]", "out of range"),
        ),
        ("/tasks", with_fields(max_rps="HUGE").replace('"HUGE"', "1e400"), ("max_rps", "range")),
        ("/dlq/reprocess", '{"task_type": "t", "max_rps": 2e308}', ("max_rps", "out of range")),
        ("/tasks", '{"a": NaN, "b": 1e400}', (None, "malformed")),
        ("/task-types", json.dumps({"task_type": "a/b"}), ("task_type", "must not contain '/'")),
        ("/task-types", json.dumps({"task_type": ".."}), ("task_type", "must not contain '/'")),
    ],
)
def test_what_used_to_be_a_500_is_a_400_naming_the_problem(
    client: TestClient[Litestar],
    db_dsn: str,
    path: str,
    body: str | bytes,
    expected: tuple[str | None, str],
) -> None:
    field, reason = expected
    status, payload = post(client, path, body)
    assert status == 400, payload
    assert payload["field"] == field
    assert reason in str(payload["detail"])
    assert counts(db_dsn) == (0, 0, 0)


@pytest.mark.parametrize("extra", [0, 1])
def test_nesting_limit_is_the_same_on_every_python(
    client: TestClient[Litestar], db_dsn: str, extra: int
) -> None:
    """The cap is ours, not the interpreter's recursion limit (3.11 and 3.13 differ)."""
    # The body itself and its payloads array are two levels; the payload's data the rest.
    data_depth = MAX_JSON_DEPTH - 3 + extra
    body = with_fields(payloads=[{"data": "DEEP"}]).replace('"DEEP"', nested(data_depth))
    response = client.post("/tasks", content=body, headers={"Content-Type": "application/json"})
    if extra:
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.json()["detail"]
        assert counts(db_dsn) == (0, 0, 0)
    else:
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "123e4567-e89b-12d3-a456-42661417400Z"])
def test_malformed_task_id_is_400(client: TestClient[Litestar], task_id: str) -> None:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 400
    assert response.json()["field"] == "task_id"


def test_unknown_task_id_is_still_404(client: TestClient[Litestar]) -> None:
    response = client.get("/tasks/123e4567-e89b-12d3-a456-426614174000")
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["with space", "a?b#c", "100%", "caf\u00e9", "..a", "a.b"])
def test_every_task_type_that_can_be_created_can_be_read_back(
    client: TestClient[Litestar], name: str
) -> None:
    created = client.post("/task-types", json={"task_type": name, "max_rps": 2})
    assert created.status_code == 200, created.text
    read = client.get(f"/task-types/{quote(name)}")
    assert read.status_code == 200, read.text
    assert read.json()["task_type"] == name
