"""`RoadTravelModel`: travel times on the road network, over in-process OSRM.

It implements `geo.travel.TravelModel` (and dispatch's pairwise `PairTravelModel`) so every
consumer of the straight-line model can use roads instead, selected by the ``ROADS`` setting.
The engine (`osrm.OSRM`, one per profile) reads the files of a folder built by
``homechef roads build`` once, at open; queries are in-process calls with no I/O and the same
answer for the same input, so the model is as deterministic as the straight-line one.

How a time is made, for points a and b and a vehicle:

- the vehicle's profile (`roads.profiles.PROFILE_OF`) answers the fastest road time between
  the points' nearest road positions (OSRM snaps each input to its nearest road segment: the
  Nearest service, reported with every Table/Route answer as the waypoint's ``distance``);
- the snap distances at both ends are added at `snap_speed_mps`, a walking pace: a point off
  the network (a courtyard, a pier) costs the walk to the road;
- a point farther than `max_snap_m` from any road of the profile is off the map: every pair
  with it is ``inf``, as is a pair the profile cannot connect (OSRM ``null``). ``inf`` is an
  explicit "unreachable" that dispatch treats as infeasible, never an exception;
- two points closer to each other than their summed snap distances are walked directly, so a
  point to itself is 0, as in the straight-line model;
- a scooter rides the car network with its road time multiplied by `scooter_factor`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.costs import VEHICLES
from geo.distance import haversine_m, haversine_matrix_m
from geo.travel import Vehicle
from roads.manifest import Manifest, RoadsError, read_manifest
from roads.profiles import PROFILE_OF, Profile

__all__ = ["MAX_SPEED_MPS", "MatchedLeg", "RoadMatch", "RoadRoute", "RoadTravelModel"]

FloatArray = npt.NDArray[np.float64]

MAX_SPEED_MPS: dict[Profile, float] = {"car": 150 / 3.6, "bicycle": 40 / 3.6, "foot": 10 / 3.6}
"""No road time of the profile is faster than this over the straight-line distance (the
profiles' top speeds with a margin); the lower bound dispatch's candidate search needs."""


class RoadRoute(msgspec.Struct, frozen=True, kw_only=True):
    """One leg along the roads."""

    duration_s: float
    distance_m: float
    """Along the roads, plus the walks to and from them."""
    coordinates: list[tuple[float, float]]
    """(lng, lat) points, GeoJSON order: the start, the roads, the end."""


class MatchedLeg(msgspec.Struct, frozen=True, kw_only=True):
    """The roads between two consecutive kept fixes of a matched trace."""

    nodes: list[int]
    """OSM node ids along it, in riding order (segment-speed updates are keyed by pairs)."""
    distance_m: float
    """Along the roads."""
    observed_s: float
    """Between the two fixes' timestamps: the distance over it is the speed ridden."""


class RoadMatch(msgspec.Struct, frozen=True, kw_only=True):
    """A GPS trace matched to the roads (OSRM Match)."""

    snapped: list[tuple[float, float] | None]
    """Per input fix, its (lat, lng) on the road; None when the matcher dropped it (an
    outlier, or a fix too close to the previous one)."""
    coordinates: list[tuple[float, float]]
    """(lng, lat) of the roads ridden, GeoJSON order (the sub-traces one after the other)."""
    confidence: float
    """The matcher's confidence, 0..1 (the lowest of the sub-traces)."""
    legs: list[MatchedLeg]


def _valid(lat: FloatArray, lng: FloatArray) -> npt.NDArray[np.bool_]:
    return (np.isfinite(lat) & np.isfinite(lng) & (np.abs(lat) <= 90.0)
            & (np.abs(lng) <= 180.0))


def _unique_points(lat: FloatArray, lng: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Distinct (lat, lng) rows and, per input, the index of its row."""
    pts, inverse = np.unique(np.column_stack([lat, lng]), axis=0, return_inverse=True)
    return pts, inverse.reshape(-1)


class _Legs:
    """The parts of some legs' times, same-shaped arrays: `road_s` between the snapped
    points (inf: unreachable or off the map), `snap_s` the walks to and from the road, and
    `walk_s` walking straight across (inf unless the points are nearer each other than
    the road; inf off the map)."""

    __slots__ = ("road_s", "snap_s", "walk_s")

    def __init__(self, road_s: FloatArray, snap_s: FloatArray, walk_s: FloatArray) -> None:
        self.road_s, self.snap_s, self.walk_s = road_s, snap_s, walk_s

    @classmethod
    def unreachable(cls, shape: int | tuple[int, ...]) -> _Legs:
        return cls(np.full(shape, np.inf), np.zeros(shape), np.full(shape, np.inf))

    def seconds(self, factor: float) -> FloatArray:
        """The legs' times for a vehicle whose road time is the profile's x `factor`."""
        return np.asarray(np.minimum(self.road_s * factor + self.snap_s, self.walk_s))

    def take(self, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> _Legs:
        return _Legs(self.road_s[rows, cols], self.snap_s[rows, cols], self.walk_s[rows, cols])

    def put(self, at: npt.NDArray[np.intp], legs: _Legs) -> None:
        self.road_s[at], self.snap_s[at], self.walk_s[at] = legs.road_s, legs.snap_s, legs.walk_s


class RoadTravelModel:
    """Seconds between points along the roads of one built folder (module docstring)."""

    def __init__(
        self,
        engines: Mapping[Profile, Any],
        *,
        manifest: Manifest,
        directory: Path,
        snap_speed_mps: float = 1.4,
        max_snap_m: float = 1000.0,
        scooter_factor: float = 1.0,
        cache_pairs: int = 200_000,
    ) -> None:
        missing = sorted({PROFILE_OF[v] for v in Vehicle} - set(engines))
        if missing:
            raise RoadsError(f"{directory} has no {', '.join(missing)} profile "
                             "(build it with `homechef roads build --profile ...`)")
        if not (snap_speed_mps > 0 and max_snap_m >= 0 and scooter_factor > 0
                and cache_pairs >= 0):
            raise ValueError("snap_speed_mps and scooter_factor must be > 0, max_snap_m and "
                             "cache_pairs >= 0")
        self.engines = dict(engines)
        self.manifest = manifest
        self.directory = directory
        self.snap_speed_mps = snap_speed_mps
        self.max_snap_m = max_snap_m
        self.scooter_factor = scooter_factor
        self.cache_pairs = cache_pairs
        # The legs of pairs already asked by `travel_pairs_s`, per profile: (a_lat, a_lng,
        # b_lat, b_lng) -> (road_s, snap_s, walk_s). Dispatch asks the same pairs round after
        # round (an order's chef -> drop-off while it waits, a parked courier -> a chef), and
        # the answer for a pair never changes while the engines do not. Bounded: the oldest
        # entries go first.
        self._cache: dict[Profile, dict[tuple[float, float, float, float],
                                        tuple[float, float, float]]] = {
            p: {} for p in engines}
        # Per dispatch vehicle code: its profile and the factor on its road time.
        self._profile_of_code = [PROFILE_OF[v] for v in VEHICLES]
        self._factor_of_code = [scooter_factor if v is Vehicle.SCOOTER else 1.0
                                for v in VEHICLES]

    @classmethod
    def open(cls, directory: Path, **options: Any) -> RoadTravelModel:
        """Load every profile of a road folder (its manifest names them) into memory."""
        import osrm  # the compiled engine: loaded only when roads are configured

        directory = directory.resolve()
        manifest = read_manifest(directory)
        engines: dict[Profile, Any] = {}
        algorithm = "MLD" if manifest.algorithm == "mld" else "CH"
        for profile, base in manifest.profiles.items():
            try:
                engines[profile] = osrm.OSRM(storage_config=str(directory / base),
                                             algorithm=algorithm, use_shared_memory=False)
            except RuntimeError as exc:
                raise RoadsError(f"cannot load the {profile} road data of {directory}: "
                                 f"{exc}") from None
        return cls(engines, manifest=manifest, directory=directory, **options)

    def close(self) -> None:
        """Release the engines (their memory is the road data's size). Afterwards every pair
        is unreachable; a process closes its model only at shutdown."""
        self.engines.clear()
        self.clear_cache()

    def cached_pairs(self) -> int:
        """Pair legs held in the cache, all profiles."""
        return sum(len(c) for c in self._cache.values())

    def clear_cache(self) -> None:
        """Forget the cached pair legs (to be called when the engines' data changes)."""
        for cache in self._cache.values():
            cache.clear()

    def swap_engine(self, profile: Profile, engine: Any) -> Any:
        """Serve `profile` from `engine` from now on (re-customised data: live traffic) and
        forget that profile's cached legs; answers the engine it replaces. Call it on the
        thread that queries the model (the event loop), between queries."""
        if profile not in self.engines:
            raise RoadsError(f"no {profile} profile to replace")
        old = self.engines[profile]
        self.engines[profile] = engine
        cache = self._cache.get(profile)
        if cache is not None:
            cache.clear()
        return old

    def describe(self) -> str:
        m = self.manifest
        return (f"roads from {m.source} ({', '.join(m.profiles)}; {m.algorithm}; built "
                f"{m.built_at}) in {self.directory}")

    # -- TravelModel -----------------------------------------------------------------------
    def travel_s(
        self, lat1: float, lng1: float, lat2: float, lng2: float, vehicle: Vehicle
    ) -> float:
        leg = self.route(lat1, lng1, lat2, lng2, vehicle, geometry=False)
        return math.inf if leg is None else leg.duration_s

    def travel_matrix_s(
        self,
        lat_a: npt.ArrayLike,
        lng_a: npt.ArrayLike,
        lat_b: npt.ArrayLike,
        lng_b: npt.ArrayLike,
        vehicle: Vehicle,
    ) -> FloatArray:
        la, ga = np.atleast_1d(np.asarray(lat_a, np.float64)), np.atleast_1d(
            np.asarray(lng_a, np.float64))
        lb, gb = np.atleast_1d(np.asarray(lat_b, np.float64)), np.atleast_1d(
            np.asarray(lng_b, np.float64))
        code = VEHICLES.index(vehicle)
        return self._table(self._profile_of_code[code], la, ga, lb, gb).seconds(
            self._factor_of_code[code])

    # -- dispatch.costs.PairTravelModel ----------------------------------------------------
    def travel_pairs_s(
        self,
        lat_a: FloatArray,
        lng_a: FloatArray,
        lat_b: FloatArray,
        lng_b: FloatArray,
        vehicle_code: npt.NDArray[np.int64],
    ) -> FloatArray:
        """Seconds from a[k] to b[k] by vehicle_code[k] (numpy broadcasting). Pairs are asked
        per profile (scooters and cars together: the same pair is asked once) as one Table
        over their distinct sources and destinations, or one Table per destination when that
        table would be larger than the pairs (`_pairs`)."""
        arrays = np.broadcast_arrays(np.asarray(lat_a, np.float64), np.asarray(lng_a, np.float64),
                                     np.asarray(lat_b, np.float64), np.asarray(lng_b, np.float64),
                                     np.asarray(vehicle_code, np.int64))
        shape = arrays[0].shape
        la, ga, lb, gb, codes = (a.reshape(-1) for a in arrays)
        out = np.full(la.shape, np.inf)
        present = np.unique(codes).tolist()
        for profile in dict.fromkeys(self._profile_of_code[c] for c in present):
            sel = np.flatnonzero(np.isin(codes, [c for c in present
                                                 if self._profile_of_code[c] == profile]))
            legs = self._pairs(profile, la[sel], ga[sel], lb[sel], gb[sel])
            for code in np.unique(codes[sel]).tolist():
                mine = codes[sel] == code
                out[sel[mine]] = legs.seconds(self._factor_of_code[code])[mine]
        return out.reshape(shape)

    def travel_lower_bound_s(
        self, dist_m: FloatArray, vehicle_code: npt.NDArray[np.int64]
    ) -> FloatArray:
        s_per_m = np.array([1.0 / (MAX_SPEED_MPS[p] / f) for p, f in
                            zip(self._profile_of_code, self._factor_of_code, strict=True)])
        return np.asarray(np.asarray(dist_m, np.float64) * s_per_m[vehicle_code])

    # -- routes ----------------------------------------------------------------------------
    def route(self, lat1: float, lng1: float, lat2: float, lng2: float, vehicle: Vehicle,
              *, geometry: bool = True) -> RoadRoute | None:
        """The fastest leg along the roads (Route), or None when a point is invalid, off the
        map (`max_snap_m`) or the profile cannot connect them."""
        import osrm

        if not (_valid(np.array([lat1, lat2]), np.array([lng1, lng2]))).all():
            return None
        code = VEHICLES.index(vehicle)
        profile, factor = self._profile_of_code[code], self._factor_of_code[code]
        params = osrm.RouteParameters(coordinates=[(lng1, lat1), (lng2, lat2)],
                                      geometries="geojson",
                                      overview="full" if geometry else "false",
                                      generate_hints=False)
        engine = self.engines.get(profile)
        if engine is None:
            return None
        try:
            answer = engine.Route(params)
        except RuntimeError:
            return None  # NoRoute / NoSegment: OSRM raises for "no answer"
        if answer["code"] != "Ok" or not len(answer["routes"]):
            return None
        snap_a = float(answer["waypoints"][0]["distance"])
        snap_b = float(answer["waypoints"][1]["distance"])
        if max(snap_a, snap_b) > self.max_snap_m:
            return None
        best = answer["routes"][0]
        duration_s = float(best["duration"]) * factor + (snap_a + snap_b) / self.snap_speed_mps
        distance_m = float(best["distance"]) + snap_a + snap_b
        direct_m = haversine_m(lat1, lng1, lat2, lng2)
        if direct_m <= snap_a + snap_b:  # nearer each other than to the road: walk across
            walk_s = direct_m / self.snap_speed_mps
            if walk_s < duration_s:
                return RoadRoute(duration_s=walk_s, distance_m=direct_m,
                                 coordinates=[(lng1, lat1), (lng2, lat2)])
        coords: list[tuple[float, float]] = []
        if geometry:
            coords = [(float(p[0]), float(p[1])) for p in best["geometry"]["coordinates"]]
            coords = [(lng1, lat1), *coords, (lng2, lat2)]
        return RoadRoute(duration_s=duration_s, distance_m=distance_m, coordinates=coords)

    def nearest(self, lat: float, lng: float,
                vehicle: Vehicle) -> tuple[float, float, float] | None:
        """The nearest point on a road of the vehicle's profile (OSRM Nearest), as (lat,
        lng, distance_m); None for an invalid point or one off the map (`max_snap_m`)."""
        import osrm

        engine = self.engines.get(self._profile_of_code[VEHICLES.index(vehicle)])
        if engine is None or not _valid(np.array([lat]), np.array([lng])).all():
            return None
        params = osrm.NearestParameters(coordinates=[(lng, lat)], generate_hints=False)
        params.number_of_results = 1
        try:
            answer = engine.Nearest(params)
        except RuntimeError:
            return None
        if answer["code"] != "Ok" or not len(answer["waypoints"]):
            return None
        point = answer["waypoints"][0]
        distance_m = float(point["distance"])
        if distance_m > self.max_snap_m:
            return None
        return float(point["location"][1]), float(point["location"][0]), distance_m

    # -- map matching ----------------------------------------------------------------------
    def match(self, lat: npt.ArrayLike, lng: npt.ArrayLike, ts_s: npt.ArrayLike,
              vehicle: Vehicle, *, accuracy_m: float = 20.0) -> RoadMatch | None:
        """The roads a courier rode, from its fixes in time order (OSRM Match on the
        vehicle's profile; `accuracy_m` is the GPS error searched around each fix). A trace
        with a long pause is split into sub-traces. None when fewer than two fixes are
        valid or nothing matched (fixes off the map, a track no road explains)."""
        import osrm

        la, ga = np.asarray(lat, np.float64), np.asarray(lng, np.float64)
        ts = np.asarray(ts_s, np.float64)
        keep = np.flatnonzero(_valid(la, ga) & np.isfinite(ts))
        engine = self.engines.get(self._profile_of_code[VEHICLES.index(vehicle)])
        if len(keep) < 2 or engine is None:
            return None
        params = osrm.MatchParameters(
            coordinates=list(zip(ga[keep].tolist(), la[keep].tolist(), strict=True)),
            timestamps=[int(t) for t in ts[keep].tolist()], radiuses=[accuracy_m] * len(keep),
            geometries="geojson", overview="full", annotations=["nodes", "distance"],
            gaps="split", tidy=True, generate_hints=False)
        try:
            answer = engine.Match(params)
        except RuntimeError:
            return None  # NoMatch / NoSegment: OSRM raises for "no answer"
        if answer["code"] != "Ok" or not len(answer["matchings"]):
            return None
        snapped: list[tuple[float, float] | None] = [None] * len(la)
        # Per (matching, waypoint): the input fix it came from (legs join waypoints).
        fix_of: dict[tuple[int, int], int] = {}
        for k, point in zip(keep.tolist(), answer["tracepoints"], strict=True):
            if point is None:
                continue
            snapped[k] = (float(point["location"][1]), float(point["location"][0]))
            fix_of[(int(point["matchings_index"]), int(point["waypoint_index"]))] = k
        coords: list[tuple[float, float]] = []
        legs: list[MatchedLeg] = []
        confidence = 1.0
        for m, matching in enumerate(answer["matchings"]):
            confidence = min(confidence, float(matching["confidence"]))
            coords += [(float(p[0]), float(p[1])) for p in matching["geometry"]["coordinates"]]
            for w, leg in enumerate(matching["legs"]):
                a, b = fix_of.get((m, w)), fix_of.get((m, w + 1))
                if a is None or b is None:
                    continue
                legs.append(MatchedLeg(nodes=[int(n) for n in leg["annotation"]["nodes"]],
                                       distance_m=float(leg["distance"]),
                                       observed_s=float(ts[b] - ts[a])))
        return RoadMatch(snapped=snapped, coordinates=coords, confidence=confidence,
                         legs=legs)

    # -- internals -------------------------------------------------------------------------
    def _pairs(self, profile: Profile, la: FloatArray, ga: FloatArray, lb: FloatArray,
               gb: FloatArray) -> _Legs:
        """The legs of the pairs (a[k], b[k]): from the cache where asked before, the
        others from OSRM (`_ask_pairs`), then cached."""
        cache = self._cache.get(profile)
        if cache is None or not self.cache_pairs:
            return self._ask_pairs(profile, la, ga, lb, gb)
        keys = list(zip(la.tolist(), ga.tolist(), lb.tolist(), gb.tolist(), strict=True))
        found = [cache.get(k) for k in keys]
        miss = [i for i, leg in enumerate(found) if leg is None]
        if miss:
            at = np.asarray(miss, np.intp)
            legs = self._ask_pairs(profile, la[at], ga[at], lb[at], gb[at])
            for i, leg in zip(miss, zip(legs.road_s.tolist(), legs.snap_s.tolist(),
                                        legs.walk_s.tolist(), strict=True), strict=True):
                found[i] = cache[keys[i]] = leg
            over = len(cache) - self.cache_pairs
            if over > 0:  # drop the oldest, a tenth more than needed (fewer evictions)
                for k in list(itertools.islice(cache, over + self.cache_pairs // 10)):
                    del cache[k]
        if not found:
            return _Legs.unreachable(0)
        table = np.array(found, np.float64)
        return _Legs(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy())

    def _ask_pairs(self, profile: Profile, la: FloatArray, ga: FloatArray, lb: FloatArray,
                   gb: FloatArray) -> _Legs:
        """The legs of the pairs (a[k], b[k]) from OSRM: one Table over all distinct sources x
        destinations when that is no bigger than the pairs asked (every courier near every
        chef); else one Table per destination with its own sources, or per source with its
        own destinations when there are fewer sources (chef -> drop-offs). A Table's cost
        grows with every source searched and every destination reached, so for dispatch's
        shape (each chef's nearest couriers) one call per chef was the fastest grouping
        tried (bench/roads.py: 0.49 s MLD, 0.25 s CH for 2,000 x 12 on Monaco, against
        0.7-0.9 s and 0.3-0.35 s grouping several chefs per call)."""
        src, src_of = _unique_points(la, ga)
        dst, dst_of = _unique_points(lb, gb)
        if len(src) * len(dst) <= len(la):
            table = self._table(profile, src[:, 0], src[:, 1], dst[:, 0], dst[:, 1])
            return table.take(src_of, dst_of)
        by_source = len(src) < len(dst)
        key, other = (src_of, dst_of) if by_source else (dst_of, src_of)
        out = _Legs.unreachable(len(la))
        order = np.argsort(key, kind="stable")
        starts = np.searchsorted(key[order], np.arange((len(src) if by_source else len(dst))
                                                       + 1)).tolist()
        for g in range(len(starts) - 1):
            rows = order[starts[g]:starts[g + 1]]
            if not len(rows):
                continue
            pts, of = np.unique(other[rows], return_inverse=True)
            one = np.zeros(len(rows), np.intp)
            if by_source:
                table = self._table(profile, src[g:g + 1, 0], src[g:g + 1, 1],
                                    dst[pts, 0], dst[pts, 1])
                out.put(rows, table.take(one, of.reshape(-1)))
            else:
                table = self._table(profile, src[pts, 0], src[pts, 1],
                                    dst[g:g + 1, 0], dst[g:g + 1, 1])
                out.put(rows, table.take(of.reshape(-1), one))
        return out

    def _table(self, profile: Profile, la: FloatArray, ga: FloatArray, lb: FloatArray,
               gb: FloatArray) -> _Legs:
        """The (len(a), len(b)) legs of one OSRM Table, snaps and limits applied (module
        docstring)."""
        import osrm

        n, m = len(la), len(lb)
        out = _Legs.unreachable((n, m))
        ok_a, ok_b = _valid(la, ga), _valid(lb, gb)
        ia, ib = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
        if not len(ia) or not len(ib):
            return out
        coords = list(zip(ga[ia].tolist(), la[ia].tolist(), strict=True))
        if (len(ia) > 1 and la.shape == lb.shape and np.array_equal(la, lb)
                and np.array_equal(ga, gb)):
            # All-to-all over one list (stacking, route optimisation): each point snapped
            # once. (OSRM wants two coordinates at least.)
            sources = destinations = list(range(len(ia)))
        else:
            coords += zip(gb[ib].tolist(), lb[ib].tolist(), strict=True)
            sources = list(range(len(ia)))
            destinations = list(range(len(ia), len(ia) + len(ib)))
        params = osrm.TableParameters(
            coordinates=coords, sources=sources, destinations=destinations,
            annotations=["duration"], generate_hints=False)
        engine = self.engines.get(profile)
        if engine is None:
            return out
        try:
            answer = engine.Table(params)
        except RuntimeError:
            return out
        if answer["code"] != "Ok":
            return out
        road = np.array([[math.inf if d is None else d for d in row]
                         for row in answer["durations"]], dtype=np.float64)
        snap_a = np.array([float(w["distance"]) for w in answer["sources"]])
        snap_b = np.array([float(w["distance"]) for w in answer["destinations"]])
        snap_m = snap_a[:, None] + snap_b[None, :]
        direct_m = haversine_matrix_m(la[ia], ga[ia], lb[ib], gb[ib])
        off_map = (snap_a[:, None] > self.max_snap_m) | (snap_b[None, :] > self.max_snap_m)
        cells = np.ix_(ia, ib)
        out.road_s[cells] = np.where(off_map, np.inf, road)
        out.snap_s[cells] = snap_m / self.snap_speed_mps
        out.walk_s[cells] = np.where(off_map | (direct_m > snap_m), np.inf,
                                     direct_m / self.snap_speed_mps)
        return out
