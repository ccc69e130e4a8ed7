"""Specification of the in-memory grid index: its nearest search returns exactly what a
brute-force haversine scan (`geo.nearby.nearby_bruteforce`, the live index's reference) returns,
and its K-nearest / disk searches never leave out a point closer than their proven bound."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import cell_of
from geo.distance import haversine_m
from geo.grid_index import (
    VehicleFilter,
    anchor_cell,
    build_index,
    covered_m,
    ij_keys,
    k_nearest,
    nearest_within,
    ring_for,
    search_disks,
)
from geo.nearby import nearby_bruteforce
from tests.unit.geo.strategies import seeded

NOW_MS = 1_750_000_000_000
CITY = (12.9716, 77.5946)


def _city(rng: np.random.Generator, n: int, radius_m: float,
          center: tuple[float, float] = CITY) -> tuple[np.ndarray, np.ndarray]:
    r = radius_m * np.sqrt(rng.random(n))
    a = rng.random(n) * 2 * np.pi
    lat = center[0] + r * np.cos(a) / 111_195.0
    lng = center[1] + r * np.sin(a) / (111_195.0 * np.cos(np.radians(center[0])))
    return lat, lng


def _ids(n: int) -> list[str]:
    # Zero-padded so id order == index order, as the dispatcher's snapshot sorts by id.
    return [f"c{i:06d}" for i in range(n)]


@seeded(40)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), limit=st.integers(1, 15),
       radius_m=st.sampled_from([50.0, 400.0, 1500.0, 5000.0, 40_000.0]),
       spread_m=st.sampled_from([300.0, 3000.0, 15_000.0]),
       stack=st.booleans())
def test_nearest_within_equals_bruteforce(seed: int, n: int, limit: int, radius_m: float,
                                          spread_m: float, stack: bool) -> None:
    """For any points and queries: the first `limit` points within the radius, ordered by
    (distance, id) — the live index's answer — including co-located points (equal distances,
    decided by id) and queries far from every point."""
    rng = np.random.default_rng(seed)
    lat, lng = _city(rng, n, spread_m)
    if stack and n > 3:  # several couriers on the same spot
        lat[: n // 3] = lat[0]
        lng[: n // 3] = lng[0]
    qlat, qlng = _city(rng, 25, spread_m * 1.3)
    anchor = anchor_cell(*CITY)
    keys = ij_keys(anchor, lat, lng)
    index = build_index(keys, np.arange(n, dtype=np.int64), anchor)
    limits = rng.integers(1, limit + 1, len(qlat)).astype(np.int64)
    cand, dist = nearest_within(index, lat, lng, ij_keys(anchor, qlat, qlng), qlat, qlng,
                                limit=limits, radius_m=radius_m)
    ids = _ids(n)
    rows = [(ids[i], float(lat[i]), float(lng[i]), NOW_MS) for i in range(n)]
    for q in range(len(qlat)):
        want = nearby_bruteforce(rows, float(qlat[q]), float(qlng[q]), radius_m=radius_m,
                                 limit=int(limits[q]), now_ms=NOW_MS)
        got = [ids[c] for c in cand[q].tolist() if c >= 0]
        assert got == [h.id for h in want]
        assert np.allclose(dist[q, : len(got)], [h.dist_m for h in want], rtol=0, atol=1e-6)


def test_nearest_within_radius_edge_and_ties_use_the_scalar_formula() -> None:
    """A point exactly at the radius (as the scalar haversine computes it) is in, and equal
    distances are ordered by index: decided like geo.nearby, whatever numpy rounds to."""
    q = (12.97, 77.59)
    pts = [(12.97 + 0.001 * i, 77.59 + 0.0007 * i) for i in range(1, 6)]
    # Mirror images: same distance by symmetry only approximately; exact equal with copies.
    pts += [pts[2], pts[2]]
    lat = np.array([p[0] for p in pts])
    lng = np.array([p[1] for p in pts])
    radius_m = haversine_m(*q, pts[3][0], pts[3][1])
    anchor = anchor_cell(*q)
    index = build_index(ij_keys(anchor, lat, lng), np.arange(len(pts), dtype=np.int64), anchor)
    qlat, qlng = np.array([q[0]]), np.array([q[1]])
    cand, _ = nearest_within(index, lat, lng, ij_keys(anchor, qlat, qlng), qlat, qlng,
                             limit=np.array([10]), radius_m=radius_m)
    assert [c for c in cand[0].tolist() if c >= 0] == [0, 1, 2, 5, 6, 3]


@seeded(25)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 10))
def test_k_nearest_holds_everything_closer_than_its_bound(seed: int, k: int) -> None:
    """K nearest with a vehicle filter: the K returned are the K nearest allowed points, and
    no allowed point left out is closer than the returned outside bound."""
    rng = np.random.default_rng(seed)
    lat, lng = _city(rng, 600, 12_000)
    code = rng.integers(0, 3, len(lat)).astype(np.int64)
    qlat, qlng = _city(rng, 30, 12_000)
    allowed = rng.choice(np.array([0b111, 0b100, 0b011]), len(qlat)).astype(np.int64)
    anchor = anchor_cell(*CITY)
    members = np.flatnonzero(rng.random(len(lat)) < 0.8).astype(np.int64)
    index = build_index(ij_keys(anchor, lat, lng), members, anchor)
    cand, outside = k_nearest(index, lat, lng, ij_keys(anchor, qlat, qlng), qlat, qlng, k,
                              VehicleFilter(allowed=allowed, code=code))
    for q in range(len(qlat)):
        ok = [int(i) for i in members if (allowed[q] >> code[i]) & 1]
        d = {i: haversine_m(qlat[q], qlng[q], lat[i], lng[i]) for i in ok}
        want = sorted(ok, key=lambda i: (d[i], i))[:k]
        got = [c for c in cand[q].tolist() if c >= 0]
        assert got == want
        assert all(d[i] >= outside[q] - 1e-6 for i in ok if i not in got)


def test_disk_bound_and_ring_for() -> None:
    """Everything outside grid_disk(k) is at least covered_m(k) away; ring_for is the
    smallest ring whose bound reaches a radius."""
    rng = np.random.default_rng(5)
    lat, lng = _city(rng, 3000, 20_000)
    anchor = anchor_cell(*CITY)
    keys = ij_keys(anchor, lat, lng)
    index = build_index(keys, np.arange(len(lat), dtype=np.int64), anchor)
    qlat, qlng = _city(rng, 20, 15_000)
    for k in (1, 3, 8, 20):
        found, _, _ = search_disks(index, lat, lng, ij_keys(anchor, qlat, qlng), qlat, qlng,
                                   None, np.full(len(qlat), k, dtype=np.int64))
        bound = float(covered_m(index, k))
        for q in range(len(qlat)):
            inside = set(found[q][found[q] >= 0].tolist())
            for i in range(len(lat)):
                if i not in inside:
                    assert haversine_m(qlat[q], qlng[q], lat[i], lng[i]) >= bound
    for r in (0.0, 100.0, 1234.5, 5000.0):
        k = int(ring_for(index, r)[()])
        assert float(covered_m(index, k)) >= r
        assert k == 1 or float(covered_m(index, k - 1)) < r


@seeded(30)
@given(seed=st.integers(0, 2**32 - 1),
       radius_m=st.sampled_from([100.0, 5000.0, 20_000.0, 28_000.0]),
       center=st.sampled_from([CITY, (51.5, -0.12), (-33.9, 151.2), (60.1, 24.9)]))
def test_regions_near_and_search_box_hold_every_point_within_the_radius(
        seed: int, radius_m: float, center: tuple[float, float]) -> None:
    """What a round reads: every point within `radius_m` of a point filed in region R lies
    in one of `regions_near(R, radius_m)` and inside `search_box` of the query points."""
    import math

    from geo.cells import region_of, regions_near
    from geo.grid_index import search_box

    rng = np.random.default_rng(seed)
    qlat, qlng = _city(rng, 30, 60_000, center)
    region = region_of(float(qlat[0]), float(qlng[0]))
    near = set(regions_near(region, radius_m))
    mine = [i for i in range(len(qlat)) if region_of(float(qlat[i]), float(qlng[i])) == region]
    box = search_box(qlat[mine], qlng[mine], radius_m)
    for i in mine:
        for _ in range(20):  # points at (just under) the radius, in every direction
            bearing = rng.random() * 2 * math.pi
            d = radius_m * 0.999 * math.sqrt(rng.random() * 0.2 + 0.8)
            dlat = d * math.cos(bearing) / 111_195.0
            dlng = d * math.sin(bearing) / (111_195.0 * math.cos(math.radians(qlat[i])))
            p = (float(qlat[i] + dlat), float(qlng[i] + dlng))
            assert haversine_m(float(qlat[i]), float(qlng[i]), *p) <= radius_m
            assert region_of(*p) in near
            assert box[0] <= p[0] <= box[1]
            assert box[2] <= p[1] <= box[3]


def test_ij_keys_with_a_remembered_anchor_equal_fresh_ones() -> None:
    """`anchor_memo` keeps cell -> key per anchor across calls: warm, cold and filed-cell
    keys agree, for two anchors sharing the memo."""
    from geo.grid_index import anchor_memo

    rng = np.random.default_rng(9)
    lat, lng = _city(rng, 500, 8000.0)
    for anchor in (anchor_cell(*CITY), anchor_cell(CITY[0] + 0.05, CITY[1] - 0.05)):
        memo = anchor_memo(anchor)
        cold = ij_keys(anchor, lat, lng, cache=memo)
        assert len(memo) > 0
        assert (cold == ij_keys(anchor, lat, lng)).all()
        assert (ij_keys(anchor, lat, lng, cache=memo) == cold).all()
        assert anchor_memo(anchor) is memo


def test_ij_keys_from_filed_cells_equal_the_computed_ones() -> None:
    """Cells given (0 for unknown ones) give the same keys as cells computed from the
    points."""
    rng = np.random.default_rng(4)
    lat = 12.97 + rng.uniform(-0.1, 0.1, 300)
    lng = 77.59 + rng.uniform(-0.1, 0.1, 300)
    cells = [int(cell_of(a, b), 16) if i % 5 else 0
             for i, (a, b) in enumerate(zip(lat.tolist(), lng.tolist(), strict=True))]
    anchor = anchor_cell(12.97, 77.59)
    want = ij_keys(anchor, lat, lng)
    assert (ij_keys(anchor, lat, lng, cells=cells) == want).all()
    assert (ij_keys(anchor, lat, lng, cells=[c or 1 for c in cells][:10]) == want).all()
