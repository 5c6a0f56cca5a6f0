"""API keys: a Litestar guard in front of every route but the probes (SECURITY.md).

A guard rather than a middleware so it runs after routing: it sees the matched
route's path template (no trailing-slash or encoding tricks around the public
paths) and an unknown path still answers 404. Keys arrive as
`Authorization: Bearer <key>` or `X-API-Key: <key>` and are compared in
constant time against every configured key, so the time taken says nothing
about which key, or how much of one, was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.types import Guard

PROBE_PATHS = frozenset({"/health/live", "/health/ready"})
"""Orchestrators probe these without credentials."""
PUBLIC_OPT = "public"
"""Handlers with `opt={PUBLIC_OPT: True}` (vendor assets, the console's login page) need no key."""
METRICS_PATH = "/metrics"
BEARER_SCHEME = "bearerAuth"
HEADER_SCHEME = "apiKeyHeader"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="taskq"'}


def public_paths(*, metrics_public: bool) -> frozenset[str]:
    """Route templates that need no key."""
    return PROBE_PATHS | {METRICS_PATH} if metrics_public else PROBE_PATHS


def presented_key(headers: Any) -> str | None:
    """The key a request carries, from `Authorization: Bearer` first, else `X-API-Key`."""
    authorization = str(headers.get("authorization") or "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header_key = str(headers.get("x-api-key") or "").strip()
    return header_key or None


def key_matches(presented: str, keys: Iterable[bytes]) -> bool:
    """Constant-time comparison against every key; no early exit on a match."""
    candidate = presented.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


def api_key_guard(keys: Iterable[str], *, metrics_public: bool) -> Guard:
    """A guard that lets a request through only with one of `keys` (or to a public path)."""
    encoded = tuple(key.encode() for key in keys)
    open_paths = public_paths(metrics_public=metrics_public)

    def require_api_key(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if connection.scope.get("path_template") in open_paths or handler.opt.get(PUBLIC_OPT):
            return
        presented = presented_key(connection.headers)
        if presented is None:
            raise NotAuthorizedException(
                detail="an API key is required: send Authorization: Bearer <key> or X-API-Key",
                headers=CHALLENGE,
            )
        if not key_matches(presented, encoded):
            raise NotAuthorizedException(detail="the API key is not valid", headers=CHALLENGE)

    return require_api_key


def security_components() -> Components:
    """The two ways to present a key, as OpenAPI security schemes."""
    note = "Required on every operation but the probes when the server sets API_KEYS."
    return Components(
        security_schemes={
            BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", description=note),
            HEADER_SCHEME: SecurityScheme(
                type="apiKey", name="X-API-Key", security_scheme_in="header", description=note
            ),
        }
    )


def security_requirements(*, required: bool) -> list[SecurityRequirement]:
    """Either scheme satisfies the API; `{}` (no credentials) is listed when keys are off."""
    either: list[SecurityRequirement] = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
    return either if required else [*either, {}]
