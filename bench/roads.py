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
  (each order's 12 nearest couriers of a pool of 5 x N on the same points), bike;
- `route`: `RoadTravelModel.route` with its GeoJSON geometry, per leg (haversine: one
  `travel_s`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from dispatch.costs import HaversinePairTravel, vehicle_code
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
    chefs = rng.choice(len(pts), n_orders)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract", type=Path, default=SAMPLE_EXTRACT)
    parser.add_argument("--roads", type=Path, default=None, help="a built road folder")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
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
        models = {read_manifest(f).algorithm: RoadTravelModel.open(f) for f in folders}
        first = next(iter(models.values()))
        pts = _on_road_points(first, 1200, args.seed)
        straight = HaversineTravelModel()
        columns: dict[str, dict[str, float]] = {
            "haversine": {k: _median_s(fn, args.reps) for k, fn in _shapes(
                straight, HaversinePairTravel(straight), pts, args.orders, args.seed).items()}}
        for algorithm, model in models.items():
            columns[f"roads {algorithm}"] = {
                k: _median_s(fn, args.reps)
                for k, fn in _shapes(model, model, pts, args.orders, args.seed).items()}
            model.close()

    names = list(columns)
    print(f"\n{args.extract.name}: {len(pts)} on-road points, seed {args.seed}, "
          f"median of {args.reps}")
    print(f"{'shape':<26}" + "".join(f"{n:>16}" for n in names))
    for shape in columns["haversine"]:
        row = [columns[n][shape] * 1000 for n in names]
        print(f"{shape:<26}" + "".join(f"{v:>13.2f} ms" for v in row))
    for n in names[1:]:
        ratios = ", ".join(f"{s}: x{columns[n][s] / columns['haversine'][s]:,.0f}"
                           for s in columns["haversine"])
        print(f"{n} / haversine: {ratios}")


if __name__ == "__main__":
    main()
