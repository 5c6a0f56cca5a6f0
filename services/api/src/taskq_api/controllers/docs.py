"""The reference's documentation paths, pointing at the OpenAPI Litestar serves under /schema."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect


class SwaggerAliasController(Controller):
    path = "/swagger"
    include_in_schema = False

    @get("/index.html", operation_id="swaggerIndex")
    async def index(self) -> Redirect:
        return Redirect("/schema/swagger")

    @get("/doc.json", operation_id="swaggerDocJson")
    async def doc(self) -> Redirect:
        return Redirect("/schema/openapi.json")
