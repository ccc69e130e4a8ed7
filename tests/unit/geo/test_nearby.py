"""Specification of nearby search: it returns exactly what a brute-force haversine scan returns.

The index stand-in is a dict of res-9 cell -> rows, as the Redis adapter would serve it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import h3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import LIVE_RES, disk, live_cell_of
from geo.distance import haversine_m
from geo.nearby import (
    MemberRow,
    NearbyResult,
    NearbySearch,
    nearby,
    nearby_bruteforce,
)
from tests.unit.geo.strategies import offset, seeded

NOW_MS = 1_750_000_000_000

ANCHORS = {
    "city": (37.7749, -122.4194),
    "antimeridian_east": (0.3, 179.99),
    "antimeridian_west": (-16.9, -179.99),
    "arctic": (80.0, 10.0),
}
PENTAGON = h3.cell_to_latlng(h3.get_pentagons(LIVE_RES)[3])  # all res-9 pentagons are at sea


class CellIndex:
    """Dict-of-cells stand-in for the Redis index; records every lookup."""

    def __init__(self, rows: Iterable[MemberRow]) -> None:
        self.rows = list(rows)
        self.by_cell: dict[str, list[MemberRow]] = {}
        for row in self.rows:
            self.by_cell.setdefault(live_cell_of(row[1], row[2]), []).append(row)
        self.calls: list[list[str]] = []

    def members(self, cells: list[str]) -> list[MemberRow]:
        self.calls.append(cells)
        return [row for cell in cells for row in self.by_cell.get(cell, ())]


def search(index: CellIndex, lat: float, lng: float, **kw: float) -> NearbyResult:
    return nearby(lat, lng, members=index.members, now_ms=NOW_MS, **kw)  # type: ignore[arg-type]


@st.composite
def scenes(draw: st.DrawFn, anchor: tuple[float, float]) -> tuple[CellIndex, dict[str, float]]:
    """A point cloud around `anchor`, some points exactly on cell vertices (ring boundaries),
    some sharing a position (distance ties), some stale, plus a query."""
    a_lat, a_lng = anchor
    spread_m = draw(st.sampled_from([400.0, 2500.0, 10_000.0]))
    q_lat, q_lng = offset(a_lat, a_lng, draw(st.floats(-300, 300)), draw(st.floats(-300, 300)))
    near_cells = sorted(disk(live_cell_of(q_lat, q_lng), 3))
    if draw(st.booleans()):  # query exactly on a cell corner
        q_lat, q_lng = h3.cell_to_boundary(draw(st.sampled_from(near_cells)))[0]
    rng = draw(st.randoms(use_true_random=False))
    n_points = draw(st.integers(0, 300))
    positions = [
        offset(a_lat, a_lng, rng.uniform(-spread_m, spread_m), rng.uniform(-spread_m, spread_m))
        for _ in range(n_points)
    ]
    for cell, vertex in draw(st.lists(st.tuples(st.sampled_from(near_cells), st.integers(0, 9)))):
        boundary = h3.cell_to_boundary(cell)
        positions.append(boundary[vertex % len(boundary)])
    if positions:
        positions += draw(st.lists(st.sampled_from(positions), max_size=5))  # ties
    ages_ms = [0, 1_000, 59_999, 60_000, 60_001, 3_600_000]
    rows = [
        (f"c{i:04d}", lat, lng, NOW_MS - rng.choice(ages_ms))
        for i, (lat, lng) in enumerate(positions)
    ]
    radius_m = draw(st.one_of(st.floats(0, 400), st.floats(400, 3_000), st.floats(3_000, 12_000)))
    on_radius = draw(st.booleans())
    if rows and on_radius:  # a member exactly on the radius
        _, p_lat, p_lng, _ = draw(st.sampled_from(rows))
        radius_m = haversine_m(q_lat, q_lng, p_lat, p_lng)
    limit = draw(st.one_of(st.integers(1, 12), st.integers(1, len(rows) + 3)))
    return CellIndex(rows), {"lat": q_lat, "lng": q_lng, "radius_m": radius_m, "limit": limit}


def assert_matches_bruteforce(index: CellIndex, query: dict[str, float]) -> NearbyResult:
    result = search(index, **query)
    expected = nearby_bruteforce(index.rows, now_ms=NOW_MS, **query)  # type: ignore[arg-type]
    assert result.complete
    assert result.hits == expected
    return result


@pytest.mark.parametrize("anchor", ANCHORS.values(), ids=ANCHORS.keys())
@seeded(80)
@given(data=st.data())
def test_nearby_equals_bruteforce(anchor: tuple[float, float], data: st.DataObject) -> None:
    """For random clouds (cell corners, ties, stale members, members exactly on the radius,
    small to large radii, limit below and above the count), in a city, across the
    antimeridian and at 80°N, the search returns exactly the brute-force answer in the same
    (distance, id) order, and says it is complete."""
    index, query = data.draw(scenes(anchor))
    assert_matches_bruteforce(index, query)


@seeded(30)
@given(data=st.data())
def test_nearby_around_a_pentagon(data: st.DataObject) -> None:
    """Around a pentagon, where rings have fewer cells and grid distances bend, the answer is
    still exact (fewer examples: h3's pentagon-safe ring walk is slow there)."""
    index, query = data.draw(scenes(PENTAGON))
    assert_matches_bruteforce(index, query)


@seeded(30)
@given(data=st.data())
def test_nearby_at_the_pole(data: st.DataObject) -> None:
    """Around the North Pole, where every meridian meets, the answer is still exact."""
    index, query = data.draw(scenes((89.995, 0.0)))
    assert_matches_bruteforce(index, query)


def test_each_cell_is_fetched_once_and_steps_grow_a_disk() -> None:
    """Successive batches never repeat a cell, and together they are a full k-disk (so the
    proof's "every cell within grid distance k was visited" holds)."""
    rows = [(f"c{i}", *offset(37.77, -122.42, 150.0 * i, 0.0), NOW_MS) for i in range(40)]
    index = CellIndex(rows)
    result = search(index, 37.77, -122.42, radius_m=5_000, limit=30)
    fetched = [cell for batch in index.calls for cell in batch]
    assert len(fetched) == len(set(fetched)) == result.cells_fetched
    assert set(fetched) == set(disk(live_cell_of(37.77, -122.42), result.rings))
    assert len(index.calls) == result.round_trips


def test_first_step_is_the_query_cell_and_its_neighbours() -> None:
    """The first batch is disk 1 (7 cells): the query point may lie on its cell's edge."""
    s = NearbySearch(37.77, -122.42, radius_m=1_000, limit=5, now_ms=NOW_MS)
    cells = s.next_cells()
    assert cells is not None
    assert set(cells) == set(disk(live_cell_of(37.77, -122.42), 1))


def test_tiny_radius_deep_inside_a_cell_fetches_only_that_cell() -> None:
    """When the radius cannot reach a neighbouring cell, one cell is one round trip."""
    center = h3.cell_to_latlng(live_cell_of(37.77, -122.42))
    index = CellIndex([("a", *center, NOW_MS)])
    result = search(index, *center, radius_m=20, limit=5)
    assert index.calls == [[live_cell_of(*center)]]
    assert [hit.id for hit in result.hits] == ["a"]
    assert result.complete


def test_empty_index_finishes_at_the_radius() -> None:
    """No members: the walk stops once the next ring is beyond the radius."""
    result = search(CellIndex([]), 37.77, -122.42, radius_m=2_000, limit=10)
    assert result.hits == []
    assert result.complete
    assert result.searched_m > 2_000


@pytest.mark.parametrize(
    ("age_ms", "kept"), [(60_000, True), (60_001, False), (0, True), (-5_000, True)]
)
def test_staleness_boundary(age_ms: int, kept: bool) -> None:
    """A member last updated exactly 60 s ago is still found; 60.001 s ago it is not."""
    index = CellIndex([("a", 37.77, -122.42, NOW_MS - age_ms)])
    result = search(index, 37.7701, -122.42, radius_m=500, limit=5)
    assert [hit.id for hit in result.hits] == (["a"] if kept else [])


def test_stale_members_do_not_count_towards_the_limit() -> None:
    """A stale member next to the query neither appears nor stops the search early."""
    rows = [("stale", 37.77, -122.42, NOW_MS - 120_000), ("fresh", 37.78, -122.42, NOW_MS)]
    result = search(CellIndex(rows), 37.77, -122.42, radius_m=5_000, limit=1, stale_s=60)
    assert [hit.id for hit in result.hits] == ["fresh"]


def test_same_member_in_two_cells_keeps_the_newest_row() -> None:
    """A courier seen in two cells mid-move is reported once, at its newest position."""
    rows = [("a", 37.77, -122.42, NOW_MS - 5_000), ("a", 37.775, -122.42, NOW_MS - 1_000)]
    result = search(CellIndex(rows), 37.77, -122.42, radius_m=5_000, limit=5)
    assert [(hit.id, hit.lat) for hit in result.hits] == [("a", 37.775)]


@pytest.mark.parametrize("radius_m", [500.0, math.inf])
def test_corrupt_rows_are_ignored(radius_m: float) -> None:
    """Rows with NaN coordinates (corrupt index data) never become hits."""
    rows = [("nan-lat", math.nan, -122.42, NOW_MS), ("nan-lng", 37.77, math.nan, NOW_MS)]
    rows.append(("ok", 37.7701, -122.42, NOW_MS))
    s = NearbySearch(37.77, -122.42, radius_m=radius_m, limit=5, now_ms=NOW_MS)
    assert s.next_cells() is not None
    s.add_members(rows)
    assert [hit.id for hit in s.result().hits] == ["ok"]


def test_huge_radius_is_capped_and_says_so() -> None:
    """Beyond `max_rings` the walk stops: the result is marked incomplete, and it is exact
    for every member closer than `searched_m`."""
    rows = [(f"c{i}", *offset(37.77, -122.42, 900.0 * i, 700.0 * i), NOW_MS) for i in range(30)]
    index = CellIndex(rows)
    result = search(index, 37.77, -122.42, radius_m=1_000_000, limit=100, max_rings=6)
    assert not result.complete
    assert result.rings == 6
    assert result.cells_fetched == len(disk(live_cell_of(37.77, -122.42), 6))
    assert 0 < result.searched_m < 1_000_000
    expected = nearby_bruteforce(
        rows, 37.77, -122.42, radius_m=result.searched_m, limit=100, now_ms=NOW_MS
    )
    assert [h for h in result.hits if h.dist_m < result.searched_m] == expected


def test_infinite_radius_means_nearest_n() -> None:
    """radius_m=inf finds the `limit` nearest members, however far, within the ring cap."""
    rows = [(f"c{i}", *offset(37.77, -122.42, 250.0 * i, 0.0), NOW_MS) for i in range(1, 20)]
    result = search(CellIndex(rows), 37.77, -122.42, radius_m=math.inf, limit=3)
    assert result.complete
    assert [hit.id for hit in result.hits] == ["c1", "c2", "c3"]


def test_dense_city_query_takes_few_round_trips() -> None:
    """With ~15 couriers per cell, 10 nearest within 3 km need at most two round trips."""
    rows = [
        (f"c{i}", *offset(37.77, -122.42, (i % 61 - 30) * 60.0, (i // 61 - 30) * 60.0), NOW_MS)
        for i in range(61 * 61)
    ]
    result = search(CellIndex(rows), 37.7703, -122.4198, radius_m=3_000, limit=10)
    assert result.complete
    assert len(result.hits) == 10
    assert result.round_trips <= 2


def test_protocol_misuse_is_an_error() -> None:
    """next_cells/add_members must alternate; a finished search keeps returning None."""
    s = NearbySearch(37.77, -122.42, radius_m=100, limit=1, now_ms=NOW_MS)
    with pytest.raises(RuntimeError):
        s.add_members([])
    assert s.next_cells() is not None
    with pytest.raises(RuntimeError):
        s.next_cells()
    s.add_members([])
    while (cells := s.next_cells()) is not None:
        assert cells
        s.add_members([])
    assert s.next_cells() is None
    assert s.result().complete


@pytest.mark.parametrize(
    "kw",
    [
        {"lat": 91.0},
        {"lat": math.nan},
        {"lng": 180.5},
        {"radius_m": -1.0},
        {"radius_m": math.nan},
        {"limit": 0},
        {"max_rings": 0, "first_rings": 1},
    ],
)
def test_bad_arguments_raise(kw: dict[str, float]) -> None:
    """Invalid queries are programming errors at the edge, refused loudly."""
    args: dict[str, float] = {"lat": 37.77, "lng": -122.42, "radius_m": 100.0, "limit": 5}
    args.update(kw)
    with pytest.raises(ValueError):  # noqa: PT011 - message varies by argument
        NearbySearch(now_ms=NOW_MS, **args)  # type: ignore[arg-type]
