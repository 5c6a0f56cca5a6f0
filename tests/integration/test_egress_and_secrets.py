"""The egress guard and secret hygiene against a real worker, real targets and the real API.

Each test here is a regression test for a defect found by attacking taskq
(issue 11): a failed DNS lookup that fell back to an unchecked connect,
metadata addresses open by default, numeric IPv4 forms the API took for
names, task headers following a redirect to another host, and a header value
quoted in a stored error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from taskq_core.settings import Settings
from tests.support.api import api_client, batch
from tests.support.direct_queue import queue_directly
from tests.support.target import Received, Reply, Target, wait_until
from tests.support.worker import all_final, running_worker, statuses, submit

REBINDING_NAME = "rebinding.taskq.test"


@pytest.fixture
def flaky_resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The process's resolver: REBINDING_NAME fails once (SERVFAIL), then answers 127.0.0.1.

    Returns the list of lookups of that name, so a test can see it was asked again.
    """
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != REBINDING_NAME:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        if len(lookups) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.mark.parametrize(
    "policy",
    [{"egress_block_private": True}, {"egress_allowlist": ("10.0.0.0/8",)}],
    ids=["block-private", "allowlist"],
)
def test_a_failed_lookup_never_falls_back_to_an_unchecked_connect(
    settings: Settings, target: Target, flaky_resolver: list[str], policy: dict[str, Any]
) -> None:
    guarded = replace(settings, **policy)
    port = target.url.rsplit(":", 1)[1]
    with api_client(guarded) as client:
        task_id = submit(
            client,
            {
                "url": f"http://{REBINDING_NAME}:{port}/internal",
                "max_retries": 3,
                "retry_delay": 10,
                "payloads": [{"data": 1}],
            },
        )
    with running_worker(guarded):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1), timeout=20)
    [row] = statuses(settings.postgres_dsn, task_id)
    assert target.count() == 0, "the call reached the blocked listener"
    assert len(flaky_resolver) >= 2  # the failed lookup cost an attempt; the next one was checked
    assert row["attempt"] >= 1
    assert row["status"] == "failed"
    assert row["error"].startswith("egress refused")


def test_a_failed_lookup_is_a_retryable_error_naming_dns(
    settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never_resolves(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", never_resolves)
    task_id = queue_directly(
        settings,
        "dns",
        [{"url": f"http://{REBINDING_NAME}/x", "method": "POST", "max_retries": 1}],
    )
    with running_worker(settings, retry_base_delay=0.01):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1), timeout=20)
    [row] = statuses(settings.postgres_dsn, task_id)
    assert (row["status"], row["attempt"]) == ("failed", 1)
    assert row["error"].startswith("connection error: the host name did not resolve")


def test_every_checked_address_is_tried_in_turn(
    settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name with an address that does not answer first (nothing listens on
    # ::1) and a working one second: the guard pins, yet still falls back.
    real = socket.getaddrinfo

    def dual_stack(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "dual.taskq.test":
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", int(port), 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dual_stack)
    port = target.url.rsplit(":", 1)[1]
    task_id = queue_directly(
        settings, "dual", [{"url": f"http://dual.taskq.test:{port}/both", "method": "POST"}]
    )
    with running_worker(settings):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert (row["status"], row["attempt"]) == ("success", 0)
    assert [r.path for r in target.requests_snapshot()] == ["/both"]


def test_metadata_addresses_are_refused_by_the_worker_with_no_setting(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def metadata(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "metadata.taskq.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", metadata)
    task_id = queue_directly(
        settings,
        "metadata",
        [
            {"url": "http://metadata.taskq.test/latest/meta-data/", "method": "GET"},
            {"url": "http://[fd00:ec2::254]/latest/", "method": "GET"},
            {"url": "http://2852039166/latest/", "method": "GET"},
        ],
    )
    with running_worker(settings):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 3), timeout=20)
    rows = statuses(settings.postgres_dsn, task_id)
    assert {row["status"] for row in rows} == {"failed"}
    assert all("link-local or a cloud metadata endpoint" in row["error"] for row in rows)
    assert all(row["attempt"] == 0 for row in rows)  # refused at once, never retried


def test_through_a_proxy_the_url_host_is_still_checked(
    settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The target plays an HTTP proxy from the environment (used with no EGRESS_* setting).
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", target.url)
    monkeypatch.setenv("http_proxy", target.url)
    task_id = queue_directly(
        settings,
        "proxied",
        [
            {"url": "http://partner.taskq.test/hook", "method": "POST"},
            {"url": "http://169.254.169.254/latest/meta-data/", "method": "GET"},
        ],
    )
    with running_worker(settings):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 2))
    proxied, metadata = statuses(settings.postgres_dsn, task_id)
    assert proxied["status"] == "success"
    assert metadata["status"] == "failed"
    assert metadata["error"].startswith("egress refused")
    assert [r.path for r in target.requests_snapshot()] == ["http://partner.taskq.test/hook"]


def post(client: TestClient[Litestar], body: dict[str, object]) -> tuple[int, dict[str, Any]]:
    response = client.post("/tasks", json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/",
        "http://100.100.100.200/",
    ],
)
def test_the_api_refuses_metadata_targets_with_no_setting(settings: Settings, url: str) -> None:
    with api_client(settings) as client:
        status, payload = post(client, batch(1, url=url))
        assert (status, payload["field"]) == (400, "url"), payload
        override = {**batch(1), "payloads": [{"api_override": {"url": url}}]}
        status, payload = post(client, override)
        assert (status, payload["field"]) == (400, "payloads[0].api_override.url"), payload


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f.1",
        "017700000001",
        "127.1",
        "0",
        "0x7f000001",
        "100.64.0.1",
        "[2002:7f00:1::1]",
        "[64:ff9b::a00:1]",
        "[::ffff:10.0.0.1]",
        "[::7f00:1]",
    ],
)
def test_the_api_refuses_what_the_worker_would_refuse(settings: Settings, host: str) -> None:
    with api_client(replace(settings, egress_block_private=True)) as client:
        status, payload = post(client, batch(1, url=f"http://{host}:8080/x"))
    assert (status, payload["field"]) == (400, "url"), payload
    assert "egress policy" in payload["detail"]
    if host[0].isdigit() and host.count(".") < 3:
        assert f"host {host!r} is " in payload["detail"]  # says how the number was read


def test_numeric_forms_reach_what_the_api_says_they_do(settings: Settings, target: Target) -> None:
    # The API's reading of 0x7f.1 is the resolver's: the call lands on 127.0.0.1.
    port = target.url.rsplit(":", 1)[1]
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(client, {"url": f"http://0x7f.1:{port}/n", "payloads": [{"data": 1}]})
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    assert [r.path for r in target.requests_snapshot()] == ["/n"]


TASK_HEADERS = {
    "Authorization": "Bearer task-secret",
    "X-Api-Key": "key-secret",
    "X-Custom": "custom-value",
    "Content-Type": "application/vnd.task+json",
}


@pytest.fixture
def elsewhere() -> Iterator[Target]:
    server = Target().start()
    yield server
    server.stop()


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_another_origin_carries_none_of_the_task_headers(
    settings: Settings, target: Target, elsewhere: Target, status: int
) -> None:
    def respond(request: Received) -> Reply:
        if request.path == "/start":
            return Reply(status=status, headers={"Location": f"{elsewhere.url}/landing"})
        return Reply()

    target.responder = respond
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {"url": f"{target.url}/start", "headers": TASK_HEADERS, "payloads": [{"data": 7}]},
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    [row] = statuses(settings.postgres_dsn, task_id)
    assert row["status"] == "success"
    [first] = target.requests_snapshot()
    assert {name.lower(): first.headers[name.lower()] for name in TASK_HEADERS} == {
        name.lower(): value for name, value in TASK_HEADERS.items()
    }
    [landed] = elsewhere.requests_snapshot()
    assert not {name.lower() for name in TASK_HEADERS} - {"content-type"} & set(landed.headers)
    assert landed.headers["idempotency-key"] == f"{task_id}:0"
    assert landed.headers["x-taskq-task-id"] == task_id
    assert landed.headers["user-agent"] == "taskq"
    if status == 307:  # the body goes along, described by taskq, not by the task
        assert (landed.method, landed.json()) == ("POST", 7)
        assert landed.headers["content-type"] == "application/json"
    else:
        assert landed.method == "GET"
        assert "content-type" not in landed.headers


def test_a_redirect_within_the_origin_keeps_the_task_headers(
    settings: Settings, target: Target
) -> None:
    target.responder = lambda request: (
        Reply(status=307, headers={"Location": "/next"}) if request.path == "/first" else Reply()
    )
    with api_client(settings) as client, running_worker(settings):
        task_id = submit(
            client,
            {"url": f"{target.url}/first", "headers": TASK_HEADERS, "payloads": [{"data": 1}]},
        )
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 1))
    first, then = target.requests_snapshot()
    assert (first.path, then.path) == ("/first", "/next")
    for name, value in TASK_HEADERS.items():
        assert then.headers[name.lower()] == value


def test_a_header_value_the_client_refuses_is_never_quoted_in_the_error(
    settings: Settings, target: Target
) -> None:
    # Queued past the API (its checks may refuse this value): the worker's own texts are tested.
    secret = "Bearer leading-space-secret"
    task_id = queue_directly(
        settings,
        "bad-header",
        [
            {
                "url": f"{target.url}/x",
                "method": "POST",
                "headers": {"Authorization": " " + secret},
            },
            {"url": "http://user:url-password-secret@[::1:/x", "method": "POST"},
        ],
    )
    with running_worker(settings):
        wait_until(lambda: all_final(settings.postgres_dsn, task_id, 2))
    header_row, url_row = statuses(settings.postgres_dsn, task_id)
    assert header_row["status"] == "failed"
    assert header_row["error"] == (
        "invalid request: header 'Authorization' has a value the HTTP client refuses"
    )
    assert url_row["status"] == "failed"
    assert "url-password-secret" not in url_row["error"]
    assert target.count() == 0
    with api_client(settings) as client:
        shown = client.get(f"/tasks/{task_id}").text
    assert "leading-space-secret" not in shown
    assert "url-password-secret" not in shown
