"""Street tiles: the road graph the engine rides, as Mapbox Vector Tiles (OSRM's Tile service),
so the apps' and the console's maps draw the same streets that times and routes come from.

A tile's ``speeds`` layer holds the graph's road segments as lines (with ``speed``, ``name``,
``is_small``, …); OSRM answers zooms 12 and above only (below, a tile would hold a whole
region's graph), so smaller zooms get an empty tile. Tiles are gzip-compressed once and kept
in a small LRU: the same tile is asked by every page that shows the same streets.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from typing import Any

from roads.model import RoadTravelModel
from roads.profiles import Profile

__all__ = ["MAX_ZOOM", "MIN_ZOOM", "StreetTiles"]

MIN_ZOOM = 12
"""OSRM's Tile service answers from this zoom on."""
MAX_ZOOM = 18
"""Beyond this the map over-zooms the z18 tile (its geometry is already street-exact)."""
_PREFERRED: tuple[Profile, ...] = ("bicycle", "car", "foot")
"""Whose graph is drawn: the bike's (the default vehicle, and it holds the side streets a car
profile leaves out), else whatever was built."""


class StreetTiles:
    """gzip'd vector tiles of one road model's graph, cached."""

    def __init__(self, model: RoadTravelModel, *, cache_tiles: int = 256) -> None:
        self.profile: Profile = next(p for p in (*_PREFERRED, *model.engines)
                                     if p in model.engines)
        self._engine: Any = model.engines[self.profile]
        self.bounds = model.manifest.bbox
        self._cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._cap = cache_tiles
        self._lock = threading.Lock()  # served from worker threads

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The gzip'd MVT of tile z/x/y (an empty tile below `MIN_ZOOM` or off the data).

        Raises:
            ValueError: z outside 0..`MAX_ZOOM`, or x/y outside the zoom's grid.
        """
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise ValueError(f"no tile {z}/{x}/{y} (zoom 0..{MAX_ZOOM}, x and y in 0..2^z-1)")
        key = (z, x, y)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        raw = b""
        if z >= MIN_ZOOM:
            import osrm

            raw = bytes(self._engine.Tile(osrm.TileParameters([x, y, z])))
        packed = gzip.compress(raw, compresslevel=6)
        with self._lock:
            self._cache[key] = packed
            while len(self._cache) > self._cap:
                self._cache.popitem(last=False)
        return packed
