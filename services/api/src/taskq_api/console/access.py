"""Who may use the web console, and proof that a form was posted from it.

The console takes the API's keys: the login form stores the key in an
http-only, SameSite=Strict cookie scoped to /ui, so page scripts cannot read it
and other sites cannot send it. Every form that changes state carries a CSRF
token that must equal a second random cookie (double submit): another site can
neither read that cookie nor set it, and no server-side session is needed, so
any API worker process can check it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Guard

from taskq_api.auth import key_matches, presented_key

CONSOLE_PATH = "/ui"
KEY_COOKIE = "taskq_console_key"
CSRF_COOKIE = "taskq_console_csrf"
CSRF_FIELD = "csrf_token"
FORM = "application/x-www-form-urlencoded"
LOGIN_OPT = "console_login"
"""Handlers with this opt (the login form, the console's assets) need no key."""


def console_guard(keys: Iterable[str]) -> Guard:
    """Lets a console request through with a valid key in the cookie (or the API's headers)."""
    encoded = tuple(key.encode() for key in keys)

    def require_console_key(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if not encoded or handler.opt.get(LOGIN_OPT):
            return
        presented = connection.cookies.get(KEY_COOKIE) or presented_key(connection.headers)
        if not presented or not key_matches(presented, encoded):
            raise NotAuthorizedException(detail="log in to the console with an API key")

    return require_console_key


def key_is_valid(presented: str, keys: Iterable[str]) -> bool:
    return bool(presented) and key_matches(presented, [key.encode() for key in keys])


def cookie(request: Request[Any, Any, Any], name: str, value: str, *, max_age: int) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=CONSOLE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=max_age,
    )


def csrf_token(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """This browser's CSRF token, and the cookie to set when it has none yet."""
    current = request.cookies.get(CSRF_COOKIE)
    if current:
        return current, None
    token = secrets.token_urlsafe(32)
    return token, cookie(request, CSRF_COOKIE, token, max_age=86_400)


async def checked_form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """The posted form, after checking its CSRF token against the cookie (403 if wrong)."""
    form = await request.form()
    posted = str(form.get(CSRF_FIELD) or "")
    expected = request.cookies.get(CSRF_COOKIE) or ""
    if not posted or not expected or not hmac.compare_digest(posted, expected):
        raise PermissionDeniedException(
            detail="the form's CSRF token is missing or wrong: reload the page and try again"
        )
    return {name: [str(value) for value in form.getall(name)] for name in form}


async def require_form(request: Request[Any, Any, Any]) -> None:
    """`before_request` of /ui, in place of the API's JSON-only hook: forms post urlencoded.

    What that hook guards against (another site posting a simple form) is
    answered here by the CSRF token every state-changing form must carry.
    """
    if request.method == "POST" and request.content_type[0].lower() != FORM:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"the console's forms are sent as {FORM}",
        )
