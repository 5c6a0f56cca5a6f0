"""Server-side HTML: Jinja2 templates (autoescaped) packaged with the API, no front-end build."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType

from taskq_api.console.access import CSRF_FIELD, csrf_token
from taskq_api.console.views import age, pretty_json

SECURITY_HEADERS = {
    # Everything the console loads is its own: no inline script, no other origin.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    templates = Environment(
        loader=PackageLoader("taskq_api.console", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["age"] = age
    templates.filters["pretty_json"] = pretty_json
    return templates


def render(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Response[str]:
    """A page, with this browser's CSRF token in its forms (and its cookie set if new)."""
    token, new_cookie = csrf_token(request)
    html = (
        environment()
        .get_template(template)
        .render(csrf_field=CSRF_FIELD, csrf_token=token, path=request.url.path, **context)
    )
    return Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers=SECURITY_HEADERS,
        cookies=[new_cookie] if new_cookie else None,
    )
