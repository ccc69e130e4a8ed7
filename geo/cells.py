"""H3 helpers: the resolutions the system uses and the cell geometry nearby search relies on.

Cells are H3 string ids (``"89283082813ffff"``) everywhere in the public API, because that is
what Redis keys and NATS subjects carry. The nearby search uses the integer form internally
(``h3.api.basic_int``) where it saves work on the hot path.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final, NamedTuple

import h3
import h3.api.basic_int as h3i

from geo.distance import EARTH_RADIUS_M, haversine_m

LIVE_RES: Final = 9  # live courier index (~0.1 km² cells)
HEAT_RES: Final = 7  # supply/demand heat map (~5 km² cells)
REGION_RES: Final = 4  # regions: NATS subjects `loc.<region>.<courier_id>`, Redis hash tags

# Every point h3 assigns to a cell lies within the cell's circumradius of its centre (checked
# empirically on random, pentagon-adjacent and icosahedron-edge points: worst ratio 0.9992).
# The margin absorbs floating-point noise so bounds built on it stay conservative.
_CAP_MARGIN_REL: Final = 1e-3
_CAP_MARGIN_M: Final = 0.05


class CellCap(NamedTuple):
    """A spherical cap containing a whole cell: centre and radius (metres, with margin)."""

    lat: float
    lng: float
    radius_m: float


def cell_of(lat: float, lng: float, res: int = LIVE_RES) -> str:
    """The H3 cell containing a point.

    Raises:
        ValueError: for coordinates h3 cannot index (NaN, inf).
    """
    return h3.latlng_to_cell(lat, lng, res)


def live_cell_of(lat: float, lng: float) -> str:
    """The res-9 cell used by the live courier index."""
    return h3.latlng_to_cell(lat, lng, LIVE_RES)


def heat_cell_of(lat: float, lng: float) -> str:
    """The res-7 heat cell of a point: the parent of its live cell (see `region_of`)."""
    return h3.cell_to_parent(h3.latlng_to_cell(lat, lng, LIVE_RES), HEAT_RES)


def region_of(lat: float, lng: float) -> str:
    """The res-4 region of a point (sharding key, NATS subject token).

    Defined as the parent of the point's live cell, not as the res-4 cell containing the
    point: H3 children do not nest exactly in their parent's area, and near a region's edge
    the two differ. Deriving it from the live cell keeps a courier's NATS subject, its Redis
    hash tag and its cell key in agreement.
    """
    # The integer API and one hex format: half the cost of the string API's conversions,
    # and the ingest path asks it for every fix.
    return format(h3i.cell_to_parent(h3i.latlng_to_cell(lat, lng, LIVE_RES), REGION_RES), "x")


def live_cell_and_region(lat: float, lng: float) -> tuple[str, str]:
    """(`live_cell_of`, `region_of`) of a point, for the indexer's every fix (integer API)."""
    cell = h3i.latlng_to_cell(lat, lng, LIVE_RES)
    return format(cell, "x"), format(h3i.cell_to_parent(cell, REGION_RES), "x")


@lru_cache(maxsize=1 << 16)
def region_of_cell(cell: str) -> str:
    """The res-4 region (parent) of a cell of resolution 4 or finer; cached for the ingest
    path, which asks it for every fix."""
    return parent_of(cell, REGION_RES)


def parent_of(cell: str, res: int) -> str:
    """The ancestor of `cell` at `res` (the cell itself when `res` equals its resolution).

    Raises:
        ValueError: when `res` is finer than the cell's resolution.
    """
    cell_res = h3.get_resolution(cell)
    if res > cell_res:
        raise ValueError(f"cannot take a res-{res} parent of a res-{cell_res} cell")
    return h3.cell_to_parent(cell, res)


def disk(cell: str, k: int) -> list[str]:
    """All cells within grid distance `k` of `cell` (pentagon-safe), in no particular order."""
    return list(h3.grid_disk(cell, k))


def ring(cell: str, k: int) -> list[str]:
    """Cells at grid distance exactly `k` from `cell` (pentagon-safe in h3 >= 4.1)."""
    return list(h3.grid_ring(cell, k))


def cell_center(cell: str) -> tuple[float, float]:
    """The (lat, lng) of a cell's centre."""
    return h3.cell_to_latlng(cell)


def edge_length_m(res: int = LIVE_RES) -> float:
    """Average hexagon edge length at `res`, metres (h3's published average)."""
    return float(h3.average_hexagon_edge_length(res, "m"))


def cell_cap(cell: str) -> CellCap:
    """A cap (centre, radius) that contains every point of the cell."""
    return cell_cap_int(h3i.str_to_int(cell))


@lru_cache(maxsize=1 << 15)
def cell_cap_int(cell: int) -> CellCap:
    """`cell_cap` for an integer cell id; cached because cell geometry never changes.

    The radius is the largest centre-to-vertex distance. A cap under a hemisphere is convex, so
    containing every boundary vertex (face-crossing vertices included) contains the geodesic
    edges between them and therefore the whole cell.
    """
    lat, lng = h3i.cell_to_latlng(cell)
    radius_m = max(haversine_m(lat, lng, vlat, vlng) for vlat, vlng in h3i.cell_to_boundary(cell))
    return CellCap(lat, lng, radius_m * (1.0 + _CAP_MARGIN_REL) + _CAP_MARGIN_M)


def min_dist_to_cell_m(lat: float, lng: float, cell: str) -> float:
    """A lower bound (metres, possibly negative) on the distance from a point to any point of
    the cell: distance to the cap centre minus the cap radius."""
    cap = cell_cap(cell)
    return haversine_m(lat, lng, cap.lat, cap.lng) - cap.radius_m


def max_dist_to_cell_m(lat: float, lng: float, cell: str) -> float:
    """An upper bound (metres) on the distance from a point to any point of the cell."""
    cap = cell_cap(cell)
    return haversine_m(lat, lng, cap.lat, cap.lng) + cap.radius_m


def metres_to_lat_deg(dist_m: float) -> float:
    """Degrees of latitude spanned by `dist_m` along a meridian (spherical model)."""
    return math.degrees(dist_m / EARTH_RADIUS_M)


def regions_near(region: str, radius_m: float) -> list[str]:
    """The regions (res-4) that can hold a point within `radius_m` of a point filed in
    `region` (whose live cell's parent is `region`): its grid disk of 1 ring per ~29 km.

    Two res-4 cells two rings apart are about one cell width (sqrt(3) x 22.6 km ~ 39 km)
    apart; 1.3 edges (~29 km) leaves room for the children's ragged edges.
    """
    k = 1 + int(radius_m // (1.3 * edge_length_m(REGION_RES))) if math.isfinite(radius_m) else 3
    return sorted(h3.grid_disk(region, k))
