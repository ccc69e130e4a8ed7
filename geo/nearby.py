"""Nearby search over the res-9 live index: walk H3 k-rings outward, stop on a sound bound.

The search does no I/O. It is a small state machine that says which cells to fetch next and
takes back the members of those cells, so an async Redis adapter does one round trip per step::

    search = NearbySearch(lat, lng, radius_m=3000, limit=20, now_ms=now_ms)
    while (cells := search.next_cells()) is not None:
        search.add_members(await fetch_members(cells))  # one pipeline per step
    result = search.result()

Stopping rule (see docs/gps.md): after fetching every cell within grid distance k of
the query cell, any member not yet seen lies in a cell at grid distance >= k+1, and a geodesic
from the query point to it crosses a cell of ring k+1. So ``bound = min over ring k+1 of
(distance to the cell's cap centre - cap radius)`` is a lower bound on every unseen distance.
The search stops when ``bound > radius_m`` or when it holds ``limit`` members with the
``limit``-th best distance ``< bound``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

import h3.api.numpy_int as h3n
import msgspec

from geo.cells import LIVE_RES, cell_cap_int, edge_length_m
from geo.distance import EARTH_RADIUS_M, haversine_m

MemberRow = tuple[str, float, float, int]
"""One indexed courier: (id, lat, lng, updated_at_ms)."""

MembersLookup = Callable[[list[str]], Iterable[MemberRow]]
"""Returns the members of all the given cells (order irrelevant), in one batch."""

DEFAULT_STALE_S: Final = 60.0  # a courier silent for longer is not "near" anything
DEFAULT_MAX_RINGS: Final = 64  # ~15 km at res 9; beyond this the result is marked incomplete
DEFAULT_FIRST_RINGS: Final = 1  # ring 0 alone rarely suffices: the point may sit near an edge

# Relative slack on the latitude prefilter so float rounding can never drop a true candidate.
_GATE_SLACK: Final = 1e-9
_DEG: Final = math.pi / 180.0  # the constant math.radians multiplies by
_DIAMETER_M: Final = 2 * EARTH_RADIUS_M


class NearbyHit(msgspec.Struct, frozen=True, kw_only=True):
    """One member found by a nearby search."""

    id: str
    dist_m: float
    lat: float
    lng: float
    updated_at_ms: int


class NearbyResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a nearby search.

    Attributes:
        hits: up to `limit` fresh members within `radius_m`, sorted by (dist_m, id).
        complete: True when `hits` is provably what a full scan would return; False only when
            the ring cap (`max_rings`) stopped the walk first.
        searched_m: every fresh member closer than this was examined (the proof's bound).
        rings: grid distance of the outermost ring fetched.
        cells_fetched: number of cells handed to the lookup.
        round_trips: number of `next_cells` batches (= lookup calls).
    """

    hits: list[NearbyHit]
    complete: bool
    searched_m: float
    rings: int
    cells_fetched: int
    round_trips: int


class NearbySearch:
    """Incremental nearest-members search; see the module docstring for the calling loop.

    Args:
        lat, lng: query point, degrees.
        radius_m: only members within this haversine distance are returned (may be `inf`,
            in which case `max_rings` bounds the walk).
        limit: at most this many hits.
        now_ms: current time, epoch ms; members with `updated_at_ms < now_ms - stale_s*1000`
            are ignored.
        stale_s: staleness cut-off, seconds.
        max_rings: cap on the grid distance walked (huge radii degrade to an incomplete result
            rather than fetching an unbounded number of cells).
        first_rings: grid distance fetched by the first step (1 = 7 cells at most).
        res: resolution of the index being searched.
    """

    __slots__ = (
        "_awaiting",
        "_best",
        "_cells_fetched",
        "_complete",
        "_cos_p1",
        "_done",
        "_edge_m",
        "_first_rings",
        "_k",
        "_kth_m",
        "_limit",
        "_lng",
        "_max_rings",
        "_min_ts_ms",
        "_origin",
        "_p1",
        "_prune_m",
        "_radius_m",
        "_ring_cache",
        "_round_trips",
        "_searched_m",
    )

    def __init__(
        self,
        lat: float,
        lng: float,
        *,
        radius_m: float,
        limit: int,
        now_ms: int,
        stale_s: float = DEFAULT_STALE_S,
        max_rings: int = DEFAULT_MAX_RINGS,
        first_rings: int = DEFAULT_FIRST_RINGS,
        res: int = LIVE_RES,
    ) -> None:
        if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90):
            raise ValueError(f"bad query point ({lat}, {lng})")
        if not -180 <= lng <= 180:
            raise ValueError(f"bad query longitude {lng}")
        if not radius_m >= 0:  # also rejects NaN
            raise ValueError(f"radius_m must be >= 0, got {radius_m}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not 0 <= first_rings <= max_rings:
            raise ValueError("need 0 <= first_rings <= max_rings")
        self._lng = lng
        self._p1 = math.radians(lat)
        self._cos_p1 = math.cos(self._p1)
        self._radius_m = float(radius_m)
        self._limit = limit
        self._min_ts_ms = now_ms - stale_s * 1000.0
        self._max_rings = max_rings
        self._first_rings = first_rings
        self._edge_m = edge_length_m(res)
        self._origin = int(h3n.latlng_to_cell(lat, lng, res))
        self._k = -1  # outermost ring fetched so far
        self._awaiting = False
        self._done = False
        self._complete = False
        # id -> (dist_m, lat, lng, updated_at_ms), only for fresh members within _prune_m.
        self._best: dict[str, tuple[float, float, float, int]] = {}
        self._prune_m = self._radius_m  # nothing farther than this can make the answer
        self._kth_m = math.inf  # limit-th best distance once `limit` members are held
        self._searched_m = 0.0
        self._ring_cache: tuple[int, list[int]] = (-1, [])
        self._cells_fetched = 0
        self._round_trips = 0

    # -- the protocol -------------------------------------------------------------------------

    def next_cells(self) -> list[str] | None:
        """Cells to fetch next, or None when the search is finished.

        Raises:
            RuntimeError: when called again before `add_members` for the previous batch.
        """
        if self._awaiting:
            raise RuntimeError("add_members() must follow each next_cells() batch")
        if self._done:
            return None
        if self._k < 0:
            k_next = self._first_rings
            # A point deep inside its cell with a tiny radius needs only its own cell.
            if k_next > 0 and self._ring_bound_m(1) > self._radius_m:
                k_next = 0
        else:
            bound_m = self._ring_bound_m(self._k + 1)
            self._searched_m = max(0.0, bound_m)
            if bound_m > self._radius_m or (
                len(self._best) >= self._limit and self._kth_m < bound_m
            ):
                self._done = self._complete = True
                return None
            if self._k >= self._max_rings:
                self._done = True
                return None
            k_next = self._plan_next_k(bound_m)
        cells: list[int] = []
        for k in range(self._k + 1, k_next + 1):
            cells.extend(self._ring(k))
        self._k = k_next
        self._awaiting = True
        self._cells_fetched += len(cells)
        self._round_trips += 1
        return [format(cell, "x") for cell in cells]  # h3 string ids are lowercase hex

    def add_members(self, rows: Iterable[MemberRow]) -> None:
        """Feed back the members of the cells returned by the last `next_cells` call.

        Rows for one id found in several cells (a move seen mid-flight) keep the newest.
        """
        if not self._awaiting:
            raise RuntimeError("add_members() called without a pending next_cells() batch")
        self._awaiting = False
        best = self._best
        prune_m = self._prune_m
        min_ts_ms = self._min_ts_ms
        p1 = self._p1
        cos_p1 = self._cos_p1
        lng1 = self._lng
        # dist >= R * |dlat| always, so a latitude gap alone can reject most far rows cheaply.
        gate_rad = prune_m / EARTH_RADIUS_M * (1.0 + _GATE_SLACK)
        sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt
        deg, diameter_m = _DEG, _DIAMETER_M
        for member_id, lat2, lng2, ts_ms in rows:
            if ts_ms < min_ts_ms:
                continue
            p2 = lat2 * deg
            dp = p2 - p1
            if dp > gate_rad or -dp > gate_rad:
                continue
            # haversine_m inlined with the same operations in the same order (x * _DEG is
            # exactly what math.radians computes), so distances, ties and radius edges agree
            # bit for bit with the reference.
            a = sin(dp / 2) ** 2 + cos_p1 * cos(p2) * sin((lng2 - lng1) * deg / 2) ** 2
            s = sqrt(a)
            # The clamp keeps NaN (a corrupt row) as NaN, and `not <=` then drops it.
            dist_m = diameter_m * asin(1.0 if s > 1.0 else s)
            if not dist_m <= prune_m:
                continue
            old = best.get(member_id)
            if old is None or ts_ms > old[3]:
                best[member_id] = (dist_m, lat2, lng2, ts_ms)
        if len(best) >= self._limit:
            dists_m = [v[0] for v in best.values()]
            dists_m.sort()
            self._kth_m = kth_m = dists_m[self._limit - 1]
            self._prune_m = min(self._radius_m, kth_m)
            if len(best) > 4 * self._limit + 64:  # keep later passes proportional to limit
                self._best = {i: v for i, v in best.items() if v[0] <= kth_m}

    def result(self) -> NearbyResult:
        """The hits so far; `complete` is True only once the stopping rule has been met."""
        kth_m = self._kth_m  # inf until `limit` members are held
        top = sorted(
            (d, member_id, lat, lng, ts)
            for member_id, (d, lat, lng, ts) in self._best.items()
            if d <= kth_m
        )[: self._limit]
        hits = [
            NearbyHit(id=member_id, dist_m=d, lat=lat, lng=lng, updated_at_ms=ts)
            for d, member_id, lat, lng, ts in top
        ]
        return NearbyResult(
            hits=hits,
            complete=self._complete,
            searched_m=self._searched_m,
            rings=self._k,
            cells_fetched=self._cells_fetched,
            round_trips=self._round_trips,
        )

    # -- internals ----------------------------------------------------------------------------

    def _ring(self, k: int) -> list[int]:
        # The ring whose bound was just computed is usually the next one fetched: keep it.
        if k == 0:
            return [self._origin]
        cached_k, cells = self._ring_cache
        if cached_k != k:
            cells = h3n.grid_ring(self._origin, k).tolist()
            self._ring_cache = (k, cells)
        return cells

    def _ring_bound_m(self, k: int) -> float:
        """Lower bound on the distance from the query point to any point of ring k."""
        p1 = self._p1
        cos_p1 = self._cos_p1
        lng1 = self._lng
        sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt
        bound_m = math.inf
        for cell in self._ring(k):
            lat2, lng2, cap_m = cell_cap_int(cell)
            p2 = lat2 * _DEG
            a = sin((p2 - p1) / 2) ** 2 + cos_p1 * cos(p2) * sin((lng2 - lng1) * _DEG / 2) ** 2
            d_m = _DIAMETER_M * asin(min(1.0, sqrt(a))) - cap_m
            if d_m < bound_m:
                bound_m = d_m
        return bound_m

    def _plan_next_k(self, bound_m: float) -> int:
        """How far to reach in the next round trip (a guess: correctness never depends on it).

        Aims for the ring whose bound clears what is still needed: the current limit-th
        distance, or a radius estimated from the density seen so far, or the query radius.
        """
        spacing_m = 1.5 * self._edge_m  # bound growth per ring on a regular hex grid
        reach_m = max(bound_m, spacing_m)
        found = len(self._best)
        if found >= self._limit:
            target_m = self._kth_m
        elif found > 0:
            target_m = reach_m * math.sqrt(self._limit / found) * 1.25
        else:
            target_m = 2.0 * reach_m
        target_m = min(target_m, self._radius_m)
        if math.isfinite(target_m):
            k_next = math.ceil((target_m + 2.0 * self._edge_m) / spacing_m) - 1
        else:
            k_next = self._max_rings
        return max(self._k + 1, min(k_next, self._max_rings))


def nearby(
    lat: float,
    lng: float,
    *,
    radius_m: float,
    limit: int,
    members: MembersLookup,
    now_ms: int,
    stale_s: float = DEFAULT_STALE_S,
    max_rings: int = DEFAULT_MAX_RINGS,
    first_rings: int = DEFAULT_FIRST_RINGS,
    res: int = LIVE_RES,
) -> NearbyResult:
    """Run a `NearbySearch` to completion with a synchronous lookup (one call per step)."""
    search = NearbySearch(
        lat,
        lng,
        radius_m=radius_m,
        limit=limit,
        now_ms=now_ms,
        stale_s=stale_s,
        max_rings=max_rings,
        first_rings=first_rings,
        res=res,
    )
    while (cells := search.next_cells()) is not None:
        search.add_members(members(cells))
    return search.result()


def nearby_bruteforce(
    points: Iterable[MemberRow],
    lat: float,
    lng: float,
    *,
    radius_m: float,
    limit: int,
    now_ms: int,
    stale_s: float = DEFAULT_STALE_S,
) -> list[NearbyHit]:
    """Reference answer by scanning every point: fresh, within radius, sorted by (dist, id)."""
    min_ts_ms = now_ms - stale_s * 1000.0
    newest: dict[str, MemberRow] = {}
    for row in points:
        old = newest.get(row[0])
        if old is None or row[3] > old[3]:
            newest[row[0]] = row
    hits = []
    for member_id, plat, plng, ts_ms in newest.values():
        if ts_ms < min_ts_ms:
            continue
        dist_m = haversine_m(lat, lng, plat, plng)
        if dist_m <= radius_m:
            hits.append(
                NearbyHit(id=member_id, dist_m=dist_m, lat=plat, lng=plng, updated_at_ms=ts_ms)
            )
    hits.sort(key=lambda hit: (hit.dist_m, hit.id))
    return hits[:limit]
