"""Benchmark one dispatch matching round: optimal (sparse candidates) vs greedy vs full matrix.

A seeded city (default: 2,000 waiting orders x 10,000 couriers within 15 km of central
Bengaluru, clustered around hotspots). Per round it times, separately:

  search   the caller's job: K nearest couriers per chef from an H3 res-9 index (vectorised over
           H3 local IJ coordinates), with a proven lower bound on the distance of every courier
           it did not return;
  round    candidate_costs, a price guess and column generation for the orders the distance
           bound cannot cover, assign_orders + certify_candidates, and more column generation
           + re-solves until every order is proven. The result then equals the optimum over
           ALL couriers. The column-generation searches are part of the round (timed apart
           too); "round + candidate search" is the whole thing.

Beside it, in the same run: greedy nearest-courier on the same candidates, and the full-matrix
optimum (dense costs, 2,000 x 10,000, + linear_sum_assignment) for round 0.

    python -m bench.dispatch              # from the repository root
    python -m bench.dispatch --rounds 3 --no-dense
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.costs import (
    ALL_VEHICLES_MASK,
    CandidateCosts,
    CostParams,
    Couriers,
    HaversinePairTravel,
    Orders,
    candidate_costs,
    dense_costs,
    effective_vehicle_mask,
    outside_cost_lower_bound_s,
    pricing_radius_m,
    vehicle_mask,
)
from dispatch.matching import Assignment, assign_and_certify, assign_orders, greedy_nearest
from geo.grid_index import (
    GridIndex,
    VehicleFilter,
    anchor_cell,
    build_index,
    ij_keys,
    k_nearest,
    ring_for,
    search_disks,
)
from geo.travel import Vehicle

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")
A = TypeVar("A", bound=np.generic)

KM_PER_DEG_LAT = 111.32


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# --------------------------------------------------------------------------- the city


def _points(
    rng: np.random.Generator, n: int, center: tuple[float, float], radius_km: float,
    hotspots_km: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Half uniform in the disc, half around hotspots (sigma 1.5 km), clipped to the disc."""
    r = radius_km * np.sqrt(rng.random(n))
    a = rng.random(n) * 2 * np.pi
    xy = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    hot = rng.random(n) < 0.5
    pick = hotspots_km[rng.integers(0, len(hotspots_km), n)]
    xy[hot] = pick[hot] + rng.normal(0.0, 1.5, (int(hot.sum()), 2))
    norm = np.linalg.norm(xy, axis=1)
    xy *= np.minimum(1.0, radius_km / np.maximum(norm, 1e-9))[:, None]
    lat = center[0] + xy[:, 1] / KM_PER_DEG_LAT
    lng = center[1] + xy[:, 0] / (KM_PER_DEG_LAT * np.cos(np.radians(center[0])))
    return lat, lng


def make_city(
    seed: int, n_orders: int, n_couriers: int, center: tuple[float, float], radius_km: float,
    now_s: float,
) -> tuple[Orders, Couriers]:
    rng = np.random.default_rng(seed)
    r = 0.7 * radius_km * np.sqrt(rng.random(8))
    a = rng.random(8) * 2 * np.pi
    hotspots = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)

    c_lat, c_lng = _points(rng, n_couriers, center, radius_km, hotspots)
    vehicle = rng.choice(3, n_couriers, p=[0.3, 0.5, 0.2])  # VEHICLES order: bike, scooter, car
    busy = rng.random(n_couriers) < 0.15  # finishing a delivery within the next 5 min
    available_at = np.where(busy, now_s + rng.uniform(0, 300, n_couriers),
                            now_s - rng.uniform(0, 600, n_couriers))
    couriers = Couriers(lat=c_lat, lng=c_lng, vehicle_code=vehicle, available_at_s=available_at)

    chef_lat, chef_lng = _points(rng, n_orders, center, radius_km, hotspots)
    dist_km = rng.uniform(0.5, 7.0, n_orders)
    bearing = rng.random(n_orders) * 2 * np.pi
    drop_lat = chef_lat + dist_km * np.sin(bearing) / KM_PER_DEG_LAT
    drop_lng = chef_lng + dist_km * np.cos(bearing) / (
        KM_PER_DEG_LAT * np.cos(np.radians(chef_lat)))
    ready_at = now_s + rng.uniform(-120, 1200, n_orders)
    # Promise = ready + a scooter ride at 1.35 circuity + service + slack (some slack is tight).
    promised_at = ready_at + dist_km * 1000 * 1.35 / 6.9 + 120 + rng.uniform(120, 1200, n_orders)
    car_only = rng.random(n_orders) < 0.08
    allowed = np.where(car_only, vehicle_mask(Vehicle.CAR), ALL_VEHICLES_MASK)
    orders = Orders(chef_lat=chef_lat, chef_lng=chef_lng, drop_lat=drop_lat, drop_lng=drop_lng,
                    ready_at_s=ready_at, promised_at_s=promised_at, allowed_vehicles=allowed)
    return orders, couriers


# --------------------------------------------------------------------------- one round


class CourierClass(msgspec.Struct, frozen=True, kw_only=True):
    """Couriers searched together: idle ones (free now) and busy ones (free within minutes)
    get separate indexes and K, so the outside bound of each can use its own latest start —
    one shared bound would have to assume every far courier is free exactly when its food
    is ready (no idle wait), which is far too weak to prove anything for the idle majority."""

    name: str
    index: GridIndex
    k: int
    latest_start_s: float


class RoundResult(msgspec.Struct, kw_only=True):
    search_s: float
    round_s: float
    round_cpu_s: float  # process CPU time of the round: less sensitive to other jobs' load
    costs_s: float
    pricing_s: float  # column-generation searches (inside the round)
    solve_s: float  # LAPJVsp + ties + certificate on one shared graph, all passes
    certify_s: float  # price guess + outside bounds
    greedy_s: float
    expansions: int
    expanded_orders: int
    proven: bool  # every order certified: equal to the optimum over all couriers
    pairs: int
    optimal: Assignment
    greedy: Assignment


def _take(orders: Orders, rows: IntArray) -> Orders:
    fields = {f: getattr(orders, f)[rows] for f in orders.__struct_fields__}
    return Orders(**fields)


def _grow(
    old: npt.NDArray[A], rows: IntArray, new: npt.NDArray[A], kept: npt.NDArray[np.bool_],
    pack: IntArray, fill: float,
) -> npt.NDArray[A]:
    """`old` (n, K) with the kept entries of `new` (rows x K', reordered by `pack`) appended."""
    width = kept.shape[1]
    out = np.full((old.shape[0], old.shape[1] + width), fill, dtype=old.dtype)
    out[:, : old.shape[1]] = old
    out[rows, old.shape[1]:] = np.where(kept, np.take_along_axis(new, pack, 1)[:, :width], fill)
    return out


def run_round(
    orders: Orders, couriers: Couriers, classes: list[CourierClass], *, now_s: float,
    params: CostParams, penalty_s: float, price_margin: float, near: bool = True,
) -> RoundResult:
    travel = HaversinePairTravel()
    n = len(orders)
    t_search0 = time.perf_counter()
    chef_key = ij_keys(classes[0].index.anchor, orders.chef_lat, orders.chef_lng)
    vehicle_ok = effective_vehicle_mask(orders, params)
    codes = couriers.vehicle_code
    parts: list[IntArray] = []
    outside_m: list[FloatArray] = []
    for cls in classes:
        c, o = k_nearest(cls.index, couriers.lat, couriers.lng, chef_key, orders.chef_lat,
                         orders.chef_lng, cls.k, VehicleFilter(allowed=vehicle_ok, code=codes))
        parts.append(c)
        outside_m.append(o)
    cand = np.concatenate(parts, axis=1)
    search_s = time.perf_counter() - t_search0

    # Orders priced out by column generation carry their own bound (see below).
    priced_bound_s = np.full(n, np.nan)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    costs, costs_s = timed(lambda: candidate_costs(orders, couriers, cand, now_s=now_s,
                                                   params=params, travel=travel))
    t1 = time.perf_counter()
    # The distance part of the bound is fixed for the round; only priced orders change.
    by_distance_s = np.minimum.reduce([
        outside_cost_lower_bound_s(orders, o, now_s=now_s, latest_start_s=cls.latest_start_s,
                                   params=params, travel=travel)
        for cls, o in zip(classes, outside_m, strict=True)
    ])

    def outside_bound_s() -> FloatArray:
        return np.where(np.isnan(priced_bound_s), by_distance_s, priced_bound_s)
    # Guess each order's price before solving (its second-cheapest candidate: in a roomy
    # market an order's price is about what it would pay if its best courier went elsewhere)
    # and price out the orders the distance bound cannot cover yet. A wrong guess costs only
    # another pass below; the certificate, not the guess, decides.
    by_cost = np.partition(costs.cost_s, 1, axis=1) if cand.shape[1] > 1 else costs.cost_s
    second = by_cost[:, min(1, cand.shape[1] - 1)]
    guess_s = np.minimum(penalty_s, second) * (1.0 + price_margin)
    rows = np.flatnonzero(outside_bound_s() < guess_s)
    pending: tuple[IntArray, FloatArray] | None = (rows, guess_s[rows]) if len(rows) else None
    certify_s = time.perf_counter() - t1
    solve_s = 0.0
    pricing_s = 0.0
    expansions = 0
    expanded: set[int] = set()
    while True:
        if pending is not None:
            # Column generation: look at every courier that could still beat order i's price
            # p_i (all within each class's pricing radius) and add only the pairs cheaper than
            # p_i: the rest, like everything beyond the radius, cost >= p_i, so p_i becomes the
            # order's outside bound.
            rows, price_s = pending
            expansions += 1
            expanded.update(rows.tolist())
            t1 = time.perf_counter()
            sub = _take(orders, rows)
            extra_parts: list[IntArray] = []
            for cls in classes:
                radius = pricing_radius_m(sub, price_s, now_s=now_s,
                                          latest_start_s=cls.latest_start_s, params=params,
                                          travel=travel, tolerance_m=25.0)
                ring = ring_for(cls.index, radius)
                extra, _, _ = search_disks(
                    cls.index, couriers.lat, couriers.lng, chef_key[rows], sub.chef_lat,
                    sub.chef_lng, None, ring, VehicleFilter(allowed=vehicle_ok[rows], code=codes))
                extra_parts.append(extra)
            extra_all = np.concatenate(extra_parts, axis=1)
            priced = candidate_costs(sub, couriers, extra_all, now_s=now_s, params=params,
                                     travel=travel)
            cheaper = priced.cost_s < price_s[:, None]
            pack = np.argsort(~cheaper, axis=1, kind="stable")  # cheaper pairs to the front
            width = int(cheaper.sum(axis=1).max(initial=0))
            kept = np.take_along_axis(cheaper, pack, 1)[:, :width]
            priced_bound_s[rows] = price_s
            pricing_s += time.perf_counter() - t1
            # Grow the sparse matrix with the pairs just priced (their costs are computed;
            # a pair listed twice is deduplicated by the solver, cheapest copy kept).
            t1 = time.perf_counter()
            cand = _grow(cand, rows, extra_all, kept, pack, -1)
            costs = CandidateCosts(
                courier_idx=cand,
                cost_s=_grow(costs.cost_s, rows, priced.cost_s, kept, pack, np.inf),
                travel_s=_grow(costs.travel_s, rows, priced.travel_s, kept, pack, np.inf),
                n_couriers=costs.n_couriers)
            costs_s += time.perf_counter() - t1
        t1 = time.perf_counter()
        bound_s = outside_bound_s()
        optimal, cert = assign_and_certify(costs, bound_s, unassigned_penalty_s=penalty_s)
        solve_s += time.perf_counter() - t1
        if cert.all_proven or expansions >= 6:
            break
        # Fetching a little past the price saves a pass when the price rises slightly; and
        # orders proven only narrowly (bound within the margin of the price) are priced too,
        # since the next solve may lift their price past the bound.
        reach_s = cert.price_s * (1.0 + price_margin)
        rows = np.flatnonzero(~cert.proven | (bound_s < reach_s)) if near else \
            np.flatnonzero(~cert.proven)
        rows = rows[np.isnan(priced_bound_s[rows]) | (priced_bound_s[rows] < reach_s[rows])]
        pending = (rows, reach_s[rows])
    round_s = time.perf_counter() - t0
    round_cpu_s = time.process_time() - cpu0
    greedy, greedy_s = timed(lambda: greedy_nearest(costs, ready_at_s=orders.ready_at_s,
                                                    unassigned_penalty_s=penalty_s))
    return RoundResult(search_s=search_s, round_s=round_s, round_cpu_s=round_cpu_s,
                       costs_s=costs_s, pricing_s=pricing_s, solve_s=solve_s,
                       certify_s=certify_s, greedy_s=greedy_s, expansions=expansions,
                       proven=cert.all_proven,
                       expanded_orders=len(expanded),
                       pairs=int(np.count_nonzero(np.isfinite(costs.cost_s))), optimal=optimal,
                       greedy=greedy)


def courier_classes(
    couriers: Couriers, center: tuple[float, float], *, now_s: float, k_idle: int, k_busy: int,
    busy_buckets: int,
) -> list[CourierClass]:
    """Idle couriers, then soon-free ones in `busy_buckets` windows of equal length: the
    outside bound of a window assumes its latest start, so narrower windows prove more. Window
    w gets (w + 1) x k_busy candidates: a later start saves more idle wait, so couriers of late
    windows stay competitive from farther away."""
    anchor = anchor_cell(*center)
    keys = ij_keys(anchor, couriers.lat, couriers.lng)
    idle = np.flatnonzero(couriers.available_at_s <= now_s)
    classes = [CourierClass(name="idle", index=build_index(keys, idle, anchor), k=k_idle,
                            latest_start_s=now_s)]
    busy_at = couriers.available_at_s[couriers.available_at_s > now_s]
    if len(busy_at) == 0:
        return classes
    edges = np.linspace(now_s, float(busy_at.max()), busy_buckets + 1)
    for w, (lo, hi) in enumerate(itertools.pairwise(edges.tolist())):
        members = np.flatnonzero((couriers.available_at_s > lo)
                                 & (couriers.available_at_s <= hi))
        if len(members):
            classes.append(CourierClass(name=f"busy<={hi - now_s:.0f}s",
                                        index=build_index(keys, members, anchor),
                                        k=k_busy * (w + 1),
                                        latest_start_s=float(hi)))
    return classes


# --------------------------------------------------------------------------- main


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=10000)
    ap.add_argument("--center", type=float, nargs=2, default=(12.97, 77.59), metavar=("LAT", "LNG"))
    ap.add_argument("--radius-km", type=float, default=15.0)
    ap.add_argument("--k-idle", type=int, default=8, help="nearest idle couriers per order")
    ap.add_argument("--k-busy", type=int, default=2,
                    help="soon-free couriers per order in the first window (x w in the w-th)")
    ap.add_argument("--busy-windows", type=int, default=3,
                    help="soon-free couriers are searched in this many availability windows")
    ap.add_argument("--price-margin", type=float, default=0.1,
                    help="column generation fetches pairs up to price x (1 + margin)")
    ap.add_argument("--no-near", action="store_true",
                    help="re-price only unproven orders, not the narrowly proven ones too")
    ap.add_argument("--rounds", type=int, default=9, help="rounds (distinct seeded cities)")
    ap.add_argument("--penalty-s", type=float, default=1800.0, help="cost of 'no courier'")
    ap.add_argument("--no-dense", action="store_true", help="skip the full-matrix optimum")
    args = ap.parse_args(argv)

    now_s = 0.0
    params = CostParams()
    center = (args.center[0], args.center[1])
    print(f"city: {args.orders} orders x {args.couriers} couriers, {args.radius_km} km around "
          f"{center},\nK = {args.k_idle} idle + {args.k_busy} x (1..{args.busy_windows}) soon-free,"
          f" penalty {args.penalty_s:.0f} s, seed {args.seed}, {args.rounds} rounds")

    results: list[RoundResult] = []
    cities: list[tuple[Orders, Couriers, list[CourierClass]]] = []
    index_s: list[float] = []
    for r in range(args.rounds):
        orders, couriers = make_city(args.seed + r, args.orders, args.couriers, center,
                                     args.radius_km, now_s)
        t0 = time.perf_counter()
        classes = courier_classes(couriers, center, now_s=now_s, k_idle=args.k_idle,
                                  k_busy=args.k_busy, busy_buckets=args.busy_windows)
        index_s.append(time.perf_counter() - t0)
        cities.append((orders, couriers, classes))
        results.append(run_round(orders, couriers, classes, now_s=now_s, params=params,
                                 penalty_s=args.penalty_s, price_margin=args.price_margin,
                                 near=not args.no_near))

    def row(name: str, xs: list[float]) -> None:
        print(f"  {name:<34} p50 {_pct(xs, 50):8.1f} ms   p99 {_pct(xs, 99):8.1f} ms")

    print(f"\nlatency over {args.rounds} rounds (p99 of so few rounds is about the max):")
    row("index build (at GPS ingest in prod)", index_s)
    row("candidate search (H3, K nearest)", [x.search_s for x in results])
    row("costs (initial + priced pairs)", [x.costs_s for x in results])
    row("price guess + outside bounds", [x.certify_s for x in results])
    row("column-generation searches", [x.pricing_s for x in results])
    row("solve + certify (LAPJVsp, ties)", [x.solve_s for x in results])
    row("ROUND = all of the above but search", [x.round_s for x in results])
    row("ROUND, process CPU time", [x.round_cpu_s for x in results])
    row("round + candidate search", [x.round_s + x.search_s for x in results])
    row("greedy nearest (same candidates)", [x.greedy_s for x in results])
    print(f"  pricing passes per round: {[x.expansions for x in results]}, orders priced: "
          f"{[x.expanded_orders for x in results]}, usable pairs p50: "
          f"{int(np.median([x.pairs for x in results]))}")

    print(f"  rounds certified equal to the all-courier optimum: "
          f"{sum(x.proven for x in results)}/{len(results)}")
    print("\nper round: objective (s) optimal vs greedy, unassigned")
    for r, x in enumerate(results):
        print(f"  round {r}: optimal {x.optimal.objective_ms / 1000:11.1f} "
              f"(unassigned {x.optimal.n_unassigned:3d})   greedy "
              f"{x.greedy.objective_ms / 1000:11.1f} (unassigned {x.greedy.n_unassigned:3d})   "
              f"greedy/optimal {x.greedy.objective_ms / x.optimal.objective_ms:.4f}")

    orders, couriers, classes = cities[0]
    travel = HaversinePairTravel()
    tracemalloc.start()
    run_round(orders, couriers, classes, now_s=now_s, params=params, penalty_s=args.penalty_s,
              price_margin=args.price_margin, near=not args.no_near)
    _, sparse_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\npeak traced memory of one sparse round (incl. search): {sparse_peak / 2**20:.1f} MiB")

    if not args.no_dense:
        tracemalloc.start()
        dense, build_s = timed(lambda: dense_costs(orders, couriers, now_s=now_s, params=params,
                                                   travel=travel))
        full, solve_s = timed(lambda: assign_orders(dense, unassigned_penalty_s=args.penalty_s))
        _, dense_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        x = results[0]
        print(f"\nround 0, full matrix {dense.shape[0]} x {dense.shape[1]} (float64 "
              f"{dense.nbytes / 2**20:.0f} MiB): build {build_s * 1000:.0f} ms, "
              f"linear_sum_assignment + ties {solve_s * 1000:.0f} ms, peak traced "
              f"{dense_peak / 2**20:.0f} MiB (+ scipy's untraced C++ buffers)")
        print(f"  objective (s): full optimum {full.objective_ms / 1000:.3f}   sparse "
              f"{x.optimal.objective_ms / 1000:.3f}   greedy {x.greedy.objective_ms / 1000:.3f}")
        print(f"  sparse/optimum = {x.optimal.objective_ms / full.objective_ms:.9f} "
              f"({'EQUAL' if x.optimal.objective_ms == full.objective_ms else 'DIFFERENT'}), "
              f"greedy/optimum = {x.greedy.objective_ms / full.objective_ms:.4f}, unassigned "
              f"full {full.n_unassigned} sparse {x.optimal.n_unassigned} greedy "
              f"{x.greedy.n_unassigned}")
        same = int(np.count_nonzero(full.courier_idx == x.optimal.courier_idx))
        print(f"  same courier for {same}/{len(orders)} orders")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess max RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
