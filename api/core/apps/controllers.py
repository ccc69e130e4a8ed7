"""The people's web apps on core: ``/track/<token>``, ``/kitchen/``, ``/courier/``, their
shared assets under ``/apps/`` and the map library under ``/apps/vendor/``.

All public by design: the files hold no data. Every data call carries the user's token (or,
for the tracking page, the share token, which names one order and nothing else).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from api.auth import PUBLIC_OPT_KEY
from api.problems import Problem
from apps import STATIC_DIR, maplibre_dir

__all__ = ["HANDLERS"]

_VENDOR = {"maplibre-gl.js": "text/javascript; charset=utf-8",
           "maplibre-gl.css": "text/css; charset=utf-8"}
_CACHE = {"Cache-Control": "public, max-age=86400"}


@get("/track/{token:str}", opt={PUBLIC_OPT_KEY: True}, include_in_schema=False)
async def track_page(token: FromPath[str]) -> File:
    """The tracking page; it reads its token from its own address."""
    del token  # the page's script reads it from location.pathname
    return File(STATIC_DIR / "track" / "index.html", content_disposition_type="inline",
                media_type="text/html; charset=utf-8",
                headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@get("/apps/vendor/{name:str}", opt={PUBLIC_OPT_KEY: True}, include_in_schema=False,
     sync_to_thread=False)
def vendor(name: FromPath[str]) -> Response[Any]:
    """MapLibre GL JS from the installed ``maplibre`` package (no CDN)."""
    folder = maplibre_dir()
    if name not in _VENDOR or folder is None:
        raise Problem(404, f"no asset {name[:60]!r}", code="not_found")
    return File(folder / name, media_type=_VENDOR[name], content_disposition_type="inline",
                headers=_CACHE)


def _static(path: str, folder: Path, name: str) -> Router:
    return create_static_files_router(path=path, directories=[folder], html_mode=True,
                                      name=name, opt={PUBLIC_OPT_KEY: True},
                                      include_in_schema=False)


HANDLERS: list[Any] = [
    track_page, vendor,
    _static("/apps/shared", STATIC_DIR / "shared", "apps-shared"),
    _static("/apps/track", STATIC_DIR / "track", "apps-track"),
    _static("/kitchen", STATIC_DIR / "kitchen", "kitchen"),
    _static("/courier", STATIC_DIR / "courier", "courier"),
]
