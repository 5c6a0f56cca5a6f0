"""The worker's lean requests transport keeps every guarantee of the plain one.

It remembers connection pools per origin, skips proxy lookups when no proxy
is configured and writes a request's headers and body at once: these tests
show the egress guard, proxies and odd bodies still behave (real targets).
"""

from __future__ import annotations

import io
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from taskq_core.deliveries import Delivery, Failed, Succeeded
from taskq_core.egress import EgressPolicy
from taskq_core.models import QueuedCall
from taskq_core.settings import Settings
from taskq_core.status import TaskStatus
from taskq_worker.delivery import CallDefaults, deliver
from taskq_worker.lean_http import OneWriteHTTPConnection, OneWriteHTTPSConnection
from taskq_worker.supervisor import make_session
from tests.support.target import Received, Reply, Target
from tests.support.tls import tls_target

NO_DATABASE = "postgresql://127.0.0.1:9/none"


def a_delivery(url: str, payload_id: int = 0) -> Delivery:
    call = QueuedCall(
        task_id="t", payload_id=payload_id, task_type="x", url=url, method="POST", data={"n": 1}
    )
    return Delivery(
        "q", 1, "x", "{}", call, 0, TaskStatus.PENDING, hidden_until=time.monotonic() + 60
    )


def call(url: str, settings: Settings, *, session: Any = None) -> Any:
    session = session or make_session(2, EgressPolicy.from_settings(settings))
    return deliver(a_delivery(url), session, CallDefaults.from_settings(settings), random.Random())


class CountingSocket:
    """A real socket that counts the writes made on it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.writes: list[int] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(len(data))
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_headers_and_a_bytes_body_leave_in_one_write(target: Target) -> None:
    host, port = target.url.removeprefix("http://").split(":")
    connection = OneWriteHTTPConnection(host, int(port))
    connection.connect()
    counting = CountingSocket(connection.sock)
    connection.sock = counting
    body = b'{"n": 1}'
    connection.request("POST", "/one", body=body, headers={"Content-Length": str(len(body))})
    assert connection.getresponse().status == 200
    assert len(counting.writes) == 1
    [received] = target.requests_snapshot()
    assert (received.path, received.body) == ("/one", body)
    connection.close()


def test_over_tls_headers_and_body_leave_in_one_write(tmp_path: Path) -> None:
    with tls_target(tmp_path) as (server, cert_file):
        port = int(server.url.rsplit(":", 1)[1])
        connection = OneWriteHTTPSConnection(
            "127.0.0.1", port, ca_certs=str(cert_file), cert_reqs="CERT_REQUIRED"
        )
        connection.connect()
        counting = CountingSocket(connection.sock)
        connection.sock = counting
        body = b'{"n": 2}'
        connection.request("POST", "/tls", body=body, headers={"Content-Length": str(len(body))})
        assert connection.getresponse().status == 200
        assert len(counting.writes) == 1
        [received] = server.requests_snapshot()
        assert (received.path, received.body) == ("/tls", body)
        connection.close()


def test_a_streamed_body_still_goes_out_in_order(target: Target) -> None:
    host, port = target.url.removeprefix("http://").split(":")
    connection = OneWriteHTTPConnection(host, int(port))
    connection.request("PUT", "/file", body=io.BytesIO(b"abc"), headers={"Content-Length": "3"})
    assert connection.getresponse().status == 200
    [received] = target.requests_snapshot()
    assert (received.method, received.path, received.body) == ("PUT", "/file", b"abc")
    connection.close()


def test_a_remembered_pool_still_checks_every_redirect_hop(target: Target) -> None:
    port = target.url.rsplit(":", 1)[1]
    target.responder = lambda request: (
        Reply(status=302, headers={"Location": f"http://127.0.0.1:{port}/inside"})
        if request.path == "/start"
        else Reply()
    )
    settings = Settings(
        postgres_dsn=NO_DATABASE, egress_block_private=True, egress_allowlist=("localhost",)
    )
    session = make_session(2, EgressPolicy.from_settings(settings))
    assert isinstance(call(f"http://localhost:{port}/ok", settings, session=session), Succeeded)
    # Twice: the second time the blocked origin's pool is a remembered one.
    for _ in range(2):
        refused = call(f"http://localhost:{port}/start", settings, session=session)
        assert isinstance(refused, Failed)
        assert refused.error.startswith("egress refused")
        assert "127.0.0.1" in refused.error
    assert [r.path for r in target.requests_snapshot()] == ["/ok", "/start", "/start"]


def test_a_proxy_from_the_environment_still_carries_the_call(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", target.url)
    monkeypatch.setenv("http_proxy", target.url)
    seen: list[Received] = []

    def as_proxy(request: Received) -> Reply:
        seen.append(request)
        return Reply(status=201)

    target.responder = as_proxy
    settings = Settings(postgres_dsn=NO_DATABASE)
    session = make_session(2, EgressPolicy.from_settings(settings))
    for path in ("/hook", "/again"):  # the second one after the pools are known
        outcome = call(f"http://partner.taskq.test{path}", settings, session=session)
        assert isinstance(outcome, Succeeded)
        assert outcome.http_status == 201
    # A proxy is sent the absolute URL, with the target's own host.
    assert [r.path for r in seen] == [
        "http://partner.taskq.test/hook",
        "http://partner.taskq.test/again",
    ]
    assert seen[0].headers["host"] == "partner.taskq.test"
    assert seen[0].json() == {"n": 1}


def test_no_proxy_sends_the_origins_it_names_directly(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trust_env off requests ignores NO_PROXY: the session applies it itself."""
    for name in ("ALL_PROXY", "all_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    proxy = Target(lambda _: Reply(status=202)).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "127.0.0.1,.internal.test")
        target.responder = lambda _: Reply(status=201)
        settings = Settings(postgres_dsn=NO_DATABASE)
        session = make_session(2, EgressPolicy.from_settings(settings))
        for _ in range(2):  # the second time from the per-origin memory
            assert call(f"{target.url}/direct", settings, session=session).http_status == 201
            proxied = call("http://partner.taskq.test/hook", settings, session=session)
            assert proxied.http_status == 202
        assert [r.path for r in target.requests_snapshot()] == ["/direct", "/direct"]
        assert [r.path for r in proxy.requests_snapshot()] == ["http://partner.taskq.test/hook"] * 2

        # A redirect hop is judged again: from a proxied origin to one NO_PROXY names.
        proxy.responder = lambda _: Reply(status=307, headers={"Location": f"{target.url}/hop"})
        hopped = call("http://partner.taskq.test/moved", settings, session=session)
        assert hopped.http_status == 201
        assert [r.path for r in target.requests_snapshot()][-1] == "/hop"
        assert [r.path for r in proxy.requests_snapshot()][-1] == "http://partner.taskq.test/moved"
    finally:
        proxy.stop()
