"""API docs that work offline: Swagger UI's assets are served by taskq, not fetched from a CDN.

The reference's documentation paths (/swagger/index.html, /swagger/doc.json) point at
the spec Litestar serves under /schema. The JS, CSS and favicon come from the
`swagger-ui-bundle-v2` wheel, so a browser with no internet access still renders the
docs (Litestar's defaults load them from jsDelivr).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from taskq_api.auth import PUBLIC_OPT

SWAGGER_ASSETS_PATH = "/static/swagger-ui"
"""Where the bundled Swagger UI files are served; public, like any vendor asset."""


class SwaggerAliasController(Controller):
    path = "/swagger"
    include_in_schema = False

    @get("/index.html", operation_id="swaggerIndex")
    async def index(self) -> Redirect:
        return Redirect("/schema/swagger")

    @get("/doc.json", operation_id="swaggerDocJson")
    async def doc(self) -> Redirect:
        return Redirect("/schema/openapi.json")


def swagger_render_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at /schema/swagger, loading every asset from SWAGGER_ASSETS_PATH."""
    return SwaggerRenderPlugin(
        path="/swagger",
        js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=(
            f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS_PATH}/favicon-32x32.png'>"
        ),
    )


def swagger_assets_router() -> Router:
    """The Swagger UI files of the installed wheel; versioned by the wheel, so cached a day."""
    return create_static_files_router(
        path=SWAGGER_ASSETS_PATH,
        directories=[Path(str(swagger_ui_path))],
        name="swagger-assets",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True),
        opt={PUBLIC_OPT: True},
    )
