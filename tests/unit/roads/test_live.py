"""Live traffic end to end on the Monaco road data: slow rides matched, their speeds learnt,
the data re-customised with the wheel's osrm-customize and swapped into a serving model."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from api.simulator.city import Point
from api.simulator.movement import Leg
from geo.distance import haversine_m
from geo.travel import Vehicle
from roads.live import Recustomiser
from roads.model import RoadTravelModel
from roads.traffic import TrafficConfig, TrafficLearner
from tests.conftest import BuiltRoads
from tests.monaco import CHARLES_III_A, CHARLES_III_B, HARBOUR_NORTH, HARBOUR_SOUTH

CRAWL_MPS = 2.0


def _slow_rides(model: RoadTravelModel, a: tuple[float, float], b: tuple[float, float],
                rides: int) -> TrafficLearner:
    """`rides` couriers crawl a -> b along the car route at CRAWL_MPS with a fix every 4 s;
    each trace is matched and its legs learnt."""
    route = model.route(*a, *b, Vehicle.CAR)
    assert route is not None
    path = tuple(Point(lat, lng) for lng, lat in route.coordinates)
    length_m = sum(haversine_m(p.lat, p.lng, q.lat, q.lng)
                   for p, q in itertools.pairwise(path))
    leg = Leg(start=path[0], end=path[-1], duration_s=length_m / CRAWL_MPS, path=path,
              road_speed_mps=CRAWL_MPS)
    learner = TrafficLearner(TrafficConfig(min_samples=3))
    for ride in range(rides):
        t0 = 1_000.0 * ride
        times = [t0 + t for t in range(0, int(leg.duration_s), 4)]
        points = [leg.position(t - t0) for t in times]
        matched = model.match([p.lat for p in points], [p.lng for p in points], times,
                              Vehicle.CAR, accuracy_m=10)
        assert matched is not None
        for m in matched.legs:
            learner.observe(m.nodes, m.distance_m, m.observed_s, now_s=times[-1])
    return learner


def test_learnt_slow_speeds_are_applied_without_stopping_the_model(
        monaco_roads: BuiltRoads, tmp_path: Path) -> None:
    """Three couriers crawl the harbour quays by car at 2 m/s (7 km/h). The learnt speeds
    are ~7 km/h. After one re-customisation swapped in, the car route between the harbour's
    two sides costs more than before and leaves the quays (a detour through town beats
    crawling: at most the crawl's time), a route elsewhere (Boulevard Charles III) is
    unchanged, and the swap forgot the cached legs. The built data is untouched; a
    generation left by a process that is gone is removed when a Recustomiser starts."""
    model = RoadTravelModel.open(monaco_roads.directory)
    try:
        before = model.route(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.CAR)
        elsewhere = model.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.CAR)
        assert before is not None
        learner = _slow_rides(model, HARBOUR_NORTH, HARBOUR_SOUTH, rides=3)
        speeds = learner.speeds(now_s=3_000)
        assert len(speeds) > 10
        assert all(s.speed_kmh <= 12 for s in speeds)  # ~7 km/h ridden, matching noise
        model.travel_pairs_s([HARBOUR_NORTH[0]], [HARBOUR_NORTH[1]], [HARBOUR_SOUTH[0]],
                             [HARBOUR_SOUTH[1]], [1])
        assert model.cached_pairs() > 0

        built = {f.name: f.stat().st_mtime_ns for f in (monaco_roads.directory / "car").iterdir()}
        live = Recustomiser(monaco_roads.directory, model.manifest, work_dir=tmp_path)
        old = model.swap_engine("car", live.customise("car", speeds))
        assert old is not None
        assert model.cached_pairs() == 0
        after = model.route(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.CAR)
        assert after is not None
        crawl_s = before.distance_m / CRAWL_MPS
        assert before.duration_s + 30 < after.duration_s <= crawl_s
        assert after.distance_m > before.distance_m + 500  # round the jam
        assert model.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.CAR) == pytest.approx(
            elsewhere, abs=1.0)
        assert {f.name: f.stat().st_mtime_ns
                for f in (monaco_roads.directory / "car").iterdir()} == built
        assert [g.name for g in tmp_path.glob("car-*")] == [f"car-{os.getpid()}-000001"]
        (tmp_path / "car-999999999-000007").mkdir()  # a generation of a process gone
        (tmp_path / "car-1-000003").mkdir()  # pid 1 is running
        Recustomiser(monaco_roads.directory, model.manifest, work_dir=tmp_path)
        assert sorted(g.name for g in tmp_path.glob("car-*")) == sorted([
            f"car-{os.getpid()}-000001", "car-1-000003"])
    finally:
        model.close()
