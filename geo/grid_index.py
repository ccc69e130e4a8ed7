"""In-memory K-nearest search over points bucketed by H3 res-9 cell (CSR over local IJ).

Pure and vectorised: a dispatch round reads its region's couriers once, builds a
`GridIndex` of them and searches every order's nearest couriers with numpy, instead of one
Redis round trip per ring and order (`api.core.live_index.LiveIndex.nearby`). The benchmark
(`bench/dispatch.py`) uses the same code for its candidate and column-generation searches.

Layout: each point's res-9 cell is mapped to local IJ coordinates around an anchor cell and
the points are sorted by cell into CSR arrays over the bounding box of those coordinates, so
the members of a grid disk around a query cell are gathered by array indexing.

Coverage bound (`covered_m`): every point outside grid_disk(query cell, k) is at least
(1.5 (k+1) - 2) e x 0.98 metres from the query point, e the smallest hexagon edge near the
anchor: cells at grid distance k+1 have centres >= 1.5 (k+1) e from the query cell's centre
(side midpoints of the hexagonal ring), and both points are within e (the circumradius) of
their cell's centre; 2 % off e for the grid's distortion across a city. Within a few tens of
kilometres of the anchor (a res-4 region and its neighbours) the distortion is far below that;
`tests/unit/geo/test_grid_index.py` checks results against a brute-force scan.

`nearest_within` gives exactly `geo.nearby`'s answer (fresh members within the radius, by
(distance, id), first `limit`): ties and the radius edge are decided with the scalar
`geo.distance.haversine_m` the live-index search uses, not numpy's (which may differ in the
last bit).
"""

from __future__ import annotations

import functools
import math
from typing import Final

import h3.api.basic_int as h3
import msgspec
import numpy as np
import numpy.typing as npt

from geo.cells import LIVE_RES
from geo.distance import EARTH_RADIUS_M, haversine_m

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_KEY_SPAN: Final = 1 << 20
_KEY_HALF: Final = 1 << 19
MAX_RING: Final = 10_000
# numpy's and libm's sin/cos/asin may differ in the last bits: distances closer than this
# (metres) to each other or to the radius are re-decided with the scalar formula.
_AMBIGUOUS_M: Final = 1e-6
_SORT_SCALE: Final = float(1 << 25)  # metres; above any distance on Earth (2.0e7 m)


class GridIndex(msgspec.Struct, frozen=True, kw_only=True):
    """Points bucketed by res-9 cell, as CSR over a box of local IJ coordinates (a disk
    look-up is array indexing, not a hash or a search per cell).

    Attributes:
        anchor: the cell the local IJ coordinates are relative to.
        order: point indices (into the caller's arrays) sorted by cell; within a cell by index.
        start: CSR offsets per box cell, plus an empty sentinel cell at the end.
        i0, j0, height, width: the box, in packed local IJ.
        edge_m: smallest hexagon edge near the anchor, for the coverage bound.
    """

    anchor: int
    order: IntArray
    start: IntArray
    i0: int
    j0: int
    height: int
    width: int
    edge_m: float


def anchor_cell(lat: float, lng: float, res: int = LIVE_RES) -> int:
    """The cell to anchor an index at (its local IJ frame), as an integer id."""
    return int(h3.latlng_to_cell(lat, lng, res))


def ij_keys(anchor: int, lat: FloatArray, lng: FloatArray, res: int = LIVE_RES,
            cells: list[int] | None = None, cache: dict[int, int] | None = None) -> IntArray:
    """Packed, non-negative local IJ of each point's cell around `anchor`. `cells`, when
    given, are the points' cells at `res` as integer ids (0: unknown, computed from the
    point), e.g. as the live index filed them: the h3 call per point is then skipped.
    `cache` (cell -> key, for this anchor only) keeps the keys across calls.

    Raises:
        h3.H3BaseException: when a point is too far from the anchor for local IJ (another
            icosahedron face or across a pentagon); callers fall back to another search.
    """
    ai, aj = h3.cell_to_local_ij(anchor, anchor)
    # Many points share a cell; local IJ is the costly call.
    cell_ij: dict[int, int] = {} if cache is None else cache
    to_cell, to_ij = h3.latlng_to_cell, h3.cell_to_local_ij
    if cells is None or len(cells) != len(lat):
        cells = [to_cell(la, ln, res) for la, ln in zip(lat.tolist(), lng.tolist(),
                                                          strict=True)]
    elif 0 in cells:
        la_l, ln_l = lat.tolist(), lng.tolist()
        cells = [c or to_cell(la_l[k], ln_l[k], res) for k, c in enumerate(cells)]
    out: list[int] = []
    for cell in cells:
        key = cell_ij.get(cell)
        if key is None:
            i, j = to_ij(anchor, cell)
            key = cell_ij[cell] = (i - ai + _KEY_HALF) * _KEY_SPAN + (j - aj + _KEY_HALF)
        out.append(key)
    return np.asarray(out, dtype=np.int64).reshape(len(lat))


_MEMO_MAX: Final = 300_000  # cells remembered over all anchors (~100 bytes each)
_memo: dict[int, dict[int, int]] = {}


def anchor_memo(anchor: int) -> dict[int, int]:
    """A process-wide `ij_keys` cache for `anchor` (cell -> key: pure arithmetic on the
    grid, so shared by every caller), emptied whole past ~300,000 cells."""
    if sum(len(m) for m in _memo.values()) > _MEMO_MAX:
        _memo.clear()
    return _memo.setdefault(anchor, {})


def build_index(
    keys: IntArray, members: IntArray, anchor: int
) -> GridIndex:
    """Index the points `members` whose packed cell keys (`ij_keys`) are `keys[members]`."""
    sub = keys[members]
    ii, jj = sub // _KEY_SPAN, sub % _KEY_SPAN
    i0 = int(ii.min(initial=_KEY_HALF))
    j0 = int(jj.min(initial=_KEY_HALF))
    height = int(ii.max(initial=_KEY_HALF)) - i0 + 1
    width = int(jj.max(initial=_KEY_HALF)) - j0 + 1
    lin = (ii - i0) * width + (jj - j0)
    order = members[np.argsort(lin, kind="stable")]
    start = np.zeros(height * width + 2, dtype=np.int64)
    np.cumsum(np.bincount(lin, minlength=height * width), out=start[1:-1])
    start[-1] = start[-2]
    return GridIndex(anchor=anchor, order=order.astype(np.int64), start=start, i0=i0, j0=j0,
                     height=height, width=width, edge_m=_min_edge_m(anchor))


@functools.lru_cache(maxsize=256)
def _min_edge_m(anchor: int) -> float:
    return min(
        haversine_m(*a, *b)
        for cell in h3.grid_disk(anchor, 1)
        for a, b in zip(h3.cell_to_boundary(cell), h3.cell_to_boundary(cell)[1:], strict=False)
    )


def disk_offsets(k: int) -> tuple[IntArray, IntArray]:
    """(di, dj) of the cells within grid distance k (H3 IJ: neighbours are (+-1, 0),
    (0, +-1), (1, 1), (-1, -1), so the distance is (|di| + |dj| + |di - dj|) / 2)."""
    di, dj = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    inside = (np.abs(di) + np.abs(dj) + np.abs(di - dj)) // 2 <= k
    return di[inside].astype(np.int64), dj[inside].astype(np.int64)


def covered_m(index: GridIndex, k: int | IntArray) -> FloatArray:
    """Every point outside grid_disk(query cell, k) is at least this far from the query
    point (see the module docstring)."""
    return np.maximum(0.0, (1.5 * (np.asarray(k) + 1) - 2.0) * index.edge_m * 0.98)


def ring_for(index: GridIndex, radius_m: npt.ArrayLike) -> IntArray:
    """Smallest k >= 1 with covered_m(index, k) >= radius_m (element-wise)."""
    e = index.edge_m * 0.98
    r = np.asarray(radius_m, dtype=np.float64)
    k = np.ceil((np.minimum(r, 1e12) / e + 2.0) / 1.5 - 1.0 - 1e-9)
    k = np.maximum(1, np.minimum(k, MAX_RING)).astype(np.int64)
    # Guard the float edge: step up where the formula fell one short.
    short = (1.5 * (k + 1) - 2.0) * e < r
    return np.asarray(np.minimum(k + short, MAX_RING), dtype=np.int64)


def haversine_pairs_m(
    lat1: FloatArray, lng1: FloatArray, lat2: FloatArray, lng2: FloatArray
) -> FloatArray:
    """Element-wise great-circle metres (geo.distance has the scalar and matrix forms)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lng2 - lng1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a))))


class VehicleFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Keep pair (query q, point p) only when bit `code[p]` of `allowed[q]` is set."""

    allowed: IntArray  # per query
    code: IntArray  # per point


def _gather(
    index: GridIndex, query_key: IntArray, ring: IntArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Every (query row, point) pair with the point in grid_disk(query cell, ring[row]),
    and per row the distance below which nothing outside its disk lies."""
    n = len(query_key)
    rows_l: list[IntArray] = []
    cols_l: list[IntArray] = []
    covered = np.zeros(n)
    for k in np.unique(ring).tolist():
        sel = np.flatnonzero(ring == k)
        covered[sel] = covered_m(index, k)
        di, dj = disk_offsets(k)
        wi = (query_key[sel] // _KEY_SPAN)[:, None] + di[None, :] - index.i0
        wj = (query_key[sel] % _KEY_SPAN)[:, None] + dj[None, :] - index.j0
        inside = (wi >= 0) & (wi < index.height) & (wj >= 0) & (wj < index.width)
        cell = np.where(inside, wi * index.width + wj, index.height * index.width).ravel()
        lo = index.start[cell]
        counts = index.start[cell + 1] - lo
        # Ragged gather of every point in every wanted cell.
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        pos = np.arange(int(counts.sum())) + starts
        rows_l.append(np.repeat(np.repeat(sel, len(di)), counts))
        cols_l.append(index.order[pos])
    if not rows_l:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), covered
    return np.concatenate(rows_l), np.concatenate(cols_l), covered


def search_disks(
    index: GridIndex,
    lat: FloatArray,
    lng: FloatArray,
    query_key: IntArray,
    query_lat: FloatArray,
    query_lng: FloatArray,
    k_nearest: int | None,
    ring: IntArray,
    vehicles: VehicleFilter | None = None,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Points in grid_disk(query cell, ring[q]) (passing `vehicles`), nearest first (ties by
    index), at most k_nearest per query (all if None, then in no particular order).

    Returns (point indices padded with -1, distance below which nothing was left out, distance
    of the k_nearest-th found or inf when fewer were found).
    """
    n = len(query_key)
    rows, cols, covered = _gather(index, query_key, ring)
    if vehicles is not None:
        ok = ((vehicles.allowed[rows] >> vehicles.code[cols]) & 1) == 1
        rows, cols = rows[ok], cols[ok]
    dist = haversine_pairs_m(query_lat[rows], query_lng[rows], lat[cols], lng[cols])
    # Uncapped (pricing) searches keep everyone: grouping by query is enough.
    srt = (np.argsort(rows, kind="stable") if k_nearest is None
           else np.lexsort((cols, dist, rows)))
    rows, cols, dist = rows[srt], cols[srt], dist[srt]
    counts = np.bincount(rows, minlength=n)
    first = np.cumsum(counts) - counts
    rank = np.arange(len(rows)) - first[rows]
    cap = int(counts.max(initial=0)) if k_nearest is None else k_nearest
    keep = rank < cap
    out = np.full((n, max(cap, 1)), -1, dtype=np.int64)
    out[rows[keep], rank[keep]] = cols[keep]
    # Left out: everything beyond the disk, and (when capped) the ones after the cap.
    cut = np.flatnonzero(rank == cap)
    outside = covered.copy()
    outside[rows[cut]] = np.minimum(outside[rows[cut]], dist[cut])
    d_cap = np.full(n, np.inf)
    last = np.flatnonzero(rank == cap - 1)
    d_cap[rows[last]] = dist[last]
    return out, outside, d_cap


def k_nearest(
    index: GridIndex,
    lat: FloatArray,
    lng: FloatArray,
    query_key: IntArray,
    query_lat: FloatArray,
    query_lng: FloatArray,
    k: int,
    vehicles: VehicleFilter | None = None,
    max_ring: int = 60,
) -> tuple[IntArray, FloatArray]:
    """K nearest points per query: grow each query's disk until it holds K and covers the
    K-th one's distance (so the outside bound is at least that distance), or reaches
    `max_ring`. Returns (indices padded with -1, distance below which nothing was left out)."""
    n = len(query_key)
    ring = np.ones(n, dtype=np.int64)
    cand = np.full((n, k), -1, dtype=np.int64)
    outside = np.zeros(n)
    todo = np.arange(n)
    while len(todo):
        c, o, d_k = search_disks(index, lat, lng, query_key[todo], query_lat[todo],
                                 query_lng[todo], k, ring[todo],
                                 None if vehicles is None else VehicleFilter(
                                     allowed=vehicles.allowed[todo], code=vehicles.code))
        width = min(k, c.shape[1])
        cand[todo, :width] = c[:, :width]
        outside[todo] = o
        cur = ring[todo]
        found = np.isfinite(d_k)
        # Found K: jump straight to the disk that covers the K-th; else widen by half.
        need = np.where(found, ring_for(index, np.where(found, d_k, 0.0)), 0)
        done = (found & (need <= cur)) | (cur >= max_ring)
        ring[todo] = np.where(found, np.maximum(need, cur + 1), cur + (cur + 1) // 2)
        todo = todo[~done]
    return cand, outside


def nearest_within(
    index: GridIndex,
    lat: FloatArray,
    lng: FloatArray,
    query_key: IntArray,
    query_lat: FloatArray,
    query_lng: FloatArray,
    *,
    limit: IntArray,
    radius_m: float,
) -> tuple[IntArray, FloatArray]:
    """Per query, the first `limit[q]` indexed points within `radius_m`, by (distance, point
    index): with points numbered in id order this is `geo.nearby`'s answer exactly.

    Returns (indices, distances), both (n, max limit), padded with -1 / inf.
    """
    n = len(query_key)
    width = max(1, int(limit.max(initial=1)))
    cand = np.full((n, width), -1, dtype=np.int64)
    dist_out = np.full((n, width), np.inf)
    if n == 0 or len(index.order) == 0:
        return cand, dist_out
    r_max = int(ring_for(index, radius_m + 1.0)[()]) if math.isfinite(radius_m) else MAX_RING
    ring = np.minimum(_first_ring(index, query_key, limit), r_max)
    todo = np.arange(n)
    p_all = np.radians(lat)
    cos_all = np.cos(p_all)
    qp_all = np.radians(query_lat)
    qcos_all = np.cos(qp_all)
    while len(todo):
        rows, cols, covered = _gather(index, query_key[todo], ring[todo])
        q = todo[rows]
        p1, p2 = qp_all[q], p_all[cols]
        a = (np.sin((p2 - p1) / 2) ** 2
             + qcos_all[q] * cos_all[cols] * np.sin(np.radians(lng[cols] - query_lng[q]) / 2) ** 2)
        dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
        m = len(todo)
        # One float sort key, (row, distance): rows * 2^25 + dist (every distance on Earth is
        # below 2^25 m). Its rounding may swap distances closer than a few ulps of the key;
        # `margin` covers that and numpy-vs-libm differences: rows whose first limit+1
        # distances are not `margin` apart, or reach within `margin` of the radius, are
        # decided by the scalar formula instead.
        margin = max(_AMBIGUOUS_M, 4.0 * float(np.spacing(float(m) * _SORT_SCALE)))
        near = dist <= radius_m + margin
        rows, cols, dist = rows[near], cols[near], dist[near]
        srt = np.argsort(rows * _SORT_SCALE + dist)
        rows, cols, dist = rows[srt], cols[srt], dist[srt]
        counts = np.bincount(rows, minlength=m)
        first = np.cumsum(counts) - counts
        rank = np.arange(len(rows)) - first[rows]
        lim = limit[todo]
        # The limit-th nearest found (inf when fewer) must lie inside the proven disk.
        kth = np.full(m, np.inf)
        has = counts >= lim
        kth[has] = dist[first[has] + lim[has] - 1]
        need = np.minimum(kth, radius_m) + 2 * margin
        done = (covered > need) | (ring[todo] >= r_max)
        grow = ~done
        if grow.any():
            target = ring_for(index, np.where(np.isfinite(kth), kth, 0.0) + 2 * margin)
            cur = ring[todo]
            nxt = np.where(np.isfinite(kth), np.maximum(target, cur + 1), cur + (cur + 1) // 2)
            ring[todo] = np.minimum(nxt, r_max)
        # Rows decided by numpy alone: their first limit+1 distances are increasing by more
        # than the margin and none is near the radius. The rest (rare: co-located points)
        # go through the scalar formula.
        head = (rank <= lim[rows]) & done[rows]
        gap = np.zeros(len(rows), dtype=np.bool_)
        same_row = rows[1:] == rows[:-1]
        gap[1:] = same_row & (np.diff(dist) <= margin) & head[1:]
        edge = head & (dist > radius_m - margin)
        ambiguous = np.zeros(m, dtype=np.bool_)
        ambiguous[rows[gap | edge]] = True
        write = (rank < lim[rows]) & done[rows] & ~ambiguous[rows]
        cand[todo[rows[write]], rank[write]] = cols[write]
        dist_out[todo[rows[write]], rank[write]] = dist[write]
        for r in np.flatnonzero(done & ambiguous).tolist():
            s, c = int(first[r]), int(counts[r])
            _exact_row(cand, dist_out, int(todo[r]), cols[s:s + c], dist[s:s + c],
                       int(lim[r]), radius_m, float(query_lat[todo[r]]),
                       float(query_lng[todo[r]]), lat, lng, margin)
        todo = todo[grow]
    return cand, dist_out


def _first_ring(index: GridIndex, query_key: IntArray, limit: IntArray, k0: int = 2) -> IntArray:
    """A guess of the ring that proves each query's answer in one pass (a wrong guess costs
    a pass, never a wrong answer): from the density of points within `k0` rings, the ring
    whose proven radius should hold 1.5 x limit points."""
    di, dj = disk_offsets(k0)
    wi = (query_key // _KEY_SPAN)[:, None] + di[None, :] - index.i0
    wj = (query_key % _KEY_SPAN)[:, None] + dj[None, :] - index.j0
    inside = (wi >= 0) & (wi < index.height) & (wj >= 0) & (wj < index.width)
    cell = np.where(inside, wi * index.width + wj, index.height * index.width)
    count = (index.start[cell + 1] - index.start[cell]).sum(axis=1)
    cell_area_m2 = 1.5 * math.sqrt(3.0) * index.edge_m ** 2
    density = count / (len(di) * cell_area_m2)
    with np.errstate(divide="ignore"):
        need_m = np.sqrt(1.5 * limit / (math.pi * density))
    guess = ring_for(index, np.where(count > 0, need_m, 0.0))
    return np.where(count > 0, np.maximum(guess, 1), 2 * k0).astype(np.int64)


def _exact_row(
    cand: IntArray, dist_out: FloatArray, row: int, cols: IntArray, dist: FloatArray,
    limit: int, radius_m: float, qlat: float, qlng: float, lat: FloatArray, lng: FloatArray,
    margin: float,
) -> None:
    """Write a query's answer from its (about) distance-sorted list with the scalar
    haversine: every point within the limit-th distance + 2 margins is re-measured."""
    cut = float(np.sort(dist)[min(len(cols), limit) - 1]) + 2 * margin if len(cols) else 0.0
    exact = sorted(
        (d, c) for c in cols[dist <= cut].tolist()
        if (d := haversine_m(qlat, qlng, float(lat[c]), float(lng[c]))) <= radius_m
    )[:limit]
    for slot, (d, c) in enumerate(exact):
        cand[row, slot] = c
        dist_out[row, slot] = d


class PointGrid:
    """Points (a snapshot of the live index) with their cells' local IJ around one anchor,
    ready to index any subset of them (e.g. the idle couriers) and to answer
    `nearest_within` for many query points at once.

    Raises (at construction or `query_keys`): h3's error when a point is too far from the
    anchor for local IJ; the caller then searches another way.
    """

    __slots__ = ("anchor", "cache", "keys", "lat", "lng")

    def __init__(self, lat: FloatArray, lng: FloatArray, anchor: int,
                 cells: list[int] | None = None, cache: dict[int, int] | None = None) -> None:
        """`cells`: the points' res-9 cells when known (see `ij_keys`); `cache`: cell ->
        local IJ key around `anchor`, kept by the caller across grids of the same anchor."""
        self.lat = lat
        self.lng = lng
        self.anchor = anchor
        self.cache = {} if cache is None else cache
        self.keys = ij_keys(anchor, lat, lng, cells=cells, cache=self.cache)

    def query_keys(self, lat: FloatArray, lng: FloatArray) -> IntArray:
        return ij_keys(self.anchor, lat, lng, cache=self.cache)

    def nearest(
        self, members: IntArray, query_key: IntArray, query_lat: FloatArray,
        query_lng: FloatArray, *, limit: IntArray, radius_m: float,
    ) -> tuple[IntArray, FloatArray]:
        """`nearest_within` over the points `members` (indices into this grid's arrays)."""
        index = build_index(self.keys, members, self.anchor)
        return nearest_within(index, self.lat, self.lng, query_key, query_lat, query_lng,
                              limit=limit, radius_m=radius_m)


def search_box(
    lat: FloatArray, lng: FloatArray, radius_m: float
) -> tuple[float, float, float, float]:
    """(lat_lo, lat_hi, lng_lo, lng_hi) holding every point within `radius_m` of any of the
    given points, with a margin (for a coarse prefilter); the whole longitude range near a
    pole or the antimeridian."""
    if len(lat) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01 + 1e-4
    lat_lo, lat_hi = float(lat.min()) - dlat, float(lat.max()) + dlat
    top = max(abs(lat_lo), abs(lat_hi))
    if top >= 89.0 or not math.isfinite(radius_m):
        return (max(-90.0, lat_lo), min(90.0, lat_hi), -180.0, 180.0)
    dlng = dlat / math.cos(math.radians(top))
    lng_lo, lng_hi = float(lng.min()) - dlng, float(lng.max()) + dlng
    if lng_lo < -180.0 or lng_hi > 180.0 or lng_hi - lng_lo > 180.0:
        return (lat_lo, lat_hi, -180.0, 180.0)
    return (lat_lo, lat_hi, lng_lo, lng_hi)
