"""The taskq API over HTTP: one client per command run, errors turned into exit messages.

Every failure the API reports arrives in one JSON shape (`status_code`, `error`,
`detail`, `field`); it is shown as it is, because the API's detail already names
the field at fault. A route the server does not have (an older taskq) is told
apart from a resource that is not there by asking the server's own spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
SPEC_PATH = "/schema/openapi.json"


class ApiError(click.ClickException):
    """The API answered with an error: its status and detail, exit status 1."""

    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body if isinstance(body, dict) else {}
        error = self.body.get("error") or f"HTTP {status_code}"
        detail = self.body.get("detail") or str(body)[:500]
        field = self.body.get("field")
        super().__init__(
            f"{status_code} {error}: {detail}" + (f" (field: {field})" if field else "")
        )


class Unreachable(click.ClickException):
    """The API could not be reached at all (connection refused, DNS, timeout)."""


class RouteMissing(click.ClickException):
    """The server runs a taskq without this route: say so instead of a bare 404."""

    exit_code = 2


@dataclass(frozen=True)
class Route:
    """An API operation as the spec names it: method and path template."""

    method: str
    template: str

    def path(self, **params: object) -> str:
        return self.template.format(**{name: str(value) for name, value in params.items()})


class ApiClient:
    """Synchronous calls to one taskq API; the key never appears in any message."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        headers = {"Accept": "application/json", "User-Agent": "taskq-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        route: Route,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        **path_params: object,
    ) -> Any:
        """The decoded JSON reply of `route`; raises ApiError, RouteMissing or Unreachable."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(
                route.method,
                route.path(**path_params),
                json=json,
                params=query or None,
            )
        except httpx.HTTPError as error:
            raise Unreachable(
                f"cannot reach the taskq API at {self.base_url}: {type(error).__name__}: {error}"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        body = _decoded(response)
        if response.status_code in (404, 405) and not self.offers(route):
            raise RouteMissing(
                f"the taskq API at {self.base_url} does not offer {route.method} "
                f"{route.template}: it runs an older taskq; upgrade the server to use "
                "this command"
            )
        raise ApiError(response.status_code, body)

    def offers(self, route: Route) -> bool:
        """Whether the server's OpenAPI spec lists this operation (True when it cannot tell)."""
        try:
            response = self._http.get(SPEC_PATH)
        except httpx.HTTPError:
            return True
        if not response.is_success:
            return True
        paths = _decoded(response).get("paths", {}) if response.content else {}
        return route.method.lower() in paths.get(route.template, {})


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:500]}
