"""The people's web apps on core: ``/track/<token>``, ``/kitchen/``, ``/courier/``, their
shared assets under ``/apps/``, the map library under ``/apps/vendor/`` and the streets
under the maps (``/api/v1/routing/streets/{z}/{x}/{y}``).

All public by design: the files hold no data, the streets are OpenStreetMap's. Every data
call carries the user's token (or, for the tracking page, the share token, which names one
order and nothing else).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from api.auth import PUBLIC_OPT_KEY
from api.core.deps import CoreDep
from api.problems import Problem
from apps import STATIC_DIR, maplibre_dir

__all__ = ["HANDLERS"]

_VENDOR = {"maplibre-gl.js": "text/javascript; charset=utf-8",
           "maplibre-gl.css": "text/css; charset=utf-8"}
_CACHE = {"Cache-Control": "public, max-age=86400"}
_MVT = "application/vnd.mapbox-vector-tile"


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


@get("/api/v1/routing/streets/{z:int}/{x:int}/{y:int}", opt={PUBLIC_OPT_KEY: True},
     sync_to_thread=True, tags=["routing"],
     summary="The road graph's streets as a Mapbox Vector Tile (public: OpenStreetMap data)")
def streets(core: CoreDep, request: Request[Any, Any, Any], z: FromPath[int], x: FromPath[int],
            y: FromPath[int]) -> Response[bytes]:
    """The streets the road engine rides (OSRM's Tile service over the ``ROADS`` folder),
    for the maps: layer ``speeds`` holds the road segments as lines. gzip'd; a client that
    does not accept gzip gets the plain tile. 404 ``no_roads`` without ``ROADS``."""
    if core.streets is None:
        raise Problem(404, "core has no road data (ROADS is not set)", code="no_roads")
    try:
        packed = core.streets.tile(z, x, y)
    except ValueError as exc:
        raise Problem(400, str(exc), code="bad_tile") from None
    headers = {**_CACHE, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=_MVT, headers=headers)
    return Response(gzip.decompress(packed), media_type=_MVT, headers=headers)


def _static(path: str, folder: Path, name: str) -> Router:
    return create_static_files_router(path=path, directories=[folder], html_mode=True,
                                      name=name, opt={PUBLIC_OPT_KEY: True},
                                      include_in_schema=False)


HANDLERS: list[Any] = [
    track_page, vendor, streets,
    _static("/apps/shared", STATIC_DIR / "shared", "apps-shared"),
    _static("/apps/track", STATIC_DIR / "track", "apps-track"),
    _static("/kitchen", STATIC_DIR / "kitchen", "kitchen"),
    _static("/courier", STATIC_DIR / "courier", "courier"),
]
