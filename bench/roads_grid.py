"""A dispatch round on a synthetic grid city large enough for 10,000 couriers, on roads
beside the straight-line model, same run.

    python -m bench.roads_grid                       # 40 x 40 km, 2,000 orders, 10,000 couriers
    python -m bench.roads_grid --size-km 20 --orders 500 --couriers 2500

The city is written as OpenStreetMap XML (`write_grid_osm`, which `osrm-extract` reads):
a square grid of two-way streets `--spacing-m` apart, every tenth one a primary road,
centred on the dispatch benches' point (12.9716, 77.5946). It is built (car + bicycle,
MLD) into a temporary folder. The round: `--orders` orders of orders / 5 chefs placed
uniformly, each drop-off within 3 km of its chef (bikes may ride it), `--couriers` idle bike
couriers placed uniformly, each order with its chef's 12 nearest couriers. Timed per
repetition, one after the other: the straight-line plan, the first round on roads (nothing
cached) and the next round on a model that kept its pair cache (10 % new orders, 25 % of
the couriers moved). Medians of `--reps`.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from dispatch.round import RoundCouriers, RoundInputs, RoundOrder, RoundParams, plan_round
from roads.build import build_roads
from roads.model import RoadTravelModel

LAT0, LNG0 = 12.9716, 77.5946
M_PER_DEG = 111_195.0
FloatArray = npt.NDArray[np.float64]


def write_grid_osm(path: Path, size_km: float, spacing_m: float) -> int:
    """A square grid city as OSM XML: one node per crossing, one way per street line; every
    tenth line is `primary`, the others `residential`. Returns the number of nodes."""
    n = int(size_km * 1000 / spacing_m) + 1
    half = (n - 1) * spacing_m / 2
    dlat = spacing_m / M_PER_DEG
    dlng = spacing_m / (M_PER_DEG * math.cos(math.radians(LAT0)))
    lat0 = LAT0 - half / M_PER_DEG
    lng0 = LNG0 - half / (M_PER_DEG * math.cos(math.radians(LAT0)))

    def node(i: int, j: int) -> int:
        return i * n + j + 1

    with path.open("w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<osm version="0.6" generator="homechef bench.roads_grid">\n')
        for i in range(n):
            for j in range(n):
                f.write(f'<node id="{node(i, j)}" version="1" lat="{lat0 + i * dlat:.7f}" '
                        f'lon="{lng0 + j * dlng:.7f}"/>\n')
        way = 0
        for line in range(n):
            kind = "primary" if line % 10 == 0 else "residential"
            for ids in ([node(line, j) for j in range(n)], [node(i, line) for i in range(n)]):
                way += 1
                refs = "".join(f'<nd ref="{r}"/>' for r in ids)
                f.write(f'<way id="{way}" version="1">{refs}'
                        f'<tag k="highway" v="{kind}"/></way>\n')
        f.write("</osm>\n")
    return n * n


class _GridCity:
    """Chefs, orders and couriers of one seeded round on the grid, changeable for the next."""

    def __init__(self, size_km: float, n_orders: int, n_couriers: int, seed: int) -> None:
        self.rng = rng = np.random.default_rng(seed)
        self.half_m = size_km * 1000 / 2 * 0.95  # stay off the city's edge
        self.kitchens = self._uniform(max(1, n_orders // 5))
        self.chef_of = rng.integers(len(self.kitchens), size=n_orders)
        self.drops = self._near(self.kitchens[self.chef_of], 3000.0)
        self.couriers = self._uniform(n_couriers)
        self.order_ids = [f"o{i:05d}" for i in range(n_orders)]

    def _uniform(self, k: int) -> FloatArray:
        return self.rng.uniform(-self.half_m, self.half_m, (k, 2))

    def _near(self, centres: FloatArray, radius_m: float) -> FloatArray:
        r = radius_m * np.sqrt(self.rng.random(len(centres)))
        a = self.rng.uniform(0, 2 * np.pi, len(centres))
        out = centres + np.column_stack([r * np.cos(a), r * np.sin(a)])
        return np.clip(out, -self.half_m, self.half_m)

    def next_round(self, new_orders: float, moved: float) -> None:
        k = int(len(self.chef_of) * new_orders)
        chefs = self.rng.integers(len(self.kitchens), size=k)
        self.chef_of = np.concatenate([self.chef_of[k:], chefs])
        self.drops = np.concatenate([self.drops[k:], self._near(self.kitchens[chefs], 3000.0)])
        self.order_ids = self.order_ids[k:] + [f"n{len(self.order_ids) + i:05d}"
                                               for i in range(k)]
        who = self.rng.choice(len(self.couriers), int(len(self.couriers) * moved),
                              replace=False)
        self.couriers = self.couriers.copy()
        self.couriers[who] = self._uniform(len(who))

    def inputs(self) -> RoundInputs:
        kx = M_PER_DEG * math.cos(math.radians(LAT0))

        def lat(xy: FloatArray) -> FloatArray:
            return np.asarray(LAT0 + xy[:, 1] / M_PER_DEG)

        def lng(xy: FloatArray) -> FloatArray:
            return np.asarray(LNG0 + xy[:, 0] / kx)

        now_ms = 1_800_000_000_000
        chefs = self.kitchens[self.chef_of]
        idle = cKDTree(self.couriers).query(chefs, k=12)[1].astype(np.int64)
        orders = [RoundOrder(order_id=oid, chef=f"k{c}", pickup_lat=float(pa),
                             pickup_lng=float(pg), dropoff_lat=float(da), dropoff_lng=float(dg),
                             ready_ms=now_ms + 300_000, promised_ms=now_ms + 2_700_000)
                  for oid, c, pa, pg, da, dg in zip(
                      self.order_ids, self.chef_of.tolist(), lat(chefs).tolist(),
                      lng(chefs).tolist(), lat(self.drops).tolist(), lng(self.drops).tolist(),
                      strict=True)]
        couriers = RoundCouriers(ids=[f"c{j:05d}" for j in range(len(self.couriers))],
                                 lat=lat(self.couriers), lng=lng(self.couriers),
                                 vehicle=["bike"] * len(self.couriers))
        return RoundInputs(orders=orders, couriers=couriers, idle=idle, now_ms=now_ms)


def _time_s(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-km", type=float, default=40.0)
    parser.add_argument("--spacing-m", type=float, default=200.0)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--couriers", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        source = Path(tmp) / "grid.osm"
        t0 = time.perf_counter()
        nodes = write_grid_osm(source, args.size_km, args.spacing_m)
        t1 = time.perf_counter()
        build_roads(source, Path(tmp) / "roads", profiles=["car", "bicycle"], algorithm="mld")
        print(f"grid {args.size_km:g} x {args.size_km:g} km, streets every {args.spacing_m:g} m: "
              f"{nodes:,} crossings ({source.stat().st_size / 1e6:.0f} MB of OSM XML in "
              f"{t1 - t0:.1f} s), built (car + bicycle, MLD) in {time.perf_counter() - t1:.1f} s")
        uncached = RoadTravelModel.open(Path(tmp) / "roads", cache_pairs=0)
        cached = RoadTravelModel.open(Path(tmp) / "roads")
        city = _GridCity(args.size_km, args.orders, args.couriers, args.seed)
        inputs = city.inputs()
        straight_p, road_p = RoundParams(), RoundParams(travel=uncached, pairs=uncached)
        warm_p = RoundParams(travel=cached, pairs=cached)
        plans = {"straight-line": plan_round(inputs, straight_p),
                 "roads": plan_round(inputs, road_p)}
        times: dict[str, list[float]] = {"straight-line": [], "roads, first round": [],
                                         "roads, next round (cached)": []}
        for rep in range(args.reps):
            times["straight-line"].append(_time_s(functools.partial(plan_round, inputs,
                                                                    straight_p)))
            times["roads, first round"].append(_time_s(functools.partial(plan_round, inputs,
                                                                         road_p)))
            cached.clear_cache()
            nxt = _GridCity(args.size_km, args.orders, args.couriers, args.seed)
            plan_round(nxt.inputs(), warm_p)
            nxt.next_round(0.1, 0.25)
            times["roads, next round (cached)"].append(
                _time_s(functools.partial(plan_round, nxt.inputs(), warm_p)))
            print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1] * 1000:,.0f} ms"
                                                 for k, v in times.items()))
        uncached.close()
        cached.close()

    base = statistics.median(times["straight-line"])
    print(f"\nplan_round, {args.orders:,} orders x 12 of {args.couriers:,} couriers "
          f"(median of {args.reps}):")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<28} {med * 1000:>9,.0f} ms   x{med / base:,.1f}")
    for name, plan in plans.items():
        print(f"  {name}: {len(plan.offers):,} of {args.orders:,} orders offered")


if __name__ == "__main__":
    main()
