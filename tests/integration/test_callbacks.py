"""callback_url / failure_callback_url (issue 15) through the real API and worker, local targets."""

from __future__ import annotations

import base64
import dataclasses
import threading
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from taskq_core.signing import verify_signature
from taskq_worker.supervisor import Supervisor
from tests.support.api import api_client, dlq_length, queue_length
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, submit

SECRET = "whsec-callbacks-0123456789abcdef01234"
HOSTILE_BODY = b"\xff\xfe" + bytes(range(256)) * 40_000  # ~10 MB, not UTF-8


def _original(request: Received) -> Reply:
    """The task's target: succeeds or fails by the payload's `kind`."""
    kind = request.json()["kind"]  # type: ignore[index]
    if kind == "ok":
        return Reply(status=201, body=b'{"id": "r-1", "name": "caf\xc3\xa9"}')
    if kind == "huge":
        return Reply(body=HOSTILE_BODY)
    return Reply(status=422, body=b'{"error": "refused"}')


class FlakyReceiver:
    """A callback receiver that answers 503 to its first `failures` calls, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self._lock = threading.Lock()

    def __call__(self, _request: Received) -> Reply:
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                return Reply(status=503, body=b"busy")
        return Reply(body=b"thanks")


def _status(client: TestClient[Litestar], task_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    statuses: list[dict[str, Any]] = response.json()["statuses"]
    return statuses


def _callbacks_final(client: TestClient[Litestar], task_id: str, count: int) -> bool:
    rows = _status(client, task_id)
    finished = [row for row in rows if row["callback"] and row["callback"]["status"] != "pending"]
    return len(finished) == count


def _counted(supervisor: Supervisor, task_type: str, outcome: str) -> float:
    value = supervisor.metrics.registry.get_sample_value(
        "taskq_worker_callbacks_total", {"task_type": task_type, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture
def signing_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secrets_key="test-secrets-key-" + "k" * 32)


def test_success_and_failure_callbacks_carry_the_outcome(signing_settings: Settings) -> None:
    settings = signing_settings
    original = Target(_original).start()
    on_success, on_failure = Target().start(), Target().start()
    try:
        with api_client(settings) as client, running_worker(settings) as worker:
            # The callbacks' own type is configured like any other: signed here.
            configured = client.post(
                "/task-types", json={"task_type": "sync:callbacks", "signing_secrets": [SECRET]}
            )
            assert configured.status_code == 200, configured.text
            task_id = submit(
                client,
                {
                    "task_type": "sync",
                    "item_id": "order-7",
                    "url": original.url,
                    "headers": {"Authorization": "Bearer target-only"},
                    "max_retries": 0,
                    "callback_url": on_success.url + "/done",
                    "failure_callback_url": on_failure.url + "/failed",
                    "payloads": [{"data": {"kind": "ok"}}, {"data": {"kind": "refused"}}],
                },
            )
            wait_until(lambda: _callbacks_final(client, task_id, 2), timeout=20)
            ok, refused = _status(client, task_id)
            assert _counted(worker, "sync", "success") == 2
            page = client.get(f"/ui/tasks/{task_id}")
            assert page.status_code == 200
            assert 'failure: <span class="badge success">success</span> (200)' in page.text

        (success,) = on_success.requests_snapshot()  # successes only: QStash's `callback`
        (failure,) = on_failure.requests_snapshot()
        assert success.path == "/done"
        assert success.method == "POST"
        assert success.headers["content-type"] == "application/json"
        assert "authorization" not in success.headers  # the batch's headers stay with its target
        assert success.headers["idempotency-key"] == f"{task_id}:0:callback"
        verify_signature(success.headers.get("x-taskq-signature"), success.body, [SECRET])
        assert success.json() == {
            "task_id": task_id,
            "message_id": ok["message_id"],
            "payload_id": 0,
            "item_id": "order-7",
            "task_type": "sync",
            "status": "success",
            "attempts": 1,
            "http_status": 201,
            "duration_ms": pytest.approx(ok["duration_ms"], abs=0.01),
            "error": "",
            "response": {
                "body": '{"id": "r-1", "name": "caf\u00e9"}',
                "encoding": "utf-8",
                "content_type": "application/json",
                "truncated": False,
            },
        }
        document = failure.json()
        assert isinstance(document, dict)
        assert document["status"] == "failed"
        assert document["payload_id"] == 1
        assert document["http_status"] == 422
        assert document["error"] == "HTTP 422"
        assert document["response"]["body"] == '{"error": "refused"}'

        assert ok["status"] == "success"
        assert ok["callback"]["kind"] == "success"
        assert ok["callback"]["status"] == "success"
        assert ok["callback"]["http_status"] == 200
        assert refused["status"] == "failed"  # in the DLQ, as without a callback
        assert refused["dlq_message_id"] is not None
        assert refused["callback"]["kind"] == "failure"
        assert refused["callback"]["status"] == "success"
    finally:
        for server in (original, on_success, on_failure):
            server.stop()


def test_a_failing_callback_is_retried_and_never_touches_the_message(settings: Settings) -> None:
    original = Target(_original).start()
    flaky = FlakyReceiver(failures=2)
    receiver = Target(flaky).start()
    hopeless = Target(lambda _request: Reply(status=500)).start()
    try:
        with api_client(settings) as client, running_worker(settings) as worker:
            client.post("/task-types", json={"task_type": "lost:callbacks", "max_retries": 1})
            retried = submit(
                client,
                {
                    "task_type": "sync",
                    "url": original.url,
                    "callback_url": receiver.url,
                    "payloads": [{"data": {"kind": "ok"}}],
                },
            )
            given_up = submit(
                client,
                {
                    "task_type": "lost",
                    "url": original.url,
                    "callback_url": hopeless.url,
                    "payloads": [{"data": {"kind": "ok"}}],
                },
            )
            wait_until(lambda: _callbacks_final(client, retried, 1), timeout=20)
            wait_until(lambda: _callbacks_final(client, given_up, 1), timeout=20)
            (row,) = _status(client, retried)
            (lost,) = _status(client, given_up)
            assert _counted(worker, "sync", "retry") == 2
            assert _counted(worker, "sync", "success") == 1
            assert _counted(worker, "lost", "failed") == 1

        assert receiver.count() == 3
        assert row["status"] == "success"
        assert row["attempt"] == 0  # the message's own attempts are its own
        assert row["error"] == ""
        assert row["callback"]["status"] == "success"
        assert row["callback"]["attempt"] == 2
        # A callback that fails for good is recorded, not dead-lettered; the message
        # stays a success.
        assert hopeless.count() == 2  # max_retries 1 of the callbacks' type
        assert lost["status"] == "success"
        assert lost["dlq_message_id"] is None
        assert lost["callback"]["status"] == "failed"
        assert lost["callback"]["http_status"] == 500
        assert lost["callback"]["error"].startswith("HTTP 500")
        assert dlq_length(settings.postgres_dsn, settings.dlq_queue_name) == 0
        assert queue_length(settings.postgres_dsn, "lost:callbacks") == 0
    finally:
        for server in (original, receiver, hopeless):
            server.stop()


def _final_statuses(
    settings: Settings, body: dict[str, Any], *, callbacks: int
) -> tuple[str, list[dict[str, Any]]]:
    """Submit `body` for the `_original` target; (task id, statuses) once `callbacks` are done."""
    original = Target(_original).start()
    try:
        with api_client(settings) as client, running_worker(settings):
            task_id = submit(client, {**body, "url": original.url})
            count = len(body["payloads"])
            wait_until(lambda: _callbacks_final(client, task_id, callbacks), timeout=30)
            wait_until(lambda: all_final(settings.postgres_dsn, task_id, count))
            return task_id, _status(client, task_id)
    finally:
        original.stop()


def test_without_a_failure_url_failures_send_nothing_and_callbacks_send_no_callbacks(
    settings: Settings,
) -> None:
    receiver = Target().start()
    try:
        _, (ok, refused) = _final_statuses(
            settings,
            {
                "max_retries": 0,
                "callback_url": receiver.url,
                "payloads": [{"data": {"kind": "ok"}}, {"data": {"kind": "refused"}}],
            },
            callbacks=1,
        )
        # A callback's message carries no callback URLs: nothing chained was queued.
        assert queue_length(settings.postgres_dsn, "default:callbacks") == 0
        assert receiver.count() == 1
        assert ok["callback"]["status"] == "success"
        assert refused["status"] == "failed"
        assert refused["callback"] is None
    finally:
        receiver.stop()


def test_a_huge_binary_reply_reaches_the_callback_as_a_short_base64_prefix(
    settings: Settings,
) -> None:
    receiver = Target().start()
    try:
        _final_statuses(
            settings,
            {
                # A non-latin-1 path: sent percent-encoded, as any target URL.
                "callback_url": receiver.url + "/r\u00e9ponse/\u6f22\u5b57",
                "payloads": [{"data": {"kind": "huge"}}],
            },
            callbacks=1,
        )
        (callback,) = receiver.requests_snapshot()
        assert callback.path == "/r%C3%A9ponse/%E6%BC%A2%E5%AD%97"
        document = callback.json()
        assert isinstance(document, dict)
        assert document["response"]["encoding"] == "base64"
        assert document["response"]["truncated"] is True
        assert base64.b64decode(document["response"]["body"]) == HOSTILE_BODY[:4096]
        assert len(callback.body) < 8 * 1024
    finally:
        receiver.stop()


@pytest.mark.parametrize("field", ["callback_url", "failure_callback_url"])
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.1.2.3/cb", "egress policy"),
        ("http://[::ffff:10.0.0.1]/cb", "egress policy"),
        ("http://127.0.0.1/cb\r\nX-Injected: 1", "whitespace or control"),
        ("ftp://127.0.0.1/cb", "http or https"),
        ("/relative", "http or https"),
        ("http://127.0.0.1/" + "a" * 9000, ""),  # past the 8 KiB a URL may have
    ],
)
def test_a_refused_callback_url_is_a_400_naming_the_field(
    settings: Settings, field: str, url: str, says: str
) -> None:
    policy = dataclasses.replace(settings, egress_block_private=True)
    with api_client(policy) as client:
        response = client.post(
            "/tasks",
            json={"url": "http://93.184.216.34/x", field: url, "payloads": [{"data": 1}]},
        )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field, body
    assert says in body["detail"]
    assert "\r\n" not in response.text


def test_a_10_mb_callback_url_is_refused_whole(settings: Settings) -> None:
    url = "http://127.0.0.1/" + "\u00e9" * (5 * 1024 * 1024)
    with api_client(settings) as client:
        response = client.post("/tasks", json={"url": "http://127.0.0.1:9/x", "callback_url": url})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_the_callback_type_exists_once_used_and_takes_a_rate_limit(settings: Settings) -> None:
    with api_client(settings) as client:
        submit(
            client,
            {
                "task_type": "orders",
                "url": "http://127.0.0.1:9/x",
                "failure_callback_url": "http://127.0.0.1:9/cb",
                "payloads": [{"data": 1}],
            },
        )
        created = client.get("/task-types/orders:callbacks")
        assert created.status_code == 200, created.text
        assert created.json()["signed"] is False
        limited = client.post("/task-types", json={"task_type": "orders:callbacks", "max_rps": 2})
        assert limited.status_code == 200, limited.text
        assert limited.json()["max_rps"] == 2


def test_a_type_name_too_long_for_its_callbacks_type_is_refused(settings: Settings) -> None:
    with api_client(settings) as client:
        response = client.post(
            "/tasks",
            json={
                "task_type": "t" * 195,
                "url": "http://127.0.0.1:9/x",
                "callback_url": "http://127.0.0.1:9/cb",
                "payloads": [{"data": 1}],
            },
        )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "callback_url"
    assert "':callbacks'" in response.json()["detail"]


def test_callbacks_go_at_the_rate_set_for_their_type(settings: Settings) -> None:
    receiver = Target().start()
    try:
        with api_client(settings) as client:
            limited = client.post(
                "/task-types", json={"task_type": "paced:callbacks", "max_rps": 5}
            )
            assert limited.status_code == 200, limited.text
        _final_statuses(
            settings,
            {
                "task_type": "paced",
                "callback_url": receiver.url,
                "payloads": [{"data": {"kind": "ok"}} for _ in range(10)],
            },
            callbacks=10,
        )
        arrivals = [request.at for request in receiver.requests_snapshot()]
        # 5/s with a one-token bucket: ten callbacks take at least 9 intervals of 0.2 s
        # (with slack for the bucket's 5% burst and clock granularity).
        assert max(arrivals) - min(arrivals) >= 1.5
    finally:
        receiver.stop()


def test_a_callback_the_worker_refuses_fails_and_leaves_the_message_alone(
    settings: Settings,
) -> None:
    """The worker's own egress check (after DNS) applies to callbacks, as to any call."""
    original = Target(_original).start()
    try:
        with (
            api_client(settings) as client,
            running_worker(settings, egress_allowlist=("127.0.0.1/32",)) as worker,
        ):
            task_id = submit(
                client,
                {
                    "url": original.url,
                    "callback_url": "http://127.0.0.2:9/cb",
                    "payloads": [{"data": {"kind": "ok"}}],
                },
            )
            wait_until(lambda: _callbacks_final(client, task_id, 1), timeout=20)
            (row,) = _status(client, task_id)
            assert _counted(worker, "default", "failed") == 1
        assert row["status"] == "success"
        assert row["callback"]["status"] == "failed"
        assert row["callback"]["error"].startswith("egress refused")
    finally:
        original.stop()
