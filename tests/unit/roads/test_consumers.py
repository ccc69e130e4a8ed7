"""With roads on, each consumer of the travel model decides on road times: dispatch rounds
(candidate costs), stacking, route optimisation matrices and tracking ETAs. Each test picks
Monaco places where the road answer differs from the straight-line one (tests/monaco.py)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from api.core.routing.schemas import OptimizeRequest
from api.core.routing.service import build_problem
from api.problems import Problem as HttpProblem
from dispatch.round import RoundCouriers, RoundInputs, RoundOrder, RoundParams, plan_round
from dispatch.stacking import StackedCourier, StackOrder, stack_cost_s
from geo.travel import HaversineTravelModel, Vehicle
from roads.model import RoadTravelModel
from streams.catalog import Names
from streams.tracking_hub import OrderTrack, TrackingHub
from streams.wire import Point
from tests.monaco import FAR_OUT, HARBOUR_NORTH, HARBOUR_SOUTH, SAME_SIDE

NOW_MS = 1_750_000_000_000
STRAIGHT = HaversineTravelModel()


def _harbour_round() -> RoundInputs:
    """One order at the outer jetty; courier `across` 289 m away over the harbour mouth,
    courier `same-side` 455 m away on the jetty's side (nearest first, as the search gives)."""
    order = RoundOrder(order_id="o1", chef="chef-1", pickup_lat=HARBOUR_SOUTH[0],
                       pickup_lng=HARBOUR_SOUTH[1], dropoff_lat=SAME_SIDE[0],
                       dropoff_lng=SAME_SIDE[1], ready_ms=NOW_MS, promised_ms=NOW_MS + 3_600_000)
    couriers = RoundCouriers(ids=["across", "same-side"],
                             lat=np.array([HARBOUR_NORTH[0], SAME_SIDE[0]]),
                             lng=np.array([HARBOUR_NORTH[1], SAME_SIDE[1]]),
                             vehicle=["bike", "bike"])
    return RoundInputs(orders=[order], couriers=couriers, idle=np.array([[0, 1]]),
                       now_ms=NOW_MS)


def test_dispatch_offers_the_courier_nearest_by_road(road_model: RoadTravelModel) -> None:
    """Straight-line costs send the courier across the water; road costs the one on the same
    side of the harbour."""
    inputs = _harbour_round()
    straight = plan_round(inputs, RoundParams())
    roads = plan_round(inputs, RoundParams(travel=road_model, pairs=road_model))
    assert [o.courier_id for o in straight.offers] == ["across"]
    assert [o.courier_id for o in roads.offers] == ["same-side"]


def test_round_params_need_the_pairwise_form_of_a_road_model(
        road_model: RoadTravelModel) -> None:
    with pytest.raises(ValueError, match="pairs is required"):
        RoundParams(travel=road_model)


def test_stacking_refuses_a_drop_off_the_roads_cannot_reach(
        road_model: RoadTravelModel) -> None:
    """Same chef, drop-off far out at sea: the straight line prices the detour, roads say it
    cannot be ridden (no stacking, no crash); a reachable one is priced on road times."""
    now_s = NOW_MS / 1000

    def held(dropoff: tuple[float, float], order_id: str) -> StackOrder:
        return StackOrder(order_id=order_id, chef="chef-1", pickup=HARBOUR_SOUTH,
                          dropoff=dropoff, ready_at_s=now_s, promised_at_s=now_s + 3600)

    courier = StackedCourier(position=HARBOUR_NORTH, vehicle=Vehicle.BIKE,
                             held=(held(SAME_SIDE, "o1"),))
    far = held(FAR_OUT, "o2")
    args = {"now_s": now_s, "max_stack": 2, "service_s": 120.0}
    assert stack_cost_s(courier, far, travel=STRAIGHT, **args) is not None
    assert stack_cost_s(courier, far, travel=road_model, **args) is None
    near = held(HARBOUR_NORTH, "o3")
    assert stack_cost_s(courier, near, travel=road_model, **args) is not None


def _optimize_request(dropoff: tuple[float, float]) -> OptimizeRequest:
    return msgspec.convert({
        "couriers": [{"courier_id": "c1", "lat": HARBOUR_NORTH[0], "lng": HARBOUR_NORTH[1]}],
        "orders": [{"order_id": "o1",
                    "pickup": {"lat": HARBOUR_SOUTH[0], "lng": HARBOUR_SOUTH[1]},
                    "dropoff": {"lat": dropoff[0], "lng": dropoff[1]}}],
    }, OptimizeRequest)


def test_route_optimisation_matrices_are_road_times(road_model: RoadTravelModel) -> None:
    """The courier -> pickup leg of POST /routing/optimize's model: round the harbour."""
    straight, _ = build_problem(_optimize_request(SAME_SIDE), NOW_MS)
    roads, _ = build_problem(_optimize_request(SAME_SIDE), NOW_MS, road_model)
    assert straight.travel_s[0, 1] < 100
    assert roads.travel_s[0, 1] == math.ceil(
        road_model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE))
    assert roads.travel_s[0, 1] > 600


def test_route_optimisation_refuses_an_unreachable_stop(road_model: RoadTravelModel) -> None:
    with pytest.raises(HttpProblem) as problem:
        build_problem(_optimize_request(FAR_OUT), NOW_MS, road_model)
    assert problem.value.status_code == 422
    assert problem.value.code == "unreachable"


def test_tracking_etas_are_road_times_with_a_straight_line_fallback(
        road_model: RoadTravelModel) -> None:
    """DELIVERY_LOCATION's ETA rides the roads; off the map (no road answer) it falls back to
    the straight-line estimate rather than having none."""
    hub = TrackingHub(Names("t"), clock_ms=lambda: NOW_MS, travel=road_model)
    track = OrderTrack(order_id="o1", status="picked_up",
                       pickup=Point(*SAME_SIDE), dropoff=Point(*HARBOUR_SOUTH))
    eta = hub.eta_s(track, Point(*HARBOUR_NORTH), NOW_MS)
    assert eta == road_model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert eta is not None
    assert eta > 5 * STRAIGHT.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    lost = hub.eta_s(track, Point(*FAR_OUT), NOW_MS)
    assert lost == pytest.approx(STRAIGHT.travel_s(*FAR_OUT, *HARBOUR_SOUTH, Vehicle.BIKE))
    # Once the courier's vehicle is known, the ETA rides it (a car round the harbour).
    track.courier_id = "c1"
    hub.set_courier_vehicles({"c1": Vehicle.CAR, "c2": Vehicle.BIKE})
    by_car = hub.eta_s(track, Point(*HARBOUR_NORTH), NOW_MS)
    assert by_car == road_model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.CAR)
    assert by_car is not None
    assert by_car < eta


def test_promised_delivery_rides_the_roads_with_a_straight_line_fallback(
        road_model: RoadTravelModel) -> None:
    """Commerce's promise at placement (and again when the chef accepts): across the harbour
    mouth the straight line says a few minutes, the quays over ten; an address the roads
    cannot reach is promised on the straight line, as without road data."""
    from datetime import UTC, datetime, timedelta

    from api.commerce.context import default_commerce

    ready = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    straight = default_commerce()
    roads = default_commerce(roads=road_model)
    across_m = 289.0
    buffer = timedelta(minutes=straight.config.handoff_buffer_min)
    assert straight.promise(ready, HARBOUR_NORTH, HARBOUR_SOUTH, across_m) == (
        ready + buffer + timedelta(minutes=1))
    ride_s = road_model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert ride_s > 600
    assert roads.promise(ready, HARBOUR_NORTH, HARBOUR_SOUTH, across_m) == (
        ready + buffer + timedelta(minutes=math.ceil(ride_s / 60)))
    assert roads.promise(ready, HARBOUR_NORTH, FAR_OUT, 20_000.0) == straight.promise(
        ready, HARBOUR_NORTH, FAR_OUT, 20_000.0)
