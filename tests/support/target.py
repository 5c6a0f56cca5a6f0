"""A real HTTP server on 127.0.0.1 that records every request and answers as a test tells it.

The tests start it themselves; nothing leaves the machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> object:
        return msgspec.json.decode(self.body) if self.body else None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Responder = Callable[[Received], Reply]


class Target:
    """Threaded HTTP server; `responder` decides each reply, `received` lists requests."""

    def __init__(self, responder: Responder | None = None, *, port: int = 0) -> None:
        self.responder: Responder = responder or (lambda _request: Reply())
        self.received: list[Received] = []
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                with target._lock:
                    target.received.append(request)
                reply = target.responder(request)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Target:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def count(self) -> int:
        with self._lock:
            return len(self.received)


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll `condition` until true; fail the test with a clear message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    if not condition():
        raise AssertionError(f"condition not met within {timeout} s")
