"""Live traffic learnt from the fleet, on the Monaco demo city: ETA error on a slowed corridor
before and after learning (`roads.traffic` + `roads.live`), same trips, same run.

    python -m bench.traffic                      # the shipped Monaco extract, built here
    python -m bench.traffic --roads DIR --slow 0.3 --train 400

The world: couriers ride each road segment at OSRM's own speed for it (the built data's
per-segment durations) times their pace on the day (~N(1, 0.08)), except inside the
corridor (a 250 m disk over Port Hercule's quays), where they ride at `--slow` of it: a
jam the road data does not know. Car profile (cars and scooters ride it).

1. Test trips: seeded origin-destination pairs on the city's streets (the demo city's
   placement), half whose route crosses the corridor and half that does not. ETA = the
   model's route duration; actual = that route ridden in the world. Error = |ETA - actual|.
2. Learning: `--train` rides between other seeded pairs, starting within `--window-s`
   (30 min), each along the model's route in the world, with a fix every 2-4 s and 8 m of
   GPS noise. Each trace is matched (OSRM
   Match) and its legs learnt (`TrafficLearner`, min 3 samples).
3. One re-customisation with the learnt speeds (`Recustomiser`), swapped into the model.
4. The test trips again: the ETA is the learnt model's route (which may go round the jam),
   ridden in the same world.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from api.simulator.cities import CITIES, road_snapper
from api.simulator.city import CityConfig, Point, build_city
from api.simulator.movement import gps_jitter
from geo.distance import haversine_m
from geo.travel import Vehicle
from roads.build import SAMPLE_EXTRACT, build_roads
from roads.live import Recustomiser
from roads.model import RoadTravelModel
from roads.traffic import TrafficConfig, TrafficLearner

CORRIDOR = (Point(43.7352, 7.4236), 250.0)
"""Port Hercule's quays: the slowed corridor (centre, radius m)."""


class Ride:
    """One route ridden in the world: per segment its nodes, metres and the world's
    seconds; the model's ETA for it."""

    def __init__(self, eta_s: float, path: list[Point], seg_m: list[float],
                 seg_s: list[float], through: bool, turns_s: float) -> None:
        self.eta_s = eta_s
        self.turns_s = turns_s
        self.path = path
        self.seg_m = seg_m
        self.seg_s = seg_s
        self.through = through

    @property
    def actual_s(self) -> float:
        return sum(self.seg_s) + self.turns_s

    def fixes(self, rng: random.Random, t0: float) -> tuple[list[float], list[float],
                                                           list[float]]:
        """Fixes every 2-4 s along the ride, 8 m of GPS noise: (lat, lng, ts)."""
        cum_t = list(itertools.accumulate(self.seg_s, initial=0.0))
        lat, lng, ts = [], [], []
        t = 0.0
        while t < cum_t[-1]:
            i = min(int(np.searchsorted(cum_t, t, side="right")) - 1, len(self.seg_s) - 1)
            f = 0.0 if self.seg_s[i] <= 0 else (t - cum_t[i]) / self.seg_s[i]
            a, b = self.path[i], self.path[i + 1]
            p = gps_jitter(Point(a.lat + (b.lat - a.lat) * f, a.lng + (b.lng - a.lng) * f),
                           rng, 8.0)
            lat.append(p.lat)
            lng.append(p.lng)
            ts.append(t0 + t)
            t += rng.uniform(2.0, 4.0)
        return lat, lng, ts


class World:
    """The true speeds: the built data's own per segment (`base`), the pace, the jam."""

    def __init__(self, base: Any, slow: float) -> None:
        self.base = base
        self.slow = slow
        self.base_mps: dict[tuple[int, int], float] = {}

    def _route(self, engine: Any, a: Point, b: Point) -> dict[str, Any] | None:
        import osrm

        params = osrm.RouteParameters(
            coordinates=[(a.lng, a.lat), (b.lng, b.lat)], geometries="geojson",
            overview="full", annotations=["nodes", "distance", "duration"],
            generate_hints=False)
        try:
            answer = engine.Route(params)
        except RuntimeError:
            return None
        return answer["routes"][0] if answer["code"] == "Ok" and len(answer["routes"]) else None

    def learn_base(self, a: Point, b: Point) -> None:
        """Record the built data's speed of every segment on the base route a -> b."""
        route = self._route(self.base, a, b)
        if route is None:
            return
        for leg in route["legs"]:
            ann = leg["annotation"]
            for (n1, n2), d, s in zip(itertools.pairwise(ann["nodes"]), ann["distance"],
                                      ann["duration"], strict=False):
                if s > 0 and d > 0:
                    self.base_mps[(int(n1), int(n2))] = float(d) / float(s)

    def ride(self, engine: Any, a: Point, b: Point, pace: float) -> Ride | None:
        """The route `engine` gives a -> b, ridden in the world."""
        route = self._route(engine, a, b)
        if route is None or len(route["legs"]) != 1:
            return None
        ann = route["legs"][0]["annotation"]
        coords = route["geometry"]["coordinates"]
        if len(coords) != len(ann["nodes"]):
            return None  # snapped mid-segment: geometry and nodes do not line up
        path = [Point(float(lat), float(lng)) for lng, lat in coords]
        known = [self.base_mps.get((int(n1), int(n2)))
                 for n1, n2 in itertools.pairwise(ann["nodes"])]
        fallback = statistics.median([v for v in known if v] or [8.0])
        centre, radius = CORRIDOR
        seg_m, seg_s, through = [], [], False
        for (p, q), mps in zip(itertools.pairwise(path), known, strict=True):
            d = haversine_m(p.lat, p.lng, q.lat, q.lng)
            mid = Point((p.lat + q.lat) / 2, (p.lng + q.lng) / 2)
            jam = haversine_m(mid.lat, mid.lng, centre.lat, centre.lng) <= radius
            through = through or jam
            seg_m.append(d)
            seg_s.append(d / ((mps or fallback) * pace * (self.slow if jam else 1.0)))
        # What the route adds to its segments (turns, lights) is waited in the world too.
        turns_s = max(0.0, float(route["duration"]) - sum(ann["duration"])) * pace
        return Ride(float(route["duration"]), path, seg_m, seg_s, through, turns_s)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--roads", type=Path, default=None,
                    help="a built folder (car profile, MLD); default: build Monaco here")
    ap.add_argument("--slow", type=float, default=0.3,
                    help="couriers ride the corridor at this share of the road's speed")
    ap.add_argument("--train", type=int, default=400, help="rides learnt from")
    ap.add_argument("--trips", type=int, default=100, help="test trips of each kind")
    ap.add_argument("--window-s", type=float, default=1800.0,
                    help="the training rides start within this window (the fleet at once)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
        roads = args.roads
        if roads is None:
            roads = Path(tmp) / "monaco"
            build_roads(SAMPLE_EXTRACT, roads, profiles=("car", "bicycle"))
        run(roads, Path(tmp) / "live", args)


def run(roads: Path, work: Path, args: argparse.Namespace) -> None:
    monaco = CITIES["monaco"]
    with road_snapper(roads, monaco.center) as snap:
        spots = [c.home for c in build_city(CityConfig(
            seed=args.seed, center=monaco.center, radius_m=monaco.radius_m, chefs=1,
            couriers=1, customers=600), snap).customers]
    model = RoadTravelModel.open(roads)
    base = model.engines["car"]
    world = World(base, args.slow)
    rng = random.Random(args.seed)

    def pair() -> tuple[Point, Point]:
        while True:
            a, b = rng.sample(spots, 2)
            if haversine_m(a.lat, a.lng, b.lat, b.lng) > 300:
                return a, b

    trips: list[tuple[Point, Point, float, bool]] = []
    kinds = {True: 0, False: 0}
    while min(kinds.values()) < args.trips:
        a, b = pair()
        world.learn_base(a, b)
        r = world.ride(base, a, b, 1.0)
        if r is None or kinds[r.through] >= args.trips:
            continue
        kinds[r.through] += 1
        trips.append((a, b, min(1.2, max(0.85, rng.gauss(1.0, 0.08))), r.through))
    train = [(*pair(), min(1.2, max(0.85, rng.gauss(1.0, 0.08)))) for _ in range(args.train)]
    for a, b, _ in train:
        world.learn_base(a, b)

    def errors(engine: Any) -> dict[bool, list[float]]:
        out: dict[bool, list[float]] = {True: [], False: []}
        for a, b, pace, through in trips:
            r = world.ride(engine, a, b, pace)
            if r is not None:
                out[through].append(r.eta_s - r.actual_s)
        return out

    before = errors(base)
    learner = TrafficLearner(TrafficConfig(min_samples=3))
    fixes = 0
    t0 = time.perf_counter()
    match_s = 0.0
    legs: list[tuple[float, list[int], float, float]] = []
    for a, b, pace in train:  # the fleet rides at the same time: starts over --window-s
        r = world.ride(base, a, b, pace)
        if r is None:
            continue
        lat, lng, ts = r.fixes(rng, rng.uniform(0.0, args.window_s))
        for k in range(0, len(lat), 30):  # batches of ~30 fixes, as a courier's recent ones
            m0 = time.perf_counter()
            matched = model.match(lat[k:k + 31], lng[k:k + 31], ts[k:k + 31], Vehicle.CAR,
                                  accuracy_m=10.0)
            match_s += time.perf_counter() - m0
            fixes += len(lat[k:k + 31])
            legs += [(ts[min(k + 30, len(ts) - 1)], leg.nodes, leg.distance_m, leg.observed_s)
                     for leg in (matched.legs if matched else ())]
    now = 0.0
    for at, nodes, distance_m, observed_s in sorted(legs, key=lambda x: x[0]):
        now = at
        learner.observe(nodes, distance_m, observed_s, now_s=now)
    learn_s = time.perf_counter() - t0
    speeds = learner.speeds(now)
    live = Recustomiser(roads, model.manifest, work_dir=work)
    model.swap_engine("car", live.customise("car", speeds))
    after = errors(model.engines["car"])
    model.close()

    print(f"roads {roads}; corridor {CORRIDOR[1]:.0f} m round ({CORRIDOR[0].lat}, "
          f"{CORRIDOR[0].lng}) ridden at {args.slow:g} x; seed {args.seed}")
    print(f"learnt from {args.train} rides: {fixes} fixes matched in {match_s:.2f} s "
          f"({fixes / match_s:,.0f} fixes/s), {len(learner)} segments seen, {len(speeds)} "
          f"reported (>= 3 samples); learning took {learn_s:.2f} s; re-customise + load "
          f"{live.last_s * 1000:.0f} ms")
    print("| test trips | n | ETA error p50 / p90, before | after | mean ETA - actual, "
          "before | after |")
    print("|---|---|---|---|---|---|")
    for through, label in ((True, "through the corridor"), (False, "elsewhere")):
        b_abs = [abs(e) for e in before[through]]
        a_abs = [abs(e) for e in after[through]]
        print(f"| {label} | {len(b_abs)} | {_pct(b_abs, 50):.0f} s / {_pct(b_abs, 90):.0f} s "
              f"| {_pct(a_abs, 50):.0f} s / {_pct(a_abs, 90):.0f} s "
              f"| {statistics.fmean(before[through]):+.0f} s "
              f"| {statistics.fmean(after[through]):+.0f} s |")


if __name__ == "__main__":
    main()
