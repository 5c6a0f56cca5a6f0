"""The web console at /ui: server-rendered pages over the API's own repositories.

One Router, registered by the app: its own key check (cookie or header, see
access.py) and HTML error pages instead of the API's JSON errors. Assets are
files of this package served under /ui/static; nothing comes from another origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from loguru import logger

from taskq_api.auth import PUBLIC_OPT
from taskq_api.console.access import CONSOLE_PATH, LOGIN_OPT, console_guard, require_form
from taskq_api.console.actions import ConsoleActions
from taskq_api.console.pages import ConsolePages
from taskq_api.console.rendering import render
from taskq_core.database import AsyncPool
from taskq_core.errors import (
    DatabaseUnavailableError,
    InvalidFieldError,
    NotFoundError,
    TaskqError,
)
from taskq_core.repository.console import ConsoleRepository

STATIC = Path(__file__).resolve().parent / "static"
AnyRequest = Request[Any, Any, Any]


def _login_first(request: AnyRequest, _: NotAuthorizedException) -> Response[Any]:
    if request.method == "GET":
        return Redirect(f"{CONSOLE_PATH}/login", status_code=303)
    return render(request, "error.html", status_code=401, message="Log in again: no valid key.")


def _error_page(request: AnyRequest, error: Exception) -> Response[str]:
    if isinstance(error, InvalidFieldError):
        return render(request, "error.html", status_code=400, message=error.message)
    if isinstance(error, NotFoundError | DatabaseUnavailableError):
        status = 404 if isinstance(error, NotFoundError) else 503
        return render(request, "error.html", status_code=status, message=error.message)
    if isinstance(error, HTTPException):
        return render(request, "error.html", status_code=error.status_code, message=error.detail)
    logger.opt(exception=error).error("console page failed")
    return render(request, "error.html", status_code=500, message="Something failed; see the logs.")


def console_router(pool: AsyncPool, api_keys: tuple[str, ...]) -> Router:
    """Everything under /ui, guarded by the API keys (when the API has any)."""
    console = ConsoleRepository(pool)

    async def provide_console() -> ConsoleRepository:
        return console

    async def provide_api_keys() -> tuple[str, ...]:
        return api_keys

    assets = create_static_files_router(
        path="/static",
        directories=[STATIC],
        name="console-assets",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600),
        opt={LOGIN_OPT: True},
    )
    return Router(
        path=CONSOLE_PATH,
        route_handlers=[ConsolePages, ConsoleActions, assets],
        dependencies={"console": Provide(provide_console), "api_keys": Provide(provide_api_keys)},
        # The API's header guard lets /ui through; this router checks keys its own way.
        opt={PUBLIC_OPT: True},
        guards=[console_guard(api_keys)],
        before_request=require_form,
        exception_handlers={
            NotAuthorizedException: _login_first,
            PermissionDeniedException: _error_page,
            ValidationException: _error_page,
            HTTPException: _error_page,
            InvalidFieldError: _error_page,
            NotFoundError: _error_page,
            DatabaseUnavailableError: _error_page,
            TaskqError: _error_page,
            Exception: _error_page,
        },
        include_in_schema=False,
    )
