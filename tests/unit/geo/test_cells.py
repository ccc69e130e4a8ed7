"""Specification of the H3 helpers and the cell geometry the nearby bound relies on."""

from __future__ import annotations

import h3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import (
    HEAT_RES,
    LIVE_RES,
    REGION_RES,
    cell_cap,
    cell_of,
    disk,
    heat_cell_of,
    live_cell_of,
    max_dist_to_cell_m,
    min_dist_to_cell_m,
    parent_of,
    region_of,
    region_of_cell,
    ring,
)
from geo.distance import haversine_m
from tests.unit.geo.strategies import offset, seeded

LATS = st.floats(-89.9, 89.9)
LNGS = st.floats(-180.0, 180.0)


def test_resolutions() -> None:
    """Live index res 9, heat res 7, regions res 4 (docs/architecture.md)."""
    assert (LIVE_RES, HEAT_RES, REGION_RES) == (9, 7, 4)
    lat, lng = 37.7749, -122.4194
    assert h3.get_resolution(live_cell_of(lat, lng)) == 9
    assert h3.get_resolution(heat_cell_of(lat, lng)) == 7
    assert h3.get_resolution(region_of(lat, lng)) == 4


@seeded(100)
@given(lat=LATS, lng=LNGS)
def test_region_of_a_point_is_the_parent_of_its_live_cell(lat: float, lng: float) -> None:
    """Region and heat cell are parents of the live cell, never the coarse cell that contains
    the point (H3 children overhang their parent), so a courier's NATS subject, Redis hash
    tag and heat cell always agree with its live cell."""
    live = live_cell_of(lat, lng)
    assert region_of(lat, lng) == region_of_cell(live) == h3.cell_to_parent(live, REGION_RES)
    assert heat_cell_of(lat, lng) == h3.cell_to_parent(live, HEAT_RES)


def test_region_differs_from_the_containing_res4_cell_near_edges() -> None:
    """At (0, 0) the res-4 cell containing the point is not its live cell's parent: the
    reason regions are defined through the live cell."""
    assert region_of(0.0, 0.0) != h3.latlng_to_cell(0.0, 0.0, REGION_RES)


def test_parent_must_be_coarser() -> None:
    """Asking a coarse cell for a finer 'parent' is a programming error."""
    with pytest.raises(ValueError, match="res-9 parent of a res-4"):
        parent_of(region_of(1.0, 1.0), 9)


def test_bad_coordinates_raise() -> None:
    """h3 refuses NaN; the error is a ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - h3's own error subclass
        cell_of(float("nan"), 0.0)


@pytest.mark.parametrize("pentagon", h3.get_pentagons(LIVE_RES)[:6])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_ring_is_disk_difference_near_pentagons(pentagon: str, k: int) -> None:
    """`ring(c, k)` is exactly `disk(c, k) - disk(c, k-1)`, also around pentagons, which the
    nearby walk depends on (a missed cell would be a missed courier)."""
    for origin in [pentagon, *h3.grid_ring(pentagon, 2)]:
        assert set(ring(origin, k)) == set(disk(origin, k)) - set(disk(origin, k - 1))


def _points_near(lat: float, lng: float) -> st.SearchStrategy[tuple[float, float]]:
    return st.tuples(st.floats(-3000, 3000), st.floats(-3000, 3000)).map(
        lambda ne: offset(lat, lng, ne[0], ne[1])
    )


POINTS = st.one_of(
    st.tuples(LATS, LNGS),
    _points_near(0.0, 179.999),
    _points_near(80.0, 10.0),
    _points_near(89.99, 0.0),
    *(_points_near(*h3.cell_to_latlng(p)) for p in h3.get_pentagons(LIVE_RES)[:4]),
)


@seeded(400)
@given(point=POINTS)
def test_cell_cap_contains_every_point_h3_assigns_to_the_cell(point: tuple[float, float]) -> None:
    """The cap of a cell contains every point h3 maps to that cell (antimeridian, poles and
    pentagons included): this is what makes the nearby stopping bound sound."""
    lat, lng = point
    cell = live_cell_of(lat, lng)
    cap = cell_cap(cell)
    assert haversine_m(lat, lng, cap.lat, cap.lng) <= cap.radius_m


@seeded(200)
@given(query=POINTS, target=POINTS)
def test_cell_distance_bounds_bracket_the_true_distance(
    query: tuple[float, float], target: tuple[float, float]
) -> None:
    """For any point q and any point t, min_dist(q, cell(t)) <= d(q, t) <= max_dist(q, cell(t))."""
    cell = live_cell_of(*target)
    d_m = haversine_m(*query, *target)
    assert min_dist_to_cell_m(*query, cell) <= d_m <= max_dist_to_cell_m(*query, cell)


def test_cell_vertices_lie_in_the_cap() -> None:
    """The cap is at least as large as the farthest boundary vertex (pentagon included)."""
    for cell in [live_cell_of(37.77, -122.42), h3.get_pentagons(LIVE_RES)[0]]:
        cap = cell_cap(cell)
        for vlat, vlng in h3.cell_to_boundary(cell):
            assert haversine_m(cap.lat, cap.lng, vlat, vlng) < cap.radius_m
