"""One log line per request, tied to a request id the client sees in `X-Request-ID`.

An incoming `X-Request-ID` is kept when it is a plain token (so a caller's or a
proxy's id follows the request through), otherwise a new one is made. The id
is bound to every line logged while the request runs (loguru contextualize),
so an error logged by a handler can be found from the response a client got.
Only the path is logged, never the query string or any header value.
"""

from __future__ import annotations

import re
import time
import uuid

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger

HEADER = "x-request-id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes arrive every few seconds: logged only at DEBUG.
_QUIET_PREFIXES = ("/health/", "/metrics")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            candidate = value.decode("latin-1")
            if _ACCEPTED_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Outermost ASGI middleware: request id in, request id out, one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with logger.contextualize(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                path = scope["path"]
                quiet = path.startswith(_QUIET_PREFIXES) and status < 500
                logger.bind(
                    method=scope["method"],
                    path=path,
                    route=scope.get("path_template"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000.0, 2),
                ).log(
                    "DEBUG" if quiet else ("WARNING" if status >= 500 else "INFO"),
                    "{} {} {}",
                    scope["method"],
                    path,
                    status,
                )
