"""taskq_worker.header_lines builds exactly the message the email parser builds, or lets it."""

from __future__ import annotations

import email.parser
import http.client
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from taskq_worker import header_lines

NGINX_LIKE = (
    b"Server: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 08:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n"
)
ODD_BLOCKS = [
    b"\r\n",  # no fields at all
    b"A: 1\nB: 2\n\n",  # LF line ends
    b"A:\r\nB:    \r\nC: x  \r\nD:\t\ty\r\n\r\n",  # empty, blank-only, trailing and tab-led values
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",  # repeated fields keep their order
    b"X-Name: caf\xe9 \xff\r\n\r\n",  # Latin-1 bytes
    b"X-Nul: a\x00b\x01c\x7f\r\n\r\n",
    b"X-Folded: first\r\n  second\r\n\tthird\r\n\r\n",  # obsolete line folding
    b" Leading: space\r\nA: 1\r\n\r\n",  # a continuation with nothing to continue
    b"From someone\r\nA: 1\r\n\r\n",  # an mbox envelope line
    b"A: 1\r\nFrom: x\r\nFrom y\r\n\r\n",
    b"Bad Name: 1\r\nA: 2\r\n\r\n",  # a space in the name ends the fields
    b": no name\r\nA: 1\r\n\r\n",
    b"no colon at all\r\nA: 1\r\n\r\n",
    b"A: x\ry\r\n\r\n",  # a bare CR inside a value
    b"A: x\r\r\n\r\n",
    *(b"A: x" + bytes([code]) + b"y\r\n\r\n" for code in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85)),
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n",  # the parser looks for parts
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: message/delivery-status\r\n\r\n",
    b"content-type: MULTIPART/form-data\r\n\r\n",
    b"A: 1\r\nB: 2",  # the connection closed within the headers
    b"A: 1\r\n",
    b"",
]


def _stdlib(stream: io.BytesIO) -> Any:
    """What http.client makes of a reply's headers: its line reader, then the email parser."""
    lines = http.client._read_headers(stream)  # type: ignore[attr-defined]
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


def _state(message: Any) -> dict[str, Any]:
    state = dict(vars(message))
    state["defects"] = [(type(defect), str(defect)) for defect in message.defects]
    if isinstance(message._payload, list):  # parts or a nested message: compared in turn
        state["_payload"] = [_state(part) for part in message._payload]
    return state


def _assert_same(block: bytes) -> None:
    ours_read, stdlib_read = io.BytesIO(block + b"BODY"), io.BytesIO(block + b"BODY")
    ours = header_lines.parse_headers(ours_read)
    assert _state(ours) == _state(_stdlib(stdlib_read))
    assert ours_read.read() == stdlib_read.read()  # the body starts where it did


def test_a_plain_block_is_read_without_the_email_parser() -> None:
    lines = http.client._read_headers(io.BytesIO(NGINX_LIKE))  # type: ignore[attr-defined]
    fast = header_lines.plain_message(lines)
    assert fast is not None
    assert fast.get("content-length") == "11"
    assert _state(fast) == _state(_stdlib(io.BytesIO(NGINX_LIKE)))


@pytest.mark.parametrize("block", ODD_BLOCKS)
def test_every_odd_block_gives_the_email_parsers_message(block: bytes) -> None:
    _assert_same(block)


@pytest.mark.parametrize("code", range(256))
def test_every_byte_in_a_value_gives_the_email_parsers_message(code: int) -> None:
    if code == 0x0A:
        return  # a line end: covered by the blocks above
    _assert_same(b"A: x" + bytes([code]) + b"y\r\nB: 2\r\n\r\n")


@pytest.mark.parametrize("code", range(256))
def test_every_byte_in_a_name_gives_the_email_parsers_message(code: int) -> None:
    if code == 0x0A:
        return
    _assert_same(b"A" + bytes([code]) + b"b: 1\r\nB: 2\r\n\r\n")


_LINE_BYTES = st.binary(max_size=12).map(lambda raw: raw.replace(b"\n", b""))
_LINES = st.lists(
    st.one_of(
        st.builds(lambda name, value: name + b":" + value, _LINE_BYTES, _LINE_BYTES),
        _LINE_BYTES,
        st.sampled_from([b" folded", b"\tfolded", b"From x", b"Content-Type: multipart/x"]),
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(lines=_LINES, ending=st.sampled_from([b"\r\n", b"\n"]), closed=st.booleans())
def test_any_block_gives_the_email_parsers_message(
    lines: list[bytes], ending: bytes, closed: bool
) -> None:
    block = b"".join(line + ending for line in lines) + (b"" if closed else ending)
    _assert_same(block)


def test_a_custom_message_class_is_left_to_the_email_parser() -> None:
    class Kept(http.client.HTTPMessage):
        pass

    message = header_lines.parse_headers(io.BytesIO(NGINX_LIKE), Kept)
    assert type(message) is Kept
    assert message.get("server") == "nginx/1.22.1"


@pytest.fixture
def raw_server() -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with one fixed reply."""
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Plain: one\r\n"
        b"X-Folded: a\r\n b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok"
    )
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    thread.join()
    listener.close()


def test_installed_replies_read_as_before(raw_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = requests.get(raw_server, timeout=5)
    monkeypatch.setattr(http.client, "parse_headers", http.client.parse_headers)  # undone after
    header_lines.install()
    assert http.client.parse_headers is header_lines.parse_headers
    after = requests.get(raw_server, timeout=5)
    assert after.text == before.text == "ok"
    assert list(after.raw.headers.items()) == list(before.raw.headers.items())
    assert after.headers["X-Folded"] == before.headers["X-Folded"]
