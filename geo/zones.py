"""Service zones and delivery circles: exact geometry plus an H3 cover for fast membership.

A zone is polyfilled to res-9 cells split in two sets: *interior* cells lie wholly inside the
zone (a point in one is inside, no geometry test), *boundary* cells may straddle its edge (a
point in one gets the exact test). A point whose cell is in neither set is outside. Polygons
follow GeoJSON and shapely: [lng, lat] positions, straight edges in lng/lat (as h3 polyfill
treats them), boundary points count as inside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol

import h3
import msgspec
import numpy as np
import shapely
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, box

from geo.cells import LIVE_RES, cell_cap
from geo.distance import EARTH_RADIUS_M, haversine_m

DEFAULT_MAX_CELLS: Final = 250_000  # ~26,000 km² at res 9; larger zones need a coarser res
MAX_ZONE_ABS_LAT: Final = 85.0  # lng/lat-planar geometry and hexagons break down near poles
# A cell farther than this (degrees) from a zone's edge is wholly in or out. It dwarfs both
# the gap between h3's geodesic cell edges and straight lng/lat edges (< 1e-7° at res 9,
# even at 85°) and how far h3 puts a point outside its cell's boundary polygon (< 2e-9°).
_EDGE_EPS_DEG: Final = 1e-6
_M_PER_DEG: Final = math.radians(1.0) * EARTH_RADIUS_M
# (longitude shift, clip box): the world itself, then overhangs east of 180° and west of -180°
_WRAPS: Final = (
    (0.0, box(-180.0, -90.0, 180.0, 90.0)),
    (-360.0, box(180.0, -90.0, 540.0, 90.0)),
    (360.0, box(-540.0, -90.0, -180.0, 90.0)),
)


class ZoneErrorReason(StrEnum):
    NOT_GEOJSON = "not_geojson"  # not JSON, or not a GeoJSON object
    UNSUPPORTED_TYPE = "unsupported_type"  # only Polygon / MultiPolygon (or a Feature of one)
    BAD_STRUCTURE = "bad_structure"  # coordinates not nested as the type requires
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"  # lng outside [-180, 180] or lat outside [-90, 90]
    POLAR = "polar"  # beyond MAX_ZONE_ABS_LAT
    RING_TOO_SHORT = "ring_too_short"  # fewer than 4 positions
    RING_NOT_CLOSED = "ring_not_closed"  # first position != last
    CROSSES_ANTIMERIDIAN = "crosses_antimeridian"  # RFC 7946 §3.1.9: split it instead
    INVALID_GEOMETRY = "invalid_geometry"  # self-intersection, hole outside shell, ...
    EMPTY = "empty"  # no area
    TOO_LARGE = "too_large"  # polyfill would exceed max_cells


class ZoneError(ValueError):
    """A zone definition was refused; `reason` is a stable code, the message says where."""

    def __init__(self, reason: ZoneErrorReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class CellCover(NamedTuple):
    """Cells of one resolution covering a shape: `interior` wholly inside, `boundary` maybe."""

    interior: frozenset[str]
    boundary: frozenset[str]


class Zone(Protocol):
    """What `ZoneSet` needs from a zone."""

    @property
    def zone_id(self) -> str: ...

    @property
    def cover(self) -> CellCover: ...

    @property
    def res(self) -> int: ...

    def contains_exact(self, lat: float, lng: float) -> bool: ...


# -- GeoJSON -> shapely -------------------------------------------------------------------------


def parse_zone_geometry(geojson: Mapping[str, Any] | str | bytes) -> Polygon | MultiPolygon:
    """Validate a GeoJSON Polygon / MultiPolygon (or a Feature holding one) into shapely.

    Raises:
        ZoneError: with the reason and the offending ring / position.
    """
    obj: Any = geojson
    if isinstance(geojson, str | bytes):
        try:
            obj = msgspec.json.decode(geojson)
        except msgspec.DecodeError as exc:
            raise ZoneError(ZoneErrorReason.NOT_GEOJSON, f"not JSON ({exc})") from None
    if not isinstance(obj, Mapping):
        raise ZoneError(ZoneErrorReason.NOT_GEOJSON, "expected a GeoJSON object")
    if obj.get("type") == "Feature":
        obj = obj.get("geometry")
        if not isinstance(obj, Mapping):
            raise ZoneError(ZoneErrorReason.NOT_GEOJSON, "Feature has no geometry object")
    kind = obj.get("type")
    coords = obj.get("coordinates")
    geom: Polygon | MultiPolygon
    if kind == "Polygon":
        geom = _polygon(coords, "")
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise ZoneError(ZoneErrorReason.BAD_STRUCTURE, "MultiPolygon needs polygons")
        geom = MultiPolygon([_polygon(part, f"polygon {i} ") for i, part in enumerate(coords)])
    else:
        raise ZoneError(
            ZoneErrorReason.UNSUPPORTED_TYPE, f"type {kind!r}: need Polygon or MultiPolygon"
        )
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        raise ZoneError(ZoneErrorReason.INVALID_GEOMETRY, reason)
    if geom.is_empty or geom.area == 0.0:
        raise ZoneError(ZoneErrorReason.EMPTY, "zone has no area")
    return geom


def _polygon(rings: Any, where: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise ZoneError(ZoneErrorReason.BAD_STRUCTURE, f"{where}needs a list of rings")
    parsed = [_ring(ring, f"{where}ring {i}") for i, ring in enumerate(rings)]
    return Polygon(parsed[0], parsed[1:])


def _ring(ring: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list):
        raise ZoneError(ZoneErrorReason.BAD_STRUCTURE, f"{where}: not a list of positions")
    points: list[tuple[float, float]] = []
    for j, pos in enumerate(ring):
        if (
            not isinstance(pos, list)
            or not 2 <= len(pos) <= 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)
        ):
            raise ZoneError(
                ZoneErrorReason.BAD_STRUCTURE, f"{where} position {j}: need [lng, lat] numbers"
            )
        lng, lat = float(pos[0]), float(pos[1])
        if not (math.isfinite(lng) and math.isfinite(lat)):
            raise ZoneError(ZoneErrorReason.NON_FINITE, f"{where} position {j}")
        if not (-180.0 <= lng <= 180.0 and -90.0 <= lat <= 90.0):
            raise ZoneError(
                ZoneErrorReason.OUT_OF_RANGE,
                f"{where} position {j} = {pos}: positions are [lng, lat], "
                "lng in [-180, 180], lat in [-90, 90]",
            )
        if abs(lat) > MAX_ZONE_ABS_LAT:
            raise ZoneError(ZoneErrorReason.POLAR, f"{where} position {j}: |lat| > 85")
        if points and abs(lng - points[-1][0]) > 180.0:
            raise ZoneError(
                ZoneErrorReason.CROSSES_ANTIMERIDIAN,
                f"{where} position {j}: split the zone at 180° into a MultiPolygon",
            )
        points.append((lng, lat))
    if len(points) < 4:
        raise ZoneError(ZoneErrorReason.RING_TOO_SHORT, f"{where}: {len(points)} positions < 4")
    if points[0] != points[-1]:
        raise ZoneError(ZoneErrorReason.RING_NOT_CLOSED, f"{where}: first position != last")
    return points


# -- polyfill -----------------------------------------------------------------------------------


def polyfill(
    geom: Polygon | MultiPolygon, *, res: int = LIVE_RES, max_cells: int = DEFAULT_MAX_CELLS
) -> CellCover:
    """Split the cells touching `geom` into interior and boundary sets (see module docstring).

    Candidates are the cells whose centres fall in `geom` grown by more than a cell's
    circumradius (so no cell that touches `geom` is missed); each is then classified against
    the exact geometry.

    Raises:
        ZoneError: TOO_LARGE when the cover would exceed `max_cells`.
    """
    for part in getattr(geom, "geoms", [geom]):
        part_min_lng, _, part_max_lng, _ = part.bounds
        if part_max_lng - part_min_lng >= 180.0:  # h3 would read it as crossing 180°
            raise ZoneError(ZoneErrorReason.TOO_LARGE, "a polygon spans 180° of longitude")
    _, min_lat, _, max_lat = geom.bounds
    far_lat = min(89.0, max(abs(min_lat), abs(max_lat)) + 1.0)
    cos_far = math.cos(math.radians(far_lat))
    cell_area_m2 = float(h3.average_hexagon_area(res, "m^2"))
    est_cells = geom.area * _M_PER_DEG**2 * math.cos(math.radians((min_lat + max_lat) / 2))
    if est_cells / cell_area_m2 > max_cells:
        raise ZoneError(ZoneErrorReason.TOO_LARGE, f"more than {max_cells} res-{res} cells")
    # Grow by 1.5 x the largest plausible circumradius (2 x average edge), in longitude
    # degrees at the zone's most poleward latitude, the direction where degrees are shortest.
    pad_deg = 1.5 * 2.0 * float(h3.average_hexagon_edge_length(res, "m")) / (_M_PER_DEG * cos_far)
    grown = geom.buffer(pad_deg, quad_segs=8)
    candidates: set[str] = set()
    for piece in _wrap_antimeridian(grown):
        candidates.update(h3.geo_to_cells(piece.__geo_interface__, res))
    if len(candidates) > max_cells:
        raise ZoneError(ZoneErrorReason.TOO_LARGE, f"more than {max_cells} res-{res} cells")

    cells: list[str] = []
    hexes: list[Polygon] = []
    straddling: set[str] = set()
    for cell in candidates:
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
        if max(p[0] for p in ring) - min(p[0] for p in ring) > 180.0:
            straddling.add(cell)  # crosses the antimeridian: no planar hexagon, test exactly
        else:
            cells.append(cell)
            hexes.append(Polygon(ring))
    hex_arr = np.array(hexes, dtype=object)
    edge = geom.boundary
    shapely.prepare(edge)
    shapely.prepare(geom)
    near_edge = shapely.dwithin(edge, hex_arr, _EDGE_EPS_DEG)
    # A hexagon clear of the edge is wholly in or wholly out: one probe point decides.
    inside = shapely.intersects(geom, shapely.point_on_surface(hex_arr))
    interior = frozenset(
        c for c, near, ins in zip(cells, near_edge, inside, strict=True) if ins and not near
    )
    boundary = frozenset(c for c, near in zip(cells, near_edge, strict=True) if near)
    return CellCover(interior=interior, boundary=boundary | straddling)


def _wrap_antimeridian(geom: Polygon | MultiPolygon) -> Iterator[Polygon | MultiPolygon]:
    """The parts of a (grown) geometry, with any overhang past ±180° moved to the other side."""
    for shift, clip in _WRAPS:
        part = geom.intersection(clip)
        for poly in getattr(part, "geoms", [part]):
            if isinstance(poly, Polygon) and not poly.is_empty and poly.area > 0:
                yield translate(poly, xoff=shift) if shift else poly


# -- zones --------------------------------------------------------------------------------------


class PolygonZone:
    """A service area: exact shapely geometry (prepared) plus its H3 cover."""

    __slots__ = ("cover", "geometry", "res", "zone_id")

    def __init__(
        self,
        zone_id: str,
        geometry: Polygon | MultiPolygon,
        *,
        res: int = LIVE_RES,
        max_cells: int = DEFAULT_MAX_CELLS,
    ) -> None:
        self.zone_id = zone_id
        self.geometry = geometry
        self.res = res
        self.cover = polyfill(geometry, res=res, max_cells=max_cells)
        shapely.prepare(geometry)

    @classmethod
    def from_geojson(
        cls,
        zone_id: str,
        geojson: Mapping[str, Any] | str | bytes,
        *,
        res: int = LIVE_RES,
        max_cells: int = DEFAULT_MAX_CELLS,
    ) -> PolygonZone:
        """Validate and polyfill a GeoJSON zone. Raises `ZoneError`."""
        return cls(zone_id, parse_zone_geometry(geojson), res=res, max_cells=max_cells)

    def contains_exact(self, lat: float, lng: float) -> bool:
        """Exact test, boundary inclusive (prepared geometry)."""
        return bool(shapely.intersects_xy(self.geometry, lng, lat))

    def contains(self, lat: float, lng: float) -> bool:
        """Membership through the H3 cover; the exact test only for boundary cells."""
        cell = h3.latlng_to_cell(lat, lng, self.res)
        if cell in self.cover.interior:
            return True
        return cell in self.cover.boundary and self.contains_exact(lat, lng)


class CircleZone:
    """A chef's delivery radius: a haversine circle plus its H3 cover."""

    __slots__ = ("cover", "lat", "lng", "radius_m", "res", "zone_id")

    def __init__(
        self,
        zone_id: str,
        lat: float,
        lng: float,
        radius_m: float,
        *,
        res: int = LIVE_RES,
        max_cells: int = DEFAULT_MAX_CELLS,
    ) -> None:
        self.zone_id = zone_id
        self.lat = lat
        self.lng = lng
        self.radius_m = radius_m
        self.res = res
        self.cover = circle_cover(lat, lng, radius_m, res=res, max_cells=max_cells)

    def contains_exact(self, lat: float, lng: float) -> bool:
        return within_radius(lat, lng, self.lat, self.lng, self.radius_m)

    def contains(self, lat: float, lng: float) -> bool:
        cell = h3.latlng_to_cell(lat, lng, self.res)
        if cell in self.cover.interior:
            return True
        return cell in self.cover.boundary and self.contains_exact(lat, lng)


def within_radius(
    lat: float, lng: float, center_lat: float, center_lng: float, radius_m: float
) -> bool:
    """True when the point is within `radius_m` (haversine, inclusive) of the centre."""
    return haversine_m(center_lat, center_lng, lat, lng) <= radius_m


def circle_cover(
    lat: float,
    lng: float,
    radius_m: float,
    *,
    res: int = LIVE_RES,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> CellCover:
    """Cells that may hold points within `radius_m` of (lat, lng), split interior / boundary.

    Walks rings outward and stops at the first ring wholly beyond the radius: any farther
    point is reached from the centre only by crossing that ring (docs/zones.md).

    Raises:
        ValueError: for a negative or non-finite radius, or a cover above `max_cells`.
    """
    if not 0.0 <= radius_m < math.inf:
        raise ValueError(f"radius_m must be finite and >= 0, got {radius_m}")
    origin = h3.latlng_to_cell(lat, lng, res)
    interior: set[str] = set()
    boundary: set[str] = set()
    k = 0
    while True:
        ring = [origin] if k == 0 else h3.grid_ring(origin, k)
        any_near = False
        for cell in ring:
            cap = cell_cap(cell)
            d_m = haversine_m(lat, lng, cap.lat, cap.lng)
            if d_m - cap.radius_m > radius_m:
                continue
            any_near = True
            if d_m + cap.radius_m <= radius_m:
                interior.add(cell)
            else:
                boundary.add(cell)
        if not any_near:
            return CellCover(interior=frozenset(interior), boundary=frozenset(boundary))
        if len(interior) + len(boundary) > max_cells:
            raise ValueError(f"circle cover exceeds {max_cells} res-{res} cells")
        k += 1


class ZoneSet:
    """Answers "which zones contain this point" with one H3 lookup and few exact tests."""

    __slots__ = ("_by_cell", "_res", "_zones")

    def __init__(self, zones: Iterable[Zone], *, res: int = LIVE_RES) -> None:
        self._res = res
        self._zones: dict[str, Zone] = {}
        # cell -> ((zone, cell is interior), ...), in insertion order of the zones
        by_cell: dict[str, list[tuple[Zone, bool]]] = {}
        for zone in zones:
            if zone.res != res:
                raise ValueError(f"zone {zone.zone_id!r} is res {zone.res}, set is res {res}")
            if zone.zone_id in self._zones:
                raise ValueError(f"duplicate zone id {zone.zone_id!r}")
            self._zones[zone.zone_id] = zone
            for cell in zone.cover.interior:
                by_cell.setdefault(cell, []).append((zone, True))
            for cell in zone.cover.boundary:
                by_cell.setdefault(cell, []).append((zone, False))
        self._by_cell = {cell: tuple(entries) for cell, entries in by_cell.items()}

    def __len__(self) -> int:
        return len(self._zones)

    def __iter__(self) -> Iterator[Zone]:
        return iter(self._zones.values())

    def __getitem__(self, zone_id: str) -> Zone:
        return self._zones[zone_id]

    def zones_containing(self, lat: float, lng: float, *, cell: str | None = None) -> list[str]:
        """Ids of the zones containing the point (boundary inclusive).

        Pass `cell` when the caller already has the point's cell at this set's resolution
        (the ingest path computes the res-9 cell anyway).
        """
        if cell is None:
            cell = h3.latlng_to_cell(lat, lng, self._res)
        entries = self._by_cell.get(cell)
        if not entries:
            return []
        return [z.zone_id for z, interior in entries if interior or z.contains_exact(lat, lng)]
