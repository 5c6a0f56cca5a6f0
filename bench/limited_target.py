"""A rate-limited HTTP target: allows `rate` calls/s and answers 429 with Retry-After above it.

Run as its own process (`python -m bench.limited_target --port P --rate 100`).
It is a token bucket (refilled at `rate`/s, holding at most one second's
worth), the way most API gateways limit. A call that finds no token gets 429
and `Retry-After: 1` (whole seconds: the next token is under a second away).
With `headers: "ietf"` (POST /_reset) every answer also states the budget in
the IETF httpapi draft's fields, `RateLimit-Policy: "bench";q=<rate>;w=1` and
`RateLimit: "bench";r=<tokens left>;t=<seconds until the bucket is full>`.

Control: `GET /_summary` returns the counters; `POST /_reset` clears them and
takes `headers` ("ietf" or "none") from its JSON body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from dataclasses import dataclass

from bench.target import serve_http


@dataclass
class LimitedState:
    rate: float
    headers: str = "none"
    tokens: float = 0.0
    refilled_at: float = 0.0
    ok: int = 0
    refused: int = 0
    first: float | None = None
    last_ok: float | None = None

    def reset(self, headers: str) -> None:
        self.headers = headers
        self.tokens, self.refilled_at = self.rate, time.monotonic()
        self.ok = self.refused = 0
        self.first = self.last_ok = None

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.refilled_at) * self.rate)
        self.refilled_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def summary(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "refused": self.refused,
            "first": self.first,
            "last_ok": self.last_ok,
        }


def _response(status: str, body: bytes, extra: list[str]) -> bytes:
    head = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        "Connection: keep-alive",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _answer(state: LimitedState, method: str, path: str, body: bytes) -> bytes:
    if path.startswith("/_summary"):
        return _response("200 OK", json.dumps(state.summary()).encode(), [])
    if path.startswith("/_reset") and method == "POST":
        state.reset(str(json.loads(body or b"{}").get("headers", "none")))
        return _response("200 OK", b'{"reset":true}', [])
    now = time.time()
    if state.first is None:
        state.first = now
    allowed = state.take()
    extra = []
    if state.headers == "ietf":
        left = math.floor(state.tokens)
        full_in = math.ceil((state.rate - state.tokens) / state.rate)
        extra = [
            f'RateLimit-Policy: "bench";q={state.rate:g};w=1',
            f'RateLimit: "bench";r={left};t={full_in}',
        ]
    if allowed:
        state.ok += 1
        state.last_ok = now
        return _response("200 OK", b'{"ok":true}', extra)
    state.refused += 1
    return _response("429 Too Many Requests", b'{"ok":false}', [*extra, "Retry-After: 1"])


async def serve(host: str, port: int, state: LimitedState) -> None:
    async def answer(method: str, path: str, _: dict[str, str], body: bytes) -> bytes:
        return _answer(state, method, path, body)

    await serve_http(host, port, answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    state = LimitedState(rate=args.rate)
    state.reset("none")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, state))


if __name__ == "__main__":
    main()
