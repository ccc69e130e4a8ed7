"""`RoadTravelModel` on the Monaco extract: road times where the straight line is wrong
(a harbour, a one-way street), snapping, the unreachable, and the forms consumers use."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from dispatch.costs import VEHICLES, vehicle_code
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel, Vehicle
from roads.manifest import RoadsError
from roads.model import RoadTravelModel
from tests.conftest import BuiltRoads
from tests.monaco import (
    CHARLES_III_A,
    CHARLES_III_B,
    FAR_OUT,
    HARBOUR_NORTH,
    HARBOUR_SOUTH,
    IN_THE_SEA,
    SAME_SIDE,
)

STRAIGHT = HaversineTravelModel()


def test_the_harbour_is_ridden_round_not_across(road_model: RoadTravelModel) -> None:
    """289 m across Port Hercule's mouth: the straight-line model says ~1.5 min by bike, the
    quays take over 10; a farther point on the same side is nearer by road."""
    across = road_model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    straight = STRAIGHT.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert straight < 100
    assert across > 600
    same_side = road_model.travel_s(*SAME_SIDE, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert same_side < across / 2
    assert haversine_m(*SAME_SIDE, *HARBOUR_SOUTH) > haversine_m(*HARBOUR_NORTH, *HARBOUR_SOUTH)


def test_one_way_halves_make_times_asymmetric(road_model: RoadTravelModel) -> None:
    """Boulevard Charles III by car: A -> B goes round (>= 2x the way back); the
    straight-line model is symmetric."""
    there = road_model.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.CAR)
    back = road_model.travel_s(*CHARLES_III_B, *CHARLES_III_A, Vehicle.CAR)
    assert there >= 2 * back
    assert STRAIGHT.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.CAR) == pytest.approx(
        STRAIGHT.travel_s(*CHARLES_III_B, *CHARLES_III_A, Vehicle.CAR))


def test_scooters_ride_the_car_network_times_their_factor(
        monaco_roads: BuiltRoads, road_model: RoadTravelModel) -> None:
    """Road time x ROADS_SCOOTER_FACTOR; the walks to and from the road are not scaled."""
    slower = RoadTravelModel.open(monaco_roads.directory, scooter_factor=1.5)
    car = road_model.route(*CHARLES_III_A, *CHARLES_III_B, Vehicle.CAR)
    assert car is not None
    assert road_model.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.SCOOTER) == (
        car.duration_s)
    (lng0, lat0), (lng1, lat1) = car.coordinates[1], car.coordinates[-2]  # snapped ends
    walk_s = (haversine_m(*CHARLES_III_A, lat0, lng0)
              + haversine_m(lat1, lng1, *CHARLES_III_B)) / road_model.snap_speed_mps
    road_s = car.duration_s - walk_s
    assert road_s > 30
    assert slower.travel_s(*CHARLES_III_A, *CHARLES_III_B, Vehicle.SCOOTER) == pytest.approx(
        road_s * 1.5 + walk_s, abs=0.05)


def test_matrix_pairs_and_routes_agree(road_model: RoadTravelModel) -> None:
    """Table (matrices, pairs) and Route (single legs) give one answer for the same leg."""
    pts = np.array([HARBOUR_SOUTH, HARBOUR_NORTH, SAME_SIDE, CHARLES_III_A, CHARLES_III_B])
    lat, lng = pts[:, 0], pts[:, 1]
    for vehicle in (Vehicle.BIKE, Vehicle.CAR):
        matrix = road_model.travel_matrix_s(lat, lng, lat, lng, vehicle)
        assert np.all(np.diag(matrix) == 0)
        for i in range(len(pts)):
            for j in range(len(pts)):
                assert matrix[i, j] == pytest.approx(
                    road_model.travel_s(lat[i], lng[i], lat[j], lng[j], vehicle), abs=0.2)
    i, j = np.meshgrid(np.arange(len(pts)), np.arange(len(pts)), indexing="ij")
    i, j = i.ravel(), j.ravel()
    codes = np.where(np.arange(len(i)) % 2 == 0, vehicle_code(Vehicle.BIKE),
                     vehicle_code(Vehicle.CAR)).astype(np.int64)
    pairs = road_model.travel_pairs_s(lat[i], lng[i], lat[j], lng[j], codes)
    for k in range(len(i)):
        expected = road_model.travel_matrix_s(lat[[i[k]]], lng[[i[k]]], lat[[j[k]]],
                                              lng[[j[k]]], VEHICLES[codes[k]])[0, 0]
        assert pairs[k] == pytest.approx(expected)


def test_many_pairs_are_asked_in_blocks_with_the_same_answers(
        road_model: RoadTravelModel) -> None:
    """Scattered pairs (each chef with couriers of its own) take the per-destination path,
    chefs to many drop-offs the per-source one; samples of them match single legs."""
    rng = np.random.default_rng(7)
    chefs = rng.uniform([43.731, 7.415], [43.745, 7.43], size=(40, 2))
    couriers = rng.uniform([43.731, 7.415], [43.745, 7.43], size=(40 * 6, 2))
    la, ga = couriers[:, 0], couriers[:, 1]
    lb, gb = np.repeat(chefs[:, 0], 6), np.repeat(chefs[:, 1], 6)
    got = road_model.travel_pairs_s(la, ga, lb, gb, np.zeros(len(la), np.int64))
    assert got.shape == (240,)
    for k in rng.choice(240, 12, replace=False).tolist():
        assert got[k] == pytest.approx(
            road_model.travel_s(la[k], ga[k], lb[k], gb[k], VEHICLES[0]), abs=0.2)
    # Fewer sources than destinations (each chef to its orders' drop-offs): per source.
    drops = rng.uniform([43.731, 7.415], [43.745, 7.43], size=(240, 2))
    out = road_model.travel_pairs_s(lb, gb, drops[:, 0], drops[:, 1],
                                    np.full(240, vehicle_code(Vehicle.CAR), np.int64))
    for k in rng.choice(240, 12, replace=False).tolist():
        assert out[k] == pytest.approx(
            road_model.travel_s(lb[k], gb[k], drops[k, 0], drops[k, 1], Vehicle.CAR), abs=0.2)


def test_pairs_asked_again_come_from_the_cache(monaco_roads: BuiltRoads) -> None:
    """Dispatch asks the same pairs round after round: the second time they are answered
    without OSRM (here the engines are gone), the cache keeps at most `cache_pairs` per
    profile, and `clear_cache` forgets them."""
    model = RoadTravelModel.open(monaco_roads.directory, cache_pairs=4)
    pts = np.array([HARBOUR_NORTH, SAME_SIDE, CHARLES_III_A])
    la, ga = pts[:, 0], pts[:, 1]
    lb, gb = np.full(3, HARBOUR_SOUTH[0]), np.full(3, HARBOUR_SOUTH[1])
    bike = np.zeros(3, np.int64)
    first = model.travel_pairs_s(la, ga, lb, gb, bike)
    assert np.isfinite(first).all()
    assert first[0] == pytest.approx(model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH,
                                                    Vehicle.BIKE), abs=0.2)
    engines = dict(model.engines)
    model.engines.clear()
    np.testing.assert_array_equal(model.travel_pairs_s(la, ga, lb, gb, bike), first)
    assert np.isinf(model.travel_pairs_s(lb, gb, la, ga, bike)).all()  # never asked
    model.engines.update(engines)
    model.travel_pairs_s(lb, gb, la, ga, bike)  # 3 more pairs: the oldest go
    assert model.cached_pairs() <= 4
    model.clear_cache()
    model.engines.clear()
    assert np.isinf(model.travel_pairs_s(la, ga, lb, gb, bike)).all()


def test_a_point_off_the_road_walks_to_it(road_model: RoadTravelModel) -> None:
    """150 m out at sea: the ride from the nearest road plus the snap at walking pace."""
    leg = road_model.route(*IN_THE_SEA, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert leg is not None
    start_lng, start_lat = leg.coordinates[1]  # the snapped start (the first is the input)
    snap_m = haversine_m(*IN_THE_SEA, start_lat, start_lng)
    assert 100 < snap_m < 200
    from_road = road_model.travel_s(start_lat, start_lng, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert leg.duration_s == pytest.approx(from_road + snap_m / road_model.snap_speed_mps,
                                           abs=1.0)


def test_off_the_map_and_invalid_points_are_infinite_never_an_error(
        road_model: RoadTravelModel) -> None:
    assert road_model.travel_s(*FAR_OUT, *HARBOUR_SOUTH, Vehicle.BIKE) == math.inf
    assert road_model.route(*HARBOUR_SOUTH, *FAR_OUT, Vehicle.CAR) is None
    lat = np.array([HARBOUR_SOUTH[0], FAR_OUT[0], math.nan, 95.0])
    lng = np.array([HARBOUR_SOUTH[1], FAR_OUT[1], 7.42, 7.42])
    matrix = road_model.travel_matrix_s(lat, lng, lat, lng, Vehicle.BIKE)
    assert matrix[0, 0] == 0
    assert np.isinf(matrix[1:, :]).all()
    assert np.isinf(matrix[:, 1:]).all()
    pairs = road_model.travel_pairs_s(lat, lng, lat[::-1], lng[::-1], np.zeros(4, np.int64))
    assert np.isinf(pairs).all()
    assert road_model.travel_s(math.nan, 7.42, *HARBOUR_SOUTH, Vehicle.BIKE) == math.inf


def test_the_lower_bound_holds(road_model: RoadTravelModel) -> None:
    """Dispatch's candidate search relies on it: never above the road time."""
    rng = np.random.default_rng(3)
    pts = rng.uniform([43.72, 7.40], [43.76, 7.45], size=(60, 2))
    for code in range(len(VEHICLES)):
        t = road_model.travel_matrix_s(pts[:, 0], pts[:, 1], pts[:, 0], pts[:, 1],
                                       VEHICLES[code])
        d = np.array([[haversine_m(*a, *b) for b in pts] for a in pts])
        bound = road_model.travel_lower_bound_s(d, np.full(d.shape, code, np.int64))
        finite = np.isfinite(t)
        assert finite.sum() > 1000
        assert np.all(bound[finite] <= t[finite] + 1e-9)


def test_a_folder_that_is_not_road_data_is_refused(tmp_path: Path,
                                                   monaco_roads: BuiltRoads) -> None:
    with pytest.raises(RoadsError, match=r"no manifest\.json"):
        RoadTravelModel.open(tmp_path)
    manifest = (monaco_roads.directory / "manifest.json").read_text()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "manifest.json").write_text(manifest.replace('"car": "car/monaco.osrm",', ""))
    (partial / "bicycle").symlink_to(monaco_roads.directory / "bicycle")
    with pytest.raises(RoadsError, match="has no car profile"):
        RoadTravelModel.open(partial)


def test_a_folder_with_damaged_data_is_refused(tmp_path: Path,
                                               monaco_roads: BuiltRoads) -> None:
    """A data file missing (a copy cut short): the engine's own reason, as a RoadsError."""
    copy = tmp_path / "copy"
    shutil.copytree(monaco_roads.directory, copy)
    (copy / "car" / "monaco.osrm.mldgr").unlink()
    with pytest.raises(RoadsError, match="cannot load the car road data"):
        RoadTravelModel.open(copy)


def _to_polyline_m(lat: float, lng: float, line: list[tuple[float, float]]) -> float:
    """Metres from a point to a (lng, lat) polyline (local flat projection)."""
    kx, ky = 111_195.0 * math.cos(math.radians(lat)), 111_195.0
    p = np.array([lng * kx, lat * ky])
    pts = np.array([(x * kx, y * ky) for x, y in line])
    a, b = pts[:-1], pts[1:]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0, 1)
    return float(np.min(np.hypot(*(a + ab * t[:, None] - p).T)))


def test_a_noisy_trace_is_matched_onto_the_roads_it_rode(road_model: RoadTravelModel) -> None:
    """Fixes every 4 s along the quays round the harbour, 8 m of GPS noise: the matched
    positions lie on the matched roads and mostly on that route (nearer than the raw
    fixes), the legs add up to its length and to the time ridden; a trace out at sea
    matches nothing."""
    route = road_model.route(*HARBOUR_SOUTH, *HARBOUR_NORTH, Vehicle.BIKE)
    assert route is not None
    line = np.array(route.coordinates)
    kx = 111_195.0 * math.cos(math.radians(HARBOUR_SOUTH[0]))
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(line[:, 0]) * kx,
                                                    np.diff(line[:, 1]) * 111_195.0))])
    ts = np.arange(0.0, route.duration_s, 4.0)
    along = ts * cum[-1] / route.duration_s
    rng = np.random.default_rng(5)
    lat = np.interp(along, cum, line[:, 1]) + rng.normal(0, 8 / 111_195.0, len(ts))
    lng = np.interp(along, cum, line[:, 0]) + rng.normal(0, 8 / kx, len(ts))
    matched = road_model.match(lat, lng, 1_750_000_000 + ts, Vehicle.BIKE)
    assert matched is not None
    assert matched.confidence > 0
    kept = [k for k, p in enumerate(matched.snapped) if p is not None]
    assert len(kept) > len(ts) / 3
    off_snapped = [_to_polyline_m(*matched.snapped[k], route.coordinates)  # type: ignore[misc]
                   for k in kept]
    off_raw = [_to_polyline_m(lat[k], lng[k], route.coordinates) for k in kept]
    # Most land on the route itself (a few on a parallel quay); all on the matched roads.
    assert np.median(off_snapped) < 1 < np.median(off_raw)
    assert np.mean(off_snapped) < np.mean(off_raw)
    assert max(_to_polyline_m(*matched.snapped[k], matched.coordinates)  # type: ignore[misc]
               for k in kept) < 1
    ridden_m = sum(leg.distance_m for leg in matched.legs)
    assert 0.8 * route.distance_m < ridden_m < 1.2 * route.distance_m
    assert sum(leg.observed_s for leg in matched.legs) == pytest.approx(ts[kept[-1]] - ts[kept[0]])
    assert all(len(leg.nodes) >= 2 for leg in matched.legs if leg.distance_m > 0)
    at_sea = road_model.match(np.full(5, FAR_OUT[0]), np.full(5, FAR_OUT[1]),
                              np.arange(5.0) * 4, Vehicle.BIKE)
    assert at_sea is None


def test_nearest_puts_a_point_on_the_road_or_says_off_the_map(
        road_model: RoadTravelModel) -> None:
    """Nearest answers the road position ~150 m from a point at sea (the same one Route
    snaps to), a point on a road stays where it is, and off the map or invalid is None."""
    at_sea = road_model.nearest(*IN_THE_SEA, Vehicle.BIKE)
    assert at_sea is not None
    lat, lng, snap_m = at_sea
    assert 100 < snap_m < 200
    assert haversine_m(*IN_THE_SEA, lat, lng) == pytest.approx(snap_m, abs=1.0)
    on_road = road_model.nearest(*HARBOUR_SOUTH, Vehicle.CAR)
    assert on_road is not None
    assert on_road[2] < 15
    assert road_model.nearest(*FAR_OUT, Vehicle.BIKE) is None
    assert road_model.nearest(math.nan, 7.42, Vehicle.BIKE) is None
