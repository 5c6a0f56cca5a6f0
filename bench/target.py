"""A counting HTTP target: answers after a fixed delay and records every arrival.

Run as its own process (`python -m bench.target --port P --delay-ms 50`) so the
benchmark driver never competes with it for the GIL. One asyncio loop holds
thousands of delayed requests open at once. It keeps, per request, the arrival
time and the submit time the payload carried (`sent_at`), and can fail the first
attempt of a share of the payloads with a 500 (the retry scenario).

Control endpoints: `GET /_stats` returns the records as JSON, `GET /_summary`
only the counters; `POST /_reset`
clears them and takes new `delay_ms` / `fail_pct` from its JSON body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b'Content-Length: 11\r\nConnection: keep-alive\r\n\r\n{"ok":true}'
)
_FAIL = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
    b'Content-Length: 12\r\nConnection: keep-alive\r\n\r\n{"ok":false}'
)
_MAX_HEADER_BYTES = 64 * 1024


@dataclass
class TargetState:
    """What the target has seen since the last reset."""

    delay: float = 0.0
    fail_pct: int = 0
    arrivals: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failed_keys: set[str] = field(default_factory=set)
    failures: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def reset(self, delay_ms: float, fail_pct: int) -> None:
        self.delay = delay_ms / 1000
        self.fail_pct = fail_pct
        self.arrivals = []
        self.latencies = []
        self.failed_keys = set()
        self.failures = 0
        self.peak_in_flight = self.in_flight

    def should_fail(self, key: str) -> bool:
        """Fail the first attempt of `fail_pct` percent of idempotency keys, chosen by hash."""
        if not self.fail_pct or not key or key in self.failed_keys:
            return False
        if zlib.crc32(key.encode()) % 100 < self.fail_pct:
            self.failed_keys.add(key)
            self.failures += 1
            return True
        return False

    def summary(self) -> dict[str, object]:
        """The counters without the per-request lists: cheap enough to poll."""
        return {
            "count": len(self.arrivals),
            "first": self.arrivals[0] if self.arrivals else None,
            "latencies": len(self.latencies),
            "failures": self.failures,
            "peak_in_flight": self.peak_in_flight,
        }

    def stats(self) -> dict[str, object]:
        return {
            "count": len(self.arrivals),
            "failures": self.failures,
            "peak_in_flight": self.peak_in_flight,
            "arrivals": self.arrivals,
            "latencies": self.latencies,
        }


def sent_at_of(body: bytes) -> float | None:
    """The `sent_at` timestamp a payload carries, if any."""
    if b"sent_at" not in body:
        return None
    try:
        value = json.loads(body).get("sent_at")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path and lower-cased headers of a request head."""
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _json_response(payload: object) -> bytes:
    body = json.dumps(payload).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _answer(
    state: TargetState, method: str, path: str, headers: dict[str, str], body: bytes
) -> bytes:
    if path.startswith("/_summary"):
        return _json_response(state.summary())
    if path.startswith("/_stats"):
        return _json_response(state.stats())
    if path.startswith("/_reset") and method == "POST":
        options = json.loads(body or b"{}")
        state.reset(float(options.get("delay_ms", 0)), int(options.get("fail_pct", 0)))
        return _json_response({"reset": True})
    now = time.time()
    state.arrivals.append(now)
    sent_at = sent_at_of(body)
    if sent_at is not None:
        state.latencies.append(now - sent_at)
    if state.delay:
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            await asyncio.sleep(state.delay)
        finally:
            state.in_flight -= 1
    return _FAIL if state.should_fail(headers.get("idempotency-key", "")) else _OK


Answer = Callable[[str, str, dict[str, str], bytes], Awaitable[bytes]]


async def _serve_connection(
    answer: Answer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            method, path, headers = parse_head(head[:-4])
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            writer.write(await answer(method, path, headers, body))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve_http(host: str, port: int, answer: Answer) -> None:
    """A keep-alive HTTP/1.1 server on one asyncio loop: `answer` makes each reply."""
    server = await asyncio.start_server(
        lambda reader, writer: _serve_connection(answer, reader, writer),
        host,
        port,
        backlog=4096,
        limit=_MAX_HEADER_BYTES,
    )
    async with server:
        await server.serve_forever()


async def serve(host: str, port: int, state: TargetState) -> None:
    await serve_http(host, port, functools.partial(_answer, state))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--fail-pct", type=int, default=0)
    args = parser.parse_args()
    state = TargetState()
    state.reset(args.delay_ms, args.fail_pct)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, state))


if __name__ == "__main__":
    main()
