"""``/schema`` offline: Swagger UI 5 (it reads OpenAPI 3.1) from the installed
``swagger-ui-py`` package, served by each service under ``/schema-ui/`` (public like
``/schema``), instead of from a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.response import File

from api.auth import PUBLIC_OPT_KEY
from api.problems import Problem

__all__ = ["render_plugins", "swagger_asset"]

_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
           "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
           "swagger-ui.css": "text/css; charset=utf-8",
           "favicon-32x32.png": "image/png"}


def _folder() -> Path:
    """The package's ``static`` folder, found without importing it (its import loads the
    web-framework glue it carries)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise Problem(404, "swagger-ui-py is not installed", code="not_found")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def render_plugins() -> list[SwaggerRenderPlugin]:
    """Swagger UI at ``/schema`` (and ``/schema/swagger``) with its assets from this service."""
    return [SwaggerRenderPlugin(
        js_url="/schema-ui/swagger-ui-bundle.js", css_url="/schema-ui/swagger-ui.css",
        standalone_preset_js_url="/schema-ui/swagger-ui-standalone-preset.js",
        favicon='<link rel="icon" type="image/png" href="/schema-ui/favicon-32x32.png">',
        path=["/", "/swagger"])]


@get("/schema-ui/{name:str}", opt={PUBLIC_OPT_KEY: True}, include_in_schema=False,
     sync_to_thread=False)
def swagger_asset(name: FromPath[str]) -> Response[Any]:
    if name not in _ASSETS:
        raise Problem(404, f"no asset {name[:60]!r}", code="not_found")
    return File(_folder() / name, media_type=_ASSETS[name], content_disposition_type="inline",
                headers={"Cache-Control": "public, max-age=86400"})
