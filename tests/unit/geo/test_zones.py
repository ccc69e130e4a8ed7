"""Specification of service zones and delivery circles: the H3 fast path agrees with the
exact geometry, and bad GeoJSON is refused with a reason."""

from __future__ import annotations

from typing import Any

import h3
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import live_cell_of
from geo.distance import haversine_m
from geo.zones import (
    CircleZone,
    PolygonZone,
    ZoneError,
    ZoneErrorReason,
    ZoneSet,
    circle_cover,
    parse_zone_geometry,
    polyfill,
    within_radius,
)
from tests.unit.geo.strategies import offset, seeded

E = ZoneErrorReason


def square(lng0: float, lat0: float, size: float) -> list[list[float]]:
    return [[lng0, lat0], [lng0 + size, lat0], [lng0 + size, lat0 + size], [lng0, lat0 + size]]


def closed(ring: list[list[float]]) -> list[list[float]]:
    return [*ring, ring[0]]


# A concave "C" in San Francisco with a triangular hole in its thick part, plus an island.
SF_ZONE = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            closed(
                [
                    [-122.50, 37.70],
                    [-122.38, 37.70],
                    [-122.38, 37.73],
                    [-122.46, 37.73],
                    [-122.46, 37.77],
                    [-122.38, 37.77],
                    [-122.38, 37.80],
                    [-122.50, 37.80],
                ]
            ),
            closed([[-122.49, 37.74], [-122.47, 37.74], [-122.48, 37.76]]),
        ],
        [closed(square(-122.37, 37.81, 0.01))],
    ],
}
# Fiji-like zone split at the antimeridian (RFC 7946 §3.1.9), and one at 78°N.
ANTIMERIDIAN_ZONE = {
    "type": "MultiPolygon",
    "coordinates": [
        [closed([[179.95, -17.05], [180.0, -17.05], [180.0, -16.95], [179.95, -16.95]])],
        [closed([[-180.0, -17.05], [-179.96, -17.05], [-179.98, -16.95], [-180.0, -16.95]])],
    ],
}
ARCTIC_ZONE = {
    "type": "Polygon",
    "coordinates": [closed([[15.4, 78.2], [15.8, 78.2], [15.7, 78.26], [15.5, 78.25]])],
}
ZONES = {
    "sf": PolygonZone.from_geojson("sf", SF_ZONE),
    "antimeridian": PolygonZone.from_geojson("antimeridian", ANTIMERIDIAN_ZONE),
    "arctic": PolygonZone.from_geojson("arctic", ARCTIC_ZONE),
}


def on_the_edges(zone: PolygonZone) -> list[tuple[float, float]]:
    """(lat, lng) of every vertex and of points along every edge of the zone."""
    points = []
    geoms = getattr(zone.geometry, "geoms", [zone.geometry])
    for poly in geoms:
        for ring in [poly.exterior, *poly.interiors]:
            for t in (0.0, 0.1, 0.37, 0.5, 0.81):
                p = ring.interpolate(t, normalized=True)
                points.append((p.y, p.x))
            points += [(y, x) for x, y in ring.coords]
    return points


@pytest.mark.parametrize("name", ZONES)
@seeded(300)
@given(u=st.floats(-0.05, 1.05), v=st.floats(-0.05, 1.05))
def test_cover_agrees_with_the_exact_test(name: str, u: float, v: float) -> None:
    """For random points over (and just beyond) the zone's bounding box, membership through
    the H3 cover equals shapely's exact covers() test (holes, concavity, islands, the
    antimeridian and 78°N included)."""
    zone = ZONES[name]
    min_x, min_y, max_x, max_y = zone.geometry.bounds
    lng, lat = min_x + u * (max_x - min_x), min_y + v * (max_y - min_y)
    assert zone.contains(lat, lng) == zone.geometry.covers(shapely.Point(lng, lat))


@pytest.mark.parametrize("name", ZONES)
def test_points_on_the_boundary_are_inside(name: str) -> None:
    """Vertices and points on edges (holes included) count as inside, like covers()."""
    zone = ZONES[name]
    for lat, lng in on_the_edges(zone):
        expected = zone.geometry.covers(shapely.Point(lng, lat))
        assert zone.contains(lat, lng) == expected


def test_cover_sets_are_disjoint_and_meaningful() -> None:
    """Interior cells are wholly inside (their corners too), boundary cells touch the edge,
    and the two sets do not overlap."""
    zone = ZONES["sf"]
    interior, boundary = zone.cover
    assert interior
    assert boundary
    assert not interior & boundary
    for cell in sorted(interior)[:200]:
        assert all(zone.geometry.covers(shapely.Point(x, y)) for y, x in h3.cell_to_boundary(cell))
    hole_center = (37.75, -122.48)
    assert live_cell_of(*hole_center) not in interior
    assert not zone.contains(*hole_center)


def test_antimeridian_zone_on_both_sides() -> None:
    """A zone split at 180° contains points just east and just west of the antimeridian."""
    zone = ZONES["antimeridian"]
    assert zone.contains(-17.0, 179.999)
    assert zone.contains(-17.0, -179.999)
    assert not zone.contains(-17.0, -179.9)


@pytest.mark.parametrize(
    ("geojson", "reason"),
    [
        ("{not json", E.NOT_GEOJSON),
        ([1, 2], E.NOT_GEOJSON),
        ({"type": "Feature", "geometry": None}, E.NOT_GEOJSON),
        ({"type": "Point", "coordinates": [1, 2]}, E.UNSUPPORTED_TYPE),
        ({"type": "Polygon"}, E.BAD_STRUCTURE),
        ({"type": "Polygon", "coordinates": []}, E.BAD_STRUCTURE),
        ({"type": "Polygon", "coordinates": [[1, 2, 3, 4]]}, E.BAD_STRUCTURE),
        (
            {"type": "Polygon", "coordinates": [[["a", 1], [1, 1], [1, 0], ["a", 1]]]},
            E.BAD_STRUCTURE,
        ),
        ({"type": "MultiPolygon", "coordinates": []}, E.BAD_STRUCTURE),
        ({"type": "Polygon", "coordinates": [square(0, 0, 1)]}, E.RING_NOT_CLOSED),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, E.RING_TOO_SHORT),
        (
            {"type": "Polygon", "coordinates": [closed([[0, 0], [float("nan"), 0], [1, 1]])]},
            E.NON_FINITE,
        ),
        # [lat, lng] order by mistake: -122 is not a latitude.
        (
            {
                "type": "Polygon",
                "coordinates": [closed([[37.7, -122.5], [37.8, -122.5], [37.8, -122.4]])],
            },
            E.OUT_OF_RANGE,
        ),
        ({"type": "Polygon", "coordinates": [closed(square(10, 86, 1))]}, E.POLAR),
        (
            {"type": "Polygon", "coordinates": [closed([[179.5, 0], [-179.5, 0], [-179.5, 1]])]},
            E.CROSSES_ANTIMERIDIAN,
        ),
        (
            {"type": "Polygon", "coordinates": [closed([[0, 0], [1, 1], [1, 0], [0, 1]])]},
            E.INVALID_GEOMETRY,
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [closed(square(0, 0, 1)), closed(square(5, 5, 1))],
            },
            E.INVALID_GEOMETRY,
        ),
    ],
)
def test_invalid_geojson_is_refused_with_a_reason(geojson: Any, reason: ZoneErrorReason) -> None:
    """Each defect maps to one stable reason; the error is a ValueError naming the place."""
    with pytest.raises(ZoneError) as info:
        parse_zone_geometry(geojson)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(reason.value)


def test_feature_and_json_text_are_accepted() -> None:
    """A GeoJSON Feature wrapping a polygon, given as text, parses like the bare geometry."""
    text = (
        '{"type":"Feature","properties":{},'
        '"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}'
    )
    assert parse_zone_geometry(text).equals(shapely.Polygon([(0, 0), (1, 0), (1, 1)]))


def test_too_large_zone_is_refused() -> None:
    """A zone needing more cells than `max_cells` is refused rather than exhausting memory."""
    geom = parse_zone_geometry({"type": "Polygon", "coordinates": [closed(square(0, 10, 1))]})
    with pytest.raises(ZoneError) as info:
        polyfill(geom, max_cells=1_000)
    assert info.value.reason == E.TOO_LARGE
    strip_ring: list[list[float]] = [
        [-170, 10],
        [0, 10],
        [170, 10],
        [170, 10.001],
        [0, 10.001],
        [-170, 10.001],
    ]
    strip = {"type": "Polygon", "coordinates": [closed(strip_ring)]}
    with pytest.raises(ZoneError) as info:
        PolygonZone.from_geojson("strip", strip)
    assert info.value.reason == E.TOO_LARGE  # a thin strip, but h3 would wrap it around 180°


# -- circles ------------------------------------------------------------------------------------

CHEF = (37.7749, -122.4194)
CHEF_RADIUS_M = 2_500.0
CHEF_COVER = circle_cover(*CHEF, CHEF_RADIUS_M)


@seeded(300)
@given(north_m=st.floats(-4_000, 4_000), east_m=st.floats(-4_000, 4_000))
def test_circle_cover_is_sound(north_m: float, east_m: float) -> None:
    """Every point within the radius has its cell in the cover, and every point in an
    interior cell is within the radius."""
    lat, lng = offset(*CHEF, north_m, east_m)
    cell = live_cell_of(lat, lng)
    inside = within_radius(lat, lng, *CHEF, CHEF_RADIUS_M)
    if inside:
        assert cell in CHEF_COVER.interior or cell in CHEF_COVER.boundary
    if cell in CHEF_COVER.interior:
        assert inside


@pytest.mark.parametrize("center", [CHEF, (0.0, 179.999), (80.0, 10.0)])
def test_circle_zone_agrees_with_haversine(center: tuple[float, float]) -> None:
    """A chef's delivery circle contains exactly the points within the radius (inclusive)."""
    zone = CircleZone("chef", *center, 1_200.0)
    for i in range(400):
        lat, lng = offset(*center, (i * 37 % 100 - 50) * 31.0, (i * 61 % 100 - 50) * 29.0)
        assert zone.contains(lat, lng) == (haversine_m(*center, lat, lng) <= 1_200.0)


def test_circle_cover_rejects_bad_radius() -> None:
    """A circle needs a finite, non-negative radius."""
    with pytest.raises(ValueError, match="radius_m"):
        circle_cover(*CHEF, -1.0)


# -- zone sets ----------------------------------------------------------------------------------


def test_zone_set_answers_which_zones_contain_a_point() -> None:
    """Overlapping zones of both kinds are all reported, in insertion order, matching each
    zone's exact test; a point in no zone gets []."""
    zones = ZoneSet([ZONES["sf"], CircleZone("chef", 37.72, -122.45, 1_500.0), ZONES["arctic"]])
    assert len(zones) == 3
    assert zones["chef"].zone_id == "chef"
    for i in range(500):
        lat = 37.69 + (i * 7919 % 500) / 500 * 0.13
        lng = -122.52 + (i * 104729 % 500) / 500 * 0.16
        expected = [z.zone_id for z in zones if z.contains_exact(lat, lng)]
        assert zones.zones_containing(lat, lng) == expected
        assert zones.zones_containing(lat, lng, cell=live_cell_of(lat, lng)) == expected
    assert zones.zones_containing(0.0, 0.0) == []


def test_zone_set_rejects_duplicate_ids() -> None:
    """Zone ids are unique within a set."""
    with pytest.raises(ValueError, match="duplicate"):
        ZoneSet([ZONES["sf"], ZONES["sf"]])
