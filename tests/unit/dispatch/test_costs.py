"""Specification of the round's cost model: given a city, a fleet and orders, these costs."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    vehicle_code,
    vehicle_mask,
)
from dispatch.matching import assign_orders
from geo.distance import EARTH_RADIUS_M, haversine_matrix_m
from geo.travel import HaversineTravelModel, Vehicle

LAT, LNG = 12.97, 77.59  # central Bengaluru
M_PER_DEG_LAT = math.radians(1.0) * EARTH_RADIUS_M  # along a meridian
TRAVEL = HaversinePairTravel()
BIKE, SCOOTER, CAR = (vehicle_code(v) for v in (Vehicle.BIKE, Vehicle.SCOOTER, Vehicle.CAR))


def north(metres: float) -> float:
    return LAT + metres / M_PER_DEG_LAT


def one_order(
    *, ready_at_s: float = 0.0, promised_at_s: float = 1e6, drop_north_m: float = 1000.0,
    allowed: int = ALL_VEHICLES_MASK,
) -> Orders:
    return Orders(chef_lat=[LAT], chef_lng=[LNG], drop_lat=[north(drop_north_m)],
                  drop_lng=[LNG], ready_at_s=[ready_at_s], promised_at_s=[promised_at_s],
                  allowed_vehicles=[allowed])


def couriers_south(metres: list[float], vehicles: list[int], available_at_s: float = -1.0,
                   ) -> Couriers:
    return Couriers(lat=[north(-m) for m in metres], lng=[LNG] * len(metres),
                    vehicle_code=vehicles, available_at_s=[available_at_s] * len(metres))


def ride_s(metres: float, vehicle: Vehicle) -> float:
    model = HaversineTravelModel()
    return metres * model.circuity / model.speeds_mps[vehicle]


def test_cost_is_ride_plus_weighted_wait_when_food_is_not_ready() -> None:
    """A scooter 1 km away, food ready in 10 min, no lateness: cost = ride + w x idle wait."""
    params = CostParams(wait_weight=0.5)
    orders = one_order(ready_at_s=600.0)
    fleet = couriers_south([1000.0], [SCOOTER])
    c = dense_costs(orders, fleet, now_s=0.0, params=params, travel=TRAVEL)
    ride = ride_s(1000.0, Vehicle.SCOOTER)
    assert c[0, 0] == pytest.approx(ride + 0.5 * (600.0 - ride), rel=1e-6)


def test_lateness_is_charged_past_the_promise() -> None:
    """Delivered = pickup + service + ride to the drop-off; each late second costs w_late."""
    params = CostParams(wait_weight=0.0, lateness_weight=3.0, service_s=100.0)
    orders = one_order(ready_at_s=0.0, promised_at_s=300.0, drop_north_m=2000.0)
    fleet = couriers_south([500.0], [CAR])
    c = dense_costs(orders, fleet, now_s=0.0, params=params, travel=TRAVEL)
    to_chef = ride_s(500.0, Vehicle.CAR)
    delivered = to_chef + 100.0 + ride_s(2000.0, Vehicle.CAR)
    assert c[0, 0] == pytest.approx(to_chef + 3.0 * (delivered - 300.0), rel=1e-6)


def test_busy_courier_starts_when_it_becomes_free() -> None:
    """A courier free in 5 min rides from then: later arrival, less idle wait."""
    params = CostParams(wait_weight=1.0)
    orders = one_order(ready_at_s=1000.0)
    busy = couriers_south([1000.0], [SCOOTER], available_at_s=300.0)
    idle = couriers_south([1000.0], [SCOOTER], available_at_s=-50.0)
    c_busy = dense_costs(orders, busy, now_s=0.0, params=params, travel=TRAVEL)[0, 0]
    c_idle = dense_costs(orders, idle, now_s=0.0, params=params, travel=TRAVEL)[0, 0]
    assert c_idle == pytest.approx(1000.0)  # ride + full wait = ready_at - now
    assert c_busy == pytest.approx(700.0)


def test_vehicle_not_allowed_is_infeasible() -> None:
    """A car-only order (catering) cannot go to a bike or a scooter."""
    orders = one_order(allowed=vehicle_mask(Vehicle.CAR))
    fleet = couriers_south([100.0, 100.0, 100.0], [BIKE, SCOOTER, CAR])
    c = dense_costs(orders, fleet, now_s=0.0, params=CostParams(), travel=TRAVEL)
    assert np.isinf(c[0, :2]).all()
    assert np.isfinite(c[0, 2])


def test_bikes_are_not_sent_on_long_deliveries() -> None:
    """Beyond max_bike_delivery_m (chef -> drop-off) a bike is infeasible, others are not."""
    params = CostParams(max_bike_delivery_m=3000.0)
    fleet = couriers_south([100.0, 100.0], [BIKE, SCOOTER])
    near = dense_costs(one_order(drop_north_m=2500.0), fleet, now_s=0.0, params=params,
                       travel=TRAVEL)
    far = dense_costs(one_order(drop_north_m=3500.0), fleet, now_s=0.0, params=params,
                      travel=TRAVEL)
    assert np.isfinite(near).all()
    assert np.isinf(far[0, 0])
    assert np.isfinite(far[0, 1])
    assert effective_vehicle_mask(one_order(drop_north_m=3500.0), params)[0] == vehicle_mask(
        Vehicle.SCOOTER, Vehicle.CAR)


def test_pickup_ride_longer_than_the_limit_is_infeasible() -> None:
    """A courier more than max_pickup_travel_s away is not considered."""
    params = CostParams(max_pickup_travel_s=600.0)
    limit_m = 600.0 / ride_s(1.0, Vehicle.SCOOTER)
    fleet = couriers_south([limit_m * 0.99, limit_m * 1.01], [SCOOTER, SCOOTER])
    c = dense_costs(one_order(), fleet, now_s=0.0, params=params, travel=TRAVEL)
    assert np.isfinite(c[0, 0])
    assert np.isinf(c[0, 1])


def test_masked_pairs_never_assigned_through_the_whole_pipeline() -> None:
    """Costs -> matcher: the only courier nearby has the wrong vehicle, so the car-only order
    takes the far car even though the bike is closer."""
    orders = one_order(allowed=vehicle_mask(Vehicle.CAR))
    fleet = couriers_south([100.0, 3000.0], [BIKE, CAR])
    a = assign_orders(dense_costs(orders, fleet, now_s=0.0, params=CostParams(), travel=TRAVEL),
                      unassigned_penalty_s=5000.0)
    assert a.courier_idx.tolist() == [1]


def city(seed: int, n: int, m: int) -> tuple[Orders, Couriers]:
    rng = np.random.default_rng(seed)
    orders = Orders(
        chef_lat=LAT + rng.uniform(-0.05, 0.05, n), chef_lng=LNG + rng.uniform(-0.05, 0.05, n),
        drop_lat=LAT + rng.uniform(-0.05, 0.05, n), drop_lng=LNG + rng.uniform(-0.05, 0.05, n),
        ready_at_s=rng.uniform(-100, 900, n), promised_at_s=rng.uniform(900, 2400, n),
        allowed_vehicles=np.where(rng.random(n) < 0.2, vehicle_mask(Vehicle.CAR),
                                  ALL_VEHICLES_MASK))
    couriers = Couriers(
        lat=LAT + rng.uniform(-0.05, 0.05, m), lng=LNG + rng.uniform(-0.05, 0.05, m),
        vehicle_code=rng.integers(0, 3, m),
        available_at_s=np.where(rng.random(m) < 0.2, rng.uniform(0, 300, m), -1.0))
    return orders, couriers


def test_candidate_and_dense_costs_are_bit_identical() -> None:
    """The sparse layout gathers the same pairs through the same code: identical floats, so
    rounding to 1 ms can never make the two solvers disagree."""
    orders, couriers = city(1, 50, 80)
    params = CostParams()
    dense = dense_costs(orders, couriers, now_s=0.0, params=params, travel=TRAVEL,
                        chunk_pairs=1000)
    rng = np.random.default_rng(2)
    idx = np.stack([rng.permutation(80)[:10] for _ in range(50)])
    idx[:, -2:] = -1
    cand = candidate_costs(orders, couriers, idx, now_s=0.0, params=params, travel=TRAVEL)
    rows = np.arange(50)[:, None]
    expect = np.where(idx >= 0, dense[rows, np.maximum(idx, 0)], np.inf)
    np.testing.assert_array_equal(cand.cost_s, expect)
    assert np.isinf(cand.travel_s[:, -2:]).all()


class _CountingTravel(HaversinePairTravel):
    """The straight-line pairs, recording the size of every ask (on roads each pair asked is
    a road query)."""

    def __init__(self) -> None:
        super().__init__()
        self.asks: list[int] = []

    def travel_pairs_s(self, lat_a, lng_a, lat_b, lng_b, vehicle_code):  # type: ignore[no-untyped-def]
        self.asks.append(int(np.broadcast(lat_a, lng_a, lat_b, lng_b, vehicle_code).size))
        return super().travel_pairs_s(lat_a, lng_a, lat_b, lng_b, vehicle_code)


def test_delivery_rides_are_asked_only_where_a_feasible_candidate_needs_them() -> None:
    """Three orders with bike candidates only: the one beyond the bike limit and the one
    whose bikes are too far from the chef ask no delivery ride; the third asks one (not
    one per vehicle), and its cost is the dense layout's."""
    params = CostParams(max_bike_delivery_m=3000.0, max_pickup_travel_s=600.0)
    orders = Orders(chef_lat=[LAT, LAT, north(20_000.0)], chef_lng=[LNG] * 3,
                    drop_lat=[north(1000.0), north(3500.0), north(21_000.0)],
                    drop_lng=[LNG] * 3, ready_at_s=[0.0] * 3, promised_at_s=[1e6] * 3,
                    allowed_vehicles=[ALL_VEHICLES_MASK] * 3)
    fleet = couriers_south([100.0, 200.0], [BIKE, BIKE])
    travel = _CountingTravel()
    got = candidate_costs(orders, fleet, [[0, 1], [0, 1], [0, 1]], now_s=0.0, params=params,
                          travel=travel)
    assert travel.asks == [6, 1]  # the pickups, then one delivery ride
    assert np.isfinite(got.cost_s[0]).all()
    assert np.isinf(got.cost_s[1:]).all()
    dense = dense_costs(orders, fleet, now_s=0.0, params=params, travel=TRAVEL)
    np.testing.assert_array_equal(got.cost_s, dense)


def test_full_candidates_give_the_dense_optimum() -> None:
    """A city round solved from candidate lists that hold every courier equals the dense
    linear_sum_assignment optimum, courier for courier."""
    orders, couriers = city(4, 60, 90)
    params = CostParams()
    dense = dense_costs(orders, couriers, now_s=0.0, params=params, travel=TRAVEL)
    idx = np.broadcast_to(np.arange(90), (60, 90))
    cand = candidate_costs(orders, couriers, idx, now_s=0.0, params=params, travel=TRAVEL)
    a = assign_orders(dense, unassigned_penalty_s=1500.0)
    b = assign_orders(cand, unassigned_penalty_s=1500.0)
    assert a.objective_ms == b.objective_ms
    np.testing.assert_array_equal(a.courier_idx, b.courier_idx)


def test_outside_bound_is_a_lower_bound() -> None:
    """No courier at least d metres away costs less than the bound for distance d, whatever
    its vehicle and however late (up to latest_start_s) it becomes free."""
    orders, couriers = city(6, 40, 400)
    params = CostParams()
    latest = float(couriers.available_at_s.max())
    dense = dense_costs(orders, couriers, now_s=0.0, params=params, travel=TRAVEL)
    dist = _dist_m(orders, couriers)
    for d in (0.0, 500.0, 1500.0, 3000.0):
        bound = outside_cost_lower_bound_s(orders, d, now_s=0.0, latest_start_s=latest,
                                           params=params, travel=TRAVEL)
        far = dist >= d
        worst = np.where(far, dense, np.inf).min(axis=1)
        assert (bound <= worst + 1e-9).all()


def _dist_m(orders: Orders, couriers: Couriers) -> np.ndarray:
    return haversine_matrix_m(orders.chef_lat, orders.chef_lng, couriers.lat, couriers.lng)


def test_pricing_radius_bounds_every_cheaper_courier() -> None:
    """Every courier cheaper than the price lies within the pricing radius."""
    orders, couriers = city(9, 30, 300)
    params = CostParams()
    latest = float(couriers.available_at_s.max())
    price = np.full(len(orders), 700.0)
    radius = pricing_radius_m(orders, price, now_s=0.0, latest_start_s=latest, params=params,
                              travel=TRAVEL)
    dense = dense_costs(orders, couriers, now_s=0.0, params=params, travel=TRAVEL)
    cheaper = dense < price[:, None]
    assert (_dist_m(orders, couriers)[cheaper] <= np.broadcast_to(radius[:, None],
                                                                  dense.shape)[cheaper]).all()


def test_inputs_are_validated() -> None:
    """Ragged arrays and unknown vehicle codes are rejected at construction."""
    with pytest.raises(ValueError, match="rows"):
        Orders(chef_lat=[1.0, 2.0], chef_lng=[1.0], drop_lat=[1.0, 2.0], drop_lng=[1.0, 2.0],
               ready_at_s=[0, 0], promised_at_s=[0, 0], allowed_vehicles=[7, 7])
    with pytest.raises(ValueError, match="VEHICLES"):
        couriers_south([1.0], [7])
    with pytest.raises(ValueError, match="shape"):
        candidate_costs(one_order(), couriers_south([1.0], [BIKE]), np.zeros((2, 1)),
                        now_s=0.0, params=CostParams(), travel=TRAVEL)
    with pytest.raises(ValueError, match="weights"):
        CostParams(lateness_weight=-1.0)
    assert CandidateCosts.from_dense(np.ones((2, 3))).n_couriers == 3


def test_late_added_only_charges_what_the_courier_adds() -> None:
    """An order already past its promise: charged in full, every pair costs more than the
    30-minute penalty and the order would never be offered; with `late_added_only` a pair
    costs the ride plus only the lateness beyond an instant pickup by that vehicle, and the
    outside bound stays a lower bound."""
    orders = one_order(ready_at_s=0.0, promised_at_s=-1200.0, drop_north_m=2000.0)
    fleet = couriers_south([500.0, 3000.0], [CAR, CAR])
    full = dense_costs(orders, fleet, now_s=0.0, params=CostParams(), travel=TRAVEL)
    assert (full > 1800.0).all()
    added = CostParams(late_added_only=True)
    c = dense_costs(orders, fleet, now_s=0.0, params=added, travel=TRAVEL)
    near, far = ride_s(500.0, Vehicle.CAR), ride_s(3000.0, Vehicle.CAR)
    assert c[0, 0] == pytest.approx(near + 3.0 * near, rel=1e-6)  # late by the ride only
    assert c[0, 1] == pytest.approx(far + 3.0 * far, rel=1e-6)
    bound = outside_cost_lower_bound_s(orders, 0.0, now_s=0.0, latest_start_s=0.0,
                                       params=added, travel=TRAVEL)
    assert (bound <= c.min(axis=1) + 1e-9).all()
