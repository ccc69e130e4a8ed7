"""The demo city is a pure function of its seed; couriers move at their vehicle's speed."""

from __future__ import annotations

import asyncio
import itertools
import math
import random

import msgspec
import pytest

from api.simulator.city import CityConfig, OrderStream, Point, build_city, random_point
from api.simulator.movement import plan_leg, road_leg
from geo.distance import haversine_m
from geo.fixes import MAX_SPEED_MPS
from geo.travel import HaversineTravelModel, Vehicle


def test_same_seed_same_city_and_order_stream() -> None:
    """Two builds with one seed are identical (city and the first 50 orders); another seed
    gives another city."""
    config = CityConfig(seed=7, chefs=5, couriers=20, customers=30)
    a, b = build_city(config), build_city(config)
    assert msgspec.json.encode(a) == msgspec.json.encode(b)
    sa, sb = OrderStream(a, 30, 7), OrderStream(b, 30, 7)
    assert [sa.next() for _ in range(50)] == [sb.next() for _ in range(50)]
    other = build_city(msgspec.structs.replace(config, seed=8))
    assert msgspec.json.encode(other) != msgspec.json.encode(a)


def test_city_stays_inside_its_disk_and_customers_use_their_nearest_chefs() -> None:
    """Every place lies within the radius; each customer's chefs are its nearest, nearest
    first; orders reference real dishes."""
    config = CityConfig(seed=3, radius_m=800, chefs=6, couriers=15, customers=25,
                        chefs_per_customer=2)
    city = build_city(config)
    c = config.center
    places = ([ch.at for ch in city.chefs] + [co.start for co in city.couriers]
              + [cu.home for cu in city.customers])
    assert all(haversine_m(c.lat, c.lng, p.lat, p.lng) <= 800 + 1e-6 for p in places)
    for cu in city.customers:
        dists = sorted((haversine_m(cu.home.lat, cu.home.lng, ch.at.lat, ch.at.lng), ch.index)
                       for ch in city.chefs)
        assert cu.chefs == tuple(i for _, i in dists[:2])
    stream = OrderStream(city, 60, 3)
    times = []
    for _ in range(200):
        o = stream.next()
        assert o is not None
        assert o.chef in city.customers[o.customer].chefs
        assert all(0 <= d < len(city.chefs[o.chef].dishes) and q >= 1 for d, q in o.lines)
        times.append(o.at_s)
    assert times == sorted(times)
    assert 150 < times[-1] < 260  # 200 arrivals at 1/s: about 200 s
    assert OrderStream(city, 0, 3).next() is None


def test_bad_city_sizes_are_refused() -> None:
    """No courier / negative rates are configuration errors, not silent empty days."""
    with pytest.raises(ValueError, match="at least one"):
        build_city(CityConfig(couriers=0))
    with pytest.raises(ValueError, match="orders_per_min"):
        OrderStream(build_city(CityConfig()), -1, 0)


@pytest.mark.parametrize("vehicle", list(Vehicle))
def test_legs_never_exceed_the_vehicle_speed_or_the_jump_rule(vehicle: Vehicle) -> None:
    """Sampling a leg every 2-4 s: ground speed between samples <= the vehicle's speed
    (< 70 m/s), arrival exactly at the model's travel time, ends reached."""
    model = HaversineTravelModel()
    rng = random.Random(11)
    center = Point(12.9716, 77.5946)
    for _ in range(20):
        a, b = random_point(rng, center, 3000), random_point(rng, center, 3000)
        leg = plan_leg(a, b, vehicle, model)
        assert leg.duration_s == pytest.approx(model.travel_s(a.lat, a.lng, b.lat, b.lng,
                                                              vehicle))
        t, prev = 0.0, leg.position(0.0)
        assert prev == a
        while t < leg.duration_s + 4:
            dt = rng.uniform(2.0, 4.0)
            t += dt
            p = leg.position(t)
            speed = haversine_m(prev.lat, prev.lng, p.lat, p.lng) / dt
            assert speed <= model.speeds_mps[vehicle] + 1e-9
            assert speed < MAX_SPEED_MPS
            prev = p
        assert prev == b


def test_speed_factor_is_bounded_by_the_jump_rule() -> None:
    """Even the fastest test setting (8x a scooter) stays under ingest's 70 m/s."""
    model = HaversineTravelModel()
    a, b = Point(12.97, 77.59), Point(12.99, 77.61)
    leg = plan_leg(a, b, Vehicle.SCOOTER, model, speed_factor=8)
    assert leg.distance_m / leg.duration_s < MAX_SPEED_MPS
    with pytest.raises(ValueError, match="speed_factor"):
        plan_leg(a, b, Vehicle.BIKE, model, speed_factor=0)


def test_idle_cruising_stays_in_the_city_at_vehicle_speed() -> None:
    """The demo's idle couriers cruise to spots inside the city disk, at the vehicle's speed
    (never over 70 m/s), starting from wherever they are."""
    from api.simulator.agents import Behaviour, CourierAgent
    from api.simulator.city import CourierSpec
    from api.simulator.world import World

    center = Point(12.9716, 77.5946)
    model = HaversineTravelModel()
    agent = CourierAgent(CourierSpec(index=0, vehicle=Vehicle.BIKE, start=center),
                         None, None, "ws://unused", World(),  # type: ignore[arg-type]
                         Behaviour(wander_m=400), seed=1, model=model, area=(center, 500.0))
    for _ in range(50):
        before = agent.where()
        asyncio.run(agent._wander())
        leg = agent.leg
        assert leg is not None
        assert leg.start == before
        assert haversine_m(center.lat, center.lng, leg.end.lat, leg.end.lng) <= 500 + 1e-6
        if leg.duration_s > 0:
            assert leg.distance_m / leg.duration_s <= model.speeds_mps[Vehicle.BIKE]
        agent.leg_started -= leg.duration_s  # arrive
        assert agent.where() == leg.end


def test_a_road_leg_follows_the_route_geometry_at_constant_speed() -> None:
    """A leg from a GET /routing/route answer: an L-shaped way (300 m east, then 400 m
    north) ridden in 100 s. Halfway in time it is halfway along the way (at the corner
    plus 50 m north), never on the straight line; the heading turns at the corner; it ends
    at the door."""
    m_per_deg_lat = 111_195.0
    a = Point(43.73, 7.42)
    corner = Point(a.lat, a.lng + 300 / (m_per_deg_lat * math.cos(math.radians(a.lat))))
    b = Point(corner.lat + 400 / m_per_deg_lat, corner.lng)
    route = {"duration_s": 100.0, "distance_m": 700.0,
             "geometry": {"type": "LineString",
                          "coordinates": [[p.lng, p.lat] for p in (a, corner, b)]}}
    leg = road_leg(a, b, route)
    assert leg.duration_s == 100.0
    assert leg.distance_m == pytest.approx(700, rel=1e-3)
    assert leg.road_speed_mps == pytest.approx(7.0)
    assert leg.position(0) == a
    assert leg.position(100) == b
    mid = leg.position(50)  # 350 m along: 50 m north of the corner
    assert haversine_m(corner.lat, corner.lng, mid.lat, mid.lng) == pytest.approx(50, abs=0.5)
    assert mid.lng == pytest.approx(corner.lng)
    assert leg.heading_deg(10) == pytest.approx(90, abs=0.5)  # east first
    assert leg.heading_deg(90) == pytest.approx(0, abs=0.5)  # then north
    assert road_leg(a, b, route, speed_factor=4).duration_s == 25.0


def _l_route(seconds: float) -> tuple[Point, Point, Point, dict[str, object]]:
    """An L-shaped way: 300 m east, a right-angle corner, 400 m north."""
    m_per_deg_lat = 111_195.0
    a = Point(43.73, 7.42)
    corner = Point(a.lat, a.lng + 300 / (m_per_deg_lat * math.cos(math.radians(a.lat))))
    b = Point(corner.lat + 400 / m_per_deg_lat, corner.lng)
    return a, corner, b, {"duration_s": seconds, "distance_m": 700.0,
                          "geometry": {"type": "LineString",
                                       "coordinates": [[p.lng, p.lat] for p in (a, corner, b)]}}


def test_a_ridden_road_leg_stops_at_junctions_and_keeps_near_the_routes_time() -> None:
    """Ridden with noise, the L-shaped way's corner is its one junction. Over many seeds:
    every ride lasts within the pace range of the route's 100 s, some stop at the corner
    (ground speed 0 there for seconds), none stops anywhere else, the riding speed never
    exceeds the route's average / (1 - max stop share) / the slowest pace, and the position
    moves forward along the way (never backwards)."""
    from api.simulator.movement import RideNoise, junctions_m

    a, corner, b, route = _l_route(100.0)
    noise = RideNoise()
    assert junctions_m((a, corner, b), noise.turn_deg, noise.junction_gap_m) == [
        pytest.approx(300, abs=0.5)]
    stopped_at_corner = 0
    for seed in range(200):
        leg = road_leg(a, b, route, rng=random.Random(seed), noise=noise)
        assert 85 - 1e-6 <= leg.duration_s <= 120 + 1e-6
        assert leg.position(0) == a
        assert leg.position(leg.duration_s) == b
        stops = [(t0, t1, a0) for (t0, a0), (t1, a1) in itertools.pairwise(leg.schedule)
                 if a1 == a0 and t1 > t0]
        for _, _, at in stops:
            assert at == pytest.approx(300, abs=0.5)
        if stops:
            stopped_at_corner += 1
            t0, t1, _ = stops[0]
            here = leg.position((t0 + t1) / 2)
            assert haversine_m(here.lat, here.lng, corner.lat, corner.lng) < 0.5
            assert leg.speed_mps((t0 + t1) / 2) == 0
        top = 7.0 / (1 - noise.max_stop_share) / noise.pace_range[0]
        alongs = [leg.along_m(t / 4) for t in range(int(leg.duration_s * 4) + 1)]
        assert alongs == sorted(alongs)
        assert all(leg.speed_mps(t / 4) <= top + 1e-6 for t in range(len(alongs)))
    assert 40 < stopped_at_corner < 110  # ~35 % of 200


def test_gps_jitter_stays_within_the_accuracy_and_averages_out() -> None:
    """Jittered fixes lie within the claimed accuracy of the true point, spread over a
    few metres, and centred on it."""
    from api.simulator.movement import gps_jitter

    rng = random.Random(3)
    p = Point(43.73, 7.42)
    fixes = [gps_jitter(p, rng, 8.0) for _ in range(2000)]
    errors = [haversine_m(p.lat, p.lng, f.lat, f.lng) for f in fixes]
    assert max(errors) <= 8.0 + 1e-6
    assert 3.0 < sum(errors) / len(errors) < 6.0
    assert abs(sum(f.lat for f in fixes) / len(fixes) - p.lat) * 111_320 < 0.5
