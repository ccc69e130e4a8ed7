"""A console's viewport as a set of res-7 H3 cells (pure: no I/O, no clock)."""

from __future__ import annotations

import math

import h3

from geo.cells import HEAT_RES, edge_length_m
from streams.wire import SubscribePayload

__all__ = ["ViewportError", "viewport_cells"]

_M_PER_DEG = 111_320.0
_HEAT_CELL_KM2 = 5.16  # average res-7 hexagon area


class ViewportError(ValueError):
    """The SUBSCRIBE payload names no valid viewport (``reason`` is the wire code)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def viewport_cells(sub: SubscribePayload, max_cells: int) -> frozenset[str]:
    """The res-7 cells of a SUBSCRIBE payload: explicit ``cells`` or every cell touching
    ``bbox`` (``[min_lng, min_lat, max_lng, max_lat]``).

    Raises:
        ViewportError: neither or both given, an invalid or non-res-7 cell, a malformed
            bbox, or more than ``max_cells`` cells.
    """
    if (sub.cells is None) == (sub.bbox is None):
        raise ViewportError("bad_viewport", "give exactly one of cells or bbox")
    if sub.cells is not None:
        if len(sub.cells) > max_cells:
            raise ViewportError("viewport_too_large", f"at most {max_cells} cells")
        for cell in sub.cells:
            if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != HEAT_RES:
                raise ViewportError("bad_cell", f"{cell!r} is not a res-{HEAT_RES} H3 cell")
        return frozenset(sub.cells)
    assert sub.bbox is not None
    min_lng, min_lat, max_lng, max_lat = sub.bbox
    if not all(math.isfinite(x) for x in sub.bbox) or not (
        -180 <= min_lng < max_lng <= 180 and -90 <= min_lat < max_lat <= 90
    ):
        raise ViewportError("bad_bbox", "bbox must be [min_lng, min_lat, max_lng, max_lat]")
    # Pad by one cell edge so cells that only overlap the bbox's border are included too.
    pad_lat = edge_length_m(HEAT_RES) / _M_PER_DEG
    mid_cos = max(0.01, math.cos(math.radians((min_lat + max_lat) / 2)))
    pad_lng = pad_lat / mid_cos
    lat0, lat1 = max(-89.9, min_lat - pad_lat), min(89.9, max_lat + pad_lat)
    lng0, lng1 = max(-180.0, min_lng - pad_lng), min(180.0, max_lng + pad_lng)
    area_km2 = ((lat1 - lat0) * _M_PER_DEG / 1000) * ((lng1 - lng0) * _M_PER_DEG * mid_cos / 1000)
    if area_km2 / _HEAT_CELL_KM2 > max_cells:
        raise ViewportError("viewport_too_large", f"the bbox covers more than {max_cells} cells")
    poly = h3.LatLngPoly([(lat0, lng0), (lat0, lng1), (lat1, lng1), (lat1, lng0)])
    cells = frozenset(h3.h3shape_to_cells(poly, HEAT_RES))
    if len(cells) > max_cells:
        raise ViewportError("viewport_too_large", f"the bbox covers more than {max_cells} cells")
    return cells
