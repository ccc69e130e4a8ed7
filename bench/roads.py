"""Travel-time latency on real roads (`RoadTravelModel`, in-process OSRM) beside the
straight-line model, same points, same run.

    python -m bench.roads                      # the shipped Monaco extract, built here
    python -m bench.roads --extract ../shared/bench-data/osm/helsinki-centre.osm.pbf

The extract is built twice into a temporary folder (car and bicycle profiles; MLD, the
default, and CH) unless `--roads DIR` names a built folder (then only its algorithm runs).
Points are seeded, drawn in the middle half of the road network's bbox and snapped to a
road (Nearest), so every pair is on the map. Shapes, each timed `--reps` times (median):

- `matrix 100x100`: `travel_matrix_s`, bike (one OSRM Table);
- `chef x 50 couriers`: `travel_matrix_s` 50 x 1, bike (queue entry, a single order's
  candidates);
- `pairs N orders x 12`: `travel_pairs_s` as a dispatch round prices its sparse candidates
  (each order's 12 nearest couriers of a pool of 5 x N on the same points; N / 5 chefs,
  ~5 orders each), bike;
- `route`: `RoadTravelModel.route` with its GeoJSON geometry, per leg (haversine: one
  `travel_s`);
- `match` (printed apart, roads only): `RoadTravelModel.match` (OSRM Match) over a
  1,000-fix trace along bike routes (a fix every 4 s, 8 m of noise), 10 or 30 fixes per
  call: fixes matched per second;
- `plan_round N x 12: baseline`: the next shape priced the simple way: each order's
  delivery ride asked for every vehicle (two profiles) whatever its candidates ride,
  nothing cached. Same offers (checked);
- `plan_round N x 12`: a whole round's plan (`dispatch.round.plan_round`: candidate costs,
  optimal assignment) for N orders (N / 5 chefs) with on-road drop-offs, each with
  its 12 nearest of 5 x N idle bike couriers, nothing cached (a city's first round: every
  leg asked of OSRM). Afterwards: how many orders the road model gives another courier than
  the straight-line one;
- `next round (cached)`: the round after that one on a model that kept its pair cache
  (`ROADS_CACHE_PAIRS`), with `--new-orders` (10 %) of the orders new and `--moved` (25 %)
  of the couriers elsewhere: their legs are asked, the others come from the cache. The
  straight-line column repeats its plan_round (it has nothing to cache).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

import dispatch.round
from dispatch import costs
from dispatch.costs import CandidateCosts, HaversinePairTravel, vehicle_code
from dispatch.round import (
    RoundCouriers,
    RoundInputs,
    RoundOrder,
    RoundParams,
    RoundPlan,
    plan_round,
)
from geo.travel import HaversineTravelModel, Vehicle
from roads.build import SAMPLE_EXTRACT, build_roads
from roads.manifest import read_manifest
from roads.model import RoadTravelModel

FloatArray = npt.NDArray[np.float64]


def _median_s(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _on_road_points(model: RoadTravelModel, n: int, seed: int) -> FloatArray:
    """`n` (lat, lng) points on the bicycle network, in the middle half of its bbox."""
    import osrm

    lo_lng, lo_lat, hi_lng, hi_lat = model.manifest.bbox
    c_lat, c_lng = (lo_lat + hi_lat) / 2, (lo_lng + hi_lng) / 2
    h_lat, h_lng = (hi_lat - lo_lat) / 4, (hi_lng - lo_lng) / 4
    rng = np.random.default_rng(seed)
    engine = model.engines["bicycle"]
    out: list[tuple[float, float]] = []
    while len(out) < n:
        lat = c_lat + rng.uniform(-h_lat, h_lat)
        lng = c_lng + rng.uniform(-h_lng, h_lng)
        w = engine.Nearest(osrm.NearestParameters(coordinates=[(lng, lat)]))["waypoints"][0]
        if float(w["distance"]) < 50:
            out.append((float(w["location"][1]), float(w["location"][0])))
    return np.array(out)


def _chefs(rng: np.random.Generator, n_points: int, n_orders: int) -> npt.NDArray[np.int64]:
    """Each order's chef: N / 5 kitchens with ~5 waiting orders each (home chefs cook
    batches)."""
    kitchens = rng.choice(n_points, max(1, n_orders // 5), replace=False)
    return np.asarray(kitchens[rng.integers(len(kitchens), size=n_orders)])


def _shapes(model: object, pairs: object, pts: FloatArray, n_orders: int,
            seed: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(seed + 1)
    lat, lng = pts[:, 0], pts[:, 1]
    bike = Vehicle.BIKE
    travel_matrix = model.travel_matrix_s  # type: ignore[attr-defined]
    chef = rng.integers(len(pts))
    couriers = rng.choice(len(pts), 50, replace=False)
    # Each order's candidates are the 12 couriers nearest its chef (what the search gives),
    # from a pool of 5 x N couriers placed on the same on-road points.
    pool = rng.choice(len(pts), 5 * n_orders)
    chefs = _chefs(rng, len(pts), n_orders)
    scale = np.array([1.0, np.cos(np.radians(lat.mean()))])
    tree = cKDTree(pts[pool] * scale + rng.normal(0, 1e-7, (len(pool), 2)))
    cand = pool[tree.query(pts[chefs] * scale, k=12)[1]].ravel()
    la, ga = lat[cand], lng[cand]
    lb, gb = np.repeat(lat[chefs], 12), np.repeat(lng[chefs], 12)
    codes = np.full(len(la), vehicle_code(bike), np.int64)
    legs = rng.integers(len(pts), size=(200, 2))
    travel_pairs = pairs.travel_pairs_s  # type: ignore[attr-defined]

    def route_all() -> None:
        route = getattr(model, "route", None)
        for a, b in legs.tolist():
            if route is not None:
                route(lat[a], lng[a], lat[b], lng[b], bike)
            else:
                model.travel_s(lat[a], lng[a], lat[b], lng[b], bike)  # type: ignore[attr-defined]

    return {
        "matrix 100x100": lambda: travel_matrix(lat[:100], lng[:100], lat[:100], lng[:100], bike),
        "chef x 50 couriers": lambda: travel_matrix(lat[couriers], lng[couriers], lat[[chef]],
                                                    lng[[chef]], bike),
        f"pairs {n_orders} orders x 12": lambda: travel_pairs(la, ga, lb, gb, codes),
        "route (200 legs)": route_all,
    }


class _City:
    """A seeded round's people on the on-road points: orders (chef, drop-off point index)
    and couriers (point index + jitter), so a next round can change some of them."""

    def __init__(self, pts: FloatArray, n_orders: int, seed: int) -> None:
        self.pts, self.rng = pts, np.random.default_rng(seed + 2)
        rng = self.rng
        self.chefs, self.drops = _chefs(rng, len(pts), n_orders), rng.choice(len(pts), n_orders)
        self.order_ids = [f"o{i:05d}" for i in range(n_orders)]
        self.pool = rng.choice(len(pts), 5 * n_orders)
        # Couriers on the same point are still distinct.
        self.jitter = rng.normal(0, 2e-6, (len(self.pool), 2))

    def next_round(self, new_orders: float, moved: float) -> None:
        """The next round's city: the first `new_orders` share of the orders replaced by new
        ones (the oldest were offered), a `moved` share of the couriers somewhere else."""
        rng, n = self.rng, len(self.chefs)
        k = int(n * new_orders)
        kitchens = np.unique(self.chefs)
        self.chefs = np.concatenate([self.chefs[k:], rng.choice(kitchens, k)])
        self.drops = np.concatenate([self.drops[k:], rng.choice(len(self.pts), k)])
        self.order_ids = self.order_ids[k:] + [f"n{len(self.order_ids) + i:05d}"
                                               for i in range(k)]
        who = rng.choice(len(self.pool), int(len(self.pool) * moved), replace=False)
        self.pool = self.pool.copy()
        self.pool[who] = rng.choice(len(self.pts), len(who))

    def inputs(self) -> RoundInputs:
        pts, pool, chefs, drops = self.pts, self.pool, self.chefs, self.drops
        now_ms = 1_800_000_000_000
        lat, lng = pts[pool, 0] + self.jitter[:, 0], pts[pool, 1] + self.jitter[:, 1]
        scale = np.array([1.0, np.cos(np.radians(lat.mean()))])
        idle = cKDTree(np.column_stack([lat, lng]) * scale).query(pts[chefs] * scale, k=12)[1]
        orders = [RoundOrder(order_id=oid, chef=f"k{c}", pickup_lat=float(pts[c, 0]),
                             pickup_lng=float(pts[c, 1]), dropoff_lat=float(pts[d, 0]),
                             dropoff_lng=float(pts[d, 1]), ready_ms=now_ms + 300_000,
                             promised_ms=now_ms + 2_700_000)
                  for oid, c, d in zip(self.order_ids, chefs.tolist(), drops.tolist(),
                                       strict=True)]
        couriers = RoundCouriers(ids=[f"c{j:05d}" for j in range(len(pool))], lat=lat,
                                 lng=lng, vehicle=["bike"] * len(pool))
        return RoundInputs(orders=orders, couriers=couriers, idle=idle.astype(np.int64),
                           now_ms=now_ms)


def _round_inputs(pts: FloatArray, n_orders: int, seed: int) -> RoundInputs:
    return _City(pts, n_orders, seed).inputs()


def _trace(model: RoadTravelModel, pts: FloatArray, seed: int) -> tuple[FloatArray, ...]:
    """A courier's fixes along bike routes between seeded on-road points: one every 4 s at
    the route's speed, 8 m of GPS noise (lat, lng, ts_s)."""
    rng = np.random.default_rng(seed + 3)
    lat: list[float] = []
    lng: list[float] = []
    ts: list[float] = []
    t0 = 0.0
    while len(ts) < 1000:
        a, b = rng.choice(len(pts), 2, replace=False)
        leg = model.route(pts[a, 0], pts[a, 1], pts[b, 0], pts[b, 1], Vehicle.BIKE)
        if leg is None or leg.duration_s < 60:
            continue
        line = np.array(leg.coordinates)
        kx = 111_195.0 * np.cos(np.radians(line[0, 1]))
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(line[:, 0]) * kx,
                                                        np.diff(line[:, 1]) * 111_195.0))])
        at = np.arange(0.0, leg.duration_s, 4.0)
        along = at * cum[-1] / leg.duration_s
        lat += (np.interp(along, cum, line[:, 1])
                + rng.normal(0, 8 / 111_195.0, len(at))).tolist()
        lng += (np.interp(along, cum, line[:, 0]) + rng.normal(0, 8 / kx, len(at))).tolist()
        ts += (1_750_000_000 + t0 + at).tolist()
        t0 += leg.duration_s + 4.0
    return np.array(lat), np.array(lng), np.array(ts)


def _match_rate(model: RoadTravelModel, trace: tuple[FloatArray, ...], batch: int,
                reps: int) -> float:
    """Fixes matched per second, the trace matched `batch` fixes at a time (a courier's
    recent fixes per Match call)."""
    lat, lng, ts = trace

    def all_batches() -> None:
        for i in range(0, len(ts) - 1, batch):
            model.match(lat[i:i + batch], lng[i:i + batch], ts[i:i + batch], Vehicle.BIKE)

    return len(ts) / _median_s(all_batches, reps)


def _time_s(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _round_times(uncached: RoadTravelModel, cached: RoadTravelModel, pts: FloatArray,
                 args: argparse.Namespace) -> dict[str, list[float]]:
    """Per rep, one after the other (the machine's load hits them alike): the straight-line
    plan, the baseline's plan and the first round on `uncached`, then on `cached` a first
    round planned from nothing cached and the next round (`args.new_orders` of the orders
    new, `args.moved` of the couriers moved), timed."""
    inputs = _round_inputs(pts, args.orders, args.seed)
    plain = RoundParams(travel=uncached, pairs=uncached)
    warm = RoundParams(travel=cached, pairs=cached)
    out: dict[str, list[float]] = {"haversine": [], "baseline": [], "first": [], "next": []}
    for _ in range(args.reps):
        out["haversine"].append(_time_s(lambda: plan_round(inputs, RoundParams())))
        out["baseline"].append(_time_s(functools.partial(_plan_round_baseline, inputs, plain)))
        out["first"].append(_time_s(functools.partial(plan_round, inputs, plain)))
        cached.clear_cache()
        city = _City(pts, args.orders, args.seed)
        plan_round(city.inputs(), warm)
        city.next_round(args.new_orders, args.moved)
        out["next"].append(_time_s(functools.partial(plan_round, city.inputs(), warm)))
    return out


def _candidate_costs_every_vehicle(
    orders: costs.Orders, couriers: costs.Couriers, candidates: npt.ArrayLike, *,
    now_s: float, params: costs.CostParams, travel: costs.PairTravelModel,
) -> CandidateCosts:
    """The baseline's pricing: `candidate_costs` asking every order's delivery ride for every
    vehicle up front (each a road query on roads), feasible candidates or not."""
    idx = np.asarray(candidates, dtype=np.int64)
    cost, travel_s = np.full(idx.shape, np.inf), np.full(idx.shape, np.inf)
    rows, slots = np.nonzero(idx >= 0)
    if rows.size:
        prep = costs._prepare(orders, couriers, now_s, params, travel)
        cols = idx[rows, slots]
        t = costs._pickup_s(orders, couriers, rows, cols, travel)
        cost[rows, slots] = costs._pair_costs(orders, couriers, prep, rows, cols, params, t)
        travel_s[rows, slots] = t
    return CandidateCosts(courier_idx=idx, cost_s=cost, travel_s=travel_s,
                          n_couriers=len(couriers))


def _plan_round_baseline(inputs: RoundInputs, params: RoundParams) -> RoundPlan:
    """`plan_round` priced the baseline's way (`_candidate_costs_every_vehicle`)."""
    with mock.patch.object(dispatch.round, "candidate_costs", _candidate_costs_every_vehicle):
        return plan_round(inputs, params)


def _offers(plan: RoundPlan) -> dict[str, str]:
    return {o.order_id: o.courier_id for o in plan.offers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract", type=Path, default=SAMPLE_EXTRACT)
    parser.add_argument("--roads", type=Path, default=None, help="a built road folder")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--new-orders", type=float, default=0.1,
                        help="next round: share of the orders that are new")
    parser.add_argument("--moved", type=float, default=0.25,
                        help="next round: share of the couriers that moved")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-roads-") as tmp:
        folders: list[Path] = []
        if args.roads is not None:
            folders.append(args.roads)
        else:
            for algorithm in ("mld", "ch"):
                out = Path(tmp) / algorithm
                t0 = time.perf_counter()
                build_roads(args.extract, out, profiles=["car", "bicycle"],
                            algorithm="ch" if algorithm == "ch" else "mld")
                print(f"built {args.extract.name} ({algorithm}, car + bicycle) in "
                      f"{time.perf_counter() - t0:.1f} s")
                folders.append(out)
        # Without the pair cache: every leg is asked of OSRM, as in a city's first round.
        models = {read_manifest(f).algorithm: RoadTravelModel.open(f, cache_pairs=0)
                  for f in folders}
        first = next(iter(models.values()))
        pts = _on_road_points(first, 1200, args.seed)
        straight = HaversineTravelModel()
        columns: dict[str, dict[str, float]] = {
            "haversine": {k: _median_s(fn, args.reps) for k, fn in _shapes(
                straight, HaversinePairTravel(straight), pts, args.orders, args.seed).items()}}
        inputs = _round_inputs(pts, args.orders, args.seed)
        base_name = f"plan_round {args.orders} x 12: baseline"
        round_name = f"plan_round {args.orders} x 12"
        next_name = "next round (cached)"
        plans = {"haversine": plan_round(inputs, RoundParams())}
        straight_rounds: list[float] = []
        match_rates: dict[str, dict[int, float]] = {}
        for algorithm, model in models.items():
            name = f"roads {algorithm}"
            columns[name] = {
                k: _median_s(fn, args.reps)
                for k, fn in _shapes(model, model, pts, args.orders, args.seed).items()}
            params = RoundParams(travel=model, pairs=model)
            plans[name] = plan_round(inputs, params)
            same = _offers(_plan_round_baseline(inputs, params)) == _offers(plans[name])
            print(f"{name}: baseline's offers {'the same' if same else 'DIFFER'}")
            trace = _trace(model, pts, args.seed)
            match_rates[name] = {b: _match_rate(model, trace, b, args.reps) for b in (10, 30)}
            cached = RoadTravelModel.open(folders[list(models).index(algorithm)])
            times = _round_times(model, cached, pts, args)
            straight_rounds += times["haversine"]
            columns[name][base_name] = statistics.median(times["baseline"])
            columns[name][round_name] = statistics.median(times["first"])
            columns[name][next_name] = statistics.median(times["next"])
            cached.close()
            model.close()
        for row in (base_name, round_name, next_name):
            columns["haversine"][row] = statistics.median(straight_rounds)

    names = list(columns)
    print(f"\n{args.extract.name}: {len(pts)} on-road points, seed {args.seed}, "
          f"median of {args.reps}; next round: {args.new_orders:.0%} new orders, "
          f"{args.moved:.0%} of the couriers moved (haversine: its plan_round, timed between "
          "the others)")
    print(f"{'shape':<32}" + "".join(f"{n:>16}" for n in names))
    for shape in columns[names[-1]]:
        cells = [columns[n][shape] * 1000 for n in names]
        print(f"{shape:<32}" + "".join(f"{v:>13.2f} ms" for v in cells))
    for n, rates in match_rates.items():
        print(f"{n}: match " + ", ".join(f"{r:,.0f} fixes/s in batches of {b}"
                                          for b, r in rates.items()))
    straight_offers = _offers(plans["haversine"])
    for n in names:
        offers = _offers(plans[n])
        moved = sum(1 for o, c in offers.items() if straight_offers.get(o) != c)
        print(f"{n}: {len(offers)} of {args.orders} orders offered, total cost "
              f"{plans[n].total_cost_s:,.0f} s; {moved} offered another courier than "
              "with haversine")
    for n in names[1:]:
        ratios = ", ".join(f"{s}: x{columns[n][s] / columns['haversine'][s]:,.0f}"
                           for s in columns[n])
        print(f"{n} / haversine: {ratios}")


if __name__ == "__main__":
    main()
