"""The libcurl transport sends what requests prepared and reads replies as urllib3 did.

Real servers on 127.0.0.1: the test Target, and raw sockets for replies no
well-behaved server sends (interim replies, a stalled body, no answer).
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from taskq_core.egress import EgressPolicy
from taskq_core.settings import Settings
from taskq_worker.curl_transport import CurlAdapter
from taskq_worker.delivery import MAX_RESPONSE_BYTES
from taskq_worker.guarded_http import EgressRefusedError
from taskq_worker.supervisor import make_session
from tests.support.target import Reply, Target
from tests.support.tls import tls_target

NO_DATABASE = "postgresql://127.0.0.1:9/none"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    made = make_session(2, EgressPolicy.from_settings(Settings(postgres_dsn=NO_DATABASE)))
    yield made
    made.close()


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A listener on 127.0.0.1 whose every connection is handed to `answer`; yields its URL.

    On the way out every connection is shut down, which ends an `answer`
    blocked reading.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(connection)
            with connection, contextlib.suppress(OSError):
                answer(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)
        assert not thread.is_alive()


def hold_open(connection: socket.socket) -> None:
    """Sends nothing more until the client or raw_server's exit closes the connection."""
    while connection.recv(65536):
        pass


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_what_requests_prepared_is_what_arrives(session: requests.Session, target: Target) -> None:
    body = b"a\x00b\xffc"
    headers = {"X-Empty": "", "X-Latin": "caf\xe9", "Content-Type": "application/octet-stream"}
    response = session.post(f"{target.url}/exact", data=body, headers=headers, timeout=5)
    assert response.status_code == 200
    [received] = target.requests_snapshot()
    assert (received.method, received.path, received.body) == ("POST", "/exact", body)
    prepared = {name.lower(): value for name, value in response.request.headers.items()}
    # http.server reads header bytes as latin-1, as they were sent; libcurl adds only Host.
    assert received.headers == {**prepared, "host": target.url.removeprefix("http://")}


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_every_method_goes_out_as_itself(
    session: requests.Session, target: Target, method: str
) -> None:
    # After a POST on the same handle: a reused handle keeps no earlier call's options.
    session.post(f"{target.url}/first", data=b"{}", timeout=5)
    target.responder = lambda _request: Reply(body=b"")
    response = session.request(method, f"{target.url}/m", timeout=5)
    assert response.status_code == 200
    assert target.requests_snapshot()[-1].method == method


def test_a_head_reply_is_not_waited_on_for_a_body(session: requests.Session) -> None:
    seen: list[bytes] = []

    def answer(connection: socket.socket) -> None:
        while request := read_request(connection):
            seen.append(request.split(b" ", 1)[0])
            length = b"50" if seen[-1] == b"HEAD" else b"0"  # a HEAD reply's length has no body
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\n")

    with raw_server(answer) as url:
        session.post(url, data=b"{}", timeout=2)
        started = time.monotonic()
        response = session.head(url, timeout=2)
        assert time.monotonic() - started < 1
    assert (response.status_code, response.content) == (200, b"")
    assert seen == [b"POST", b"HEAD"]


def test_interim_replies_are_forgotten_and_repeated_headers_joined(
    session: requests.Session,
) -> None:
    def answer(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(
            b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
            b"HTTP/1.1 201 Made It\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nok"
        )

    with raw_server(answer) as url:
        response = session.post(url, data=b"{}", timeout=5)
    assert (response.status_code, response.reason, response.content) == (201, "Made It", b"ok")
    assert response.headers["X-A"] == "1, 2"
    assert "X-Interim" not in response.headers


def test_a_body_past_the_cap_is_cut_and_the_reply_kept(
    session: requests.Session, target: Target
) -> None:
    target.responder = lambda _request: Reply(body=b"x" * (3 * MAX_RESPONSE_BYTES))
    response = session.get(f"{target.url}/huge", timeout=5)
    assert response.status_code == 200
    assert len(response.content) == MAX_RESPONSE_BYTES + 1
    target.responder = lambda _request: Reply()
    assert session.get(f"{target.url}/after", timeout=5).status_code == 200


def test_an_encoded_reply_the_caller_asked_for_is_decoded(
    session: requests.Session, target: Target
) -> None:
    original = b'{"n": 1}' * 1000
    target.responder = lambda _request: Reply(
        body=gzip.compress(original), headers={"Content-Encoding": "gzip"}
    )
    response = session.post(target.url, data=b"{}", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert (response.status_code, response.content) == (200, original)
    [received] = target.requests_snapshot()
    assert received.headers["accept-encoding"] == "gzip"


def test_a_gzip_bomb_is_cut_at_the_cap_after_decoding(
    session: requests.Session, target: Target
) -> None:
    bomb = gzip.compress(b"\0" * (20 * MAX_RESPONSE_BYTES))
    target.responder = lambda _request: Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    response = session.post(target.url, data=b"{}", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert response.status_code == 200
    assert len(response.content) == MAX_RESPONSE_BYTES + 1


def test_a_reply_that_will_not_decode_is_still_the_targets_answer(
    session: requests.Session, target: Target
) -> None:
    target.responder = lambda _request: Reply(
        status=201, body=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    response = session.post(target.url, data=b"{}", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert response.status_code == 201
    assert target.count() == 1


def test_no_answer_within_the_timeout_is_a_timeout(session: requests.Session) -> None:
    def never_answers(connection: socket.socket) -> None:
        read_request(connection)
        hold_open(connection)

    with raw_server(never_answers) as url:
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            session.post(url, data=b"{}", timeout=0.3)
        assert time.monotonic() - started < 2


def test_a_body_that_stalls_past_the_timeout_keeps_its_reply(session: requests.Session) -> None:
    def stalls(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        hold_open(connection)

    with raw_server(stalls) as url:
        response = session.post(url, data=b"{}", timeout=0.3)
    assert (response.status_code, response.content) == (200, b"0123456789")


def test_garbage_and_resets_are_connection_errors(session: requests.Session) -> None:
    def garbage(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(b"\x00\xffnot http at all\r\n\r\n")

    with raw_server(garbage) as url, pytest.raises(requests.exceptions.ConnectionError):
        session.post(url, data=b"{}", timeout=2)
    with raw_server(read_request) as url, pytest.raises(requests.exceptions.ConnectionError):
        session.post(url, data=b"{}", timeout=2)


def test_only_a_checked_address_is_ever_connected_to(
    session: requests.Session, target: Target
) -> None:
    # libcurl is told 127.0.0.1, but only 127.0.0.2 passed the check: a
    # mismatch must never connect (the socket is refused before it opens).
    adapter = session.get_adapter(target.url)
    assert isinstance(adapter, CurlAdapter)
    port = int(target.url.rsplit(":", 1)[1])
    adapter._lookups[("127.0.0.1", port)] = (
        time.monotonic() + 60,
        frozenset({"127.0.0.2"}),
        f"127.0.0.1:{port}:127.0.0.1",
    )
    with pytest.raises(EgressRefusedError):
        session.post(target.url, data=b"{}", timeout=2)
    assert target.count() == 0


@pytest.mark.parametrize("value", ["nul\x00byte", "not latin-1 \u20ac"])
def test_a_header_libcurl_cannot_send_is_refused_by_name(
    session: requests.Session, target: Target, value: str
) -> None:
    with pytest.raises(requests.exceptions.InvalidHeader) as refused:
        session.post(target.url, data=b"{}", headers={"X-Bad": value}, timeout=2)
    assert value not in str(refused.value)
    assert target.count() == 0


def test_errors_never_quote_the_url(session: requests.Session) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    url = f"http://user:hunter2@127.0.0.1:{port}/path?api_key=s3cret"
    with pytest.raises(requests.exceptions.ConnectionError) as failed:
        session.post(url, data=b"{}", timeout=2)
    text = f"{failed.value!s} {failed.value!r}"
    assert "hunter2" not in text
    assert "s3cret" not in text


def test_tls_is_verified_against_the_bundle_given(
    session: requests.Session, tmp_path: Path
) -> None:
    with tls_target(tmp_path) as (server, cert_file):
        url = server.url.replace("http://", "https://")
        with pytest.raises(requests.exceptions.SSLError):
            session.post(url, data=b"{}", timeout=5)
        response = session.post(url, data=b"{}", timeout=5, verify=str(cert_file))
        assert response.status_code == 200
        assert server.count() == 1


def test_an_interim_reply_alone_is_no_answer(session: requests.Session) -> None:
    def only_continues(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        hold_open(connection)

    with raw_server(only_continues) as url, pytest.raises(requests.exceptions.ReadTimeout):
        session.post(url, data=b"{}", timeout=0.3)
