"""The people's web apps, served by core as static files (no build step, no CDN): the
customer's tracking page (``/track/<token>``), the chef's kitchen screen (``/kitchen/``) and
the courier app (``/courier/``), with the map library from an installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["STATIC_DIR", "maplibre_dir"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


def maplibre_dir() -> Path | None:
    """``maplibre-gl.js``/``.css`` as the ``maplibre`` package ships them (found without
    importing it: its import logs about optional frameworks); None when not installed."""
    spec = importlib.util.find_spec("maplibre")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "srcjs"
    return folder if (folder / "maplibre-gl.js").is_file() else None
