"""A route request becomes the routing model: windows relative to the request's time, the
slowest vehicle's travel times, and 4xx problems for what cannot be planned — all before the
solver is asked."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from api.core.routing.schemas import OptimizeRequest
from api.core.routing.service import MAX_ORDERS, SERVICE_S, build_problem, check_request
from api.problems import Problem as HttpProblem
from geo.travel import HaversineTravelModel, Vehicle

NOW_MS = 1_700_000_000_000


def req(orders: int = 1, vehicles: tuple[str, ...] = ("bike",), **order: Any) -> OptimizeRequest:
    body = {
        "couriers": [{"courier_id": f"c{i}", "lat": 12.97, "lng": 77.59, "vehicle": v}
                     for i, v in enumerate(vehicles)],
        "orders": [{"order_id": f"o{i}", "pickup": {"lat": 12.97, "lng": 77.60},
                    "dropoff": {"lat": 12.98, "lng": 77.61}, **order} for i in range(orders)],
    }
    return msgspec.convert(body, OptimizeRequest)


@pytest.mark.parametrize(("request_", "status", "code"), [
    (req(orders=0), 422, "empty"),
    (req(vehicles=()), 422, "empty"),
    (req(orders=MAX_ORDERS + 1), 413, "too_large"),
    (msgspec.structs.replace(req(), orders=req().orders * 2), 422, "duplicate_order"),
])
def test_requests_that_cannot_be_planned(request_: OptimizeRequest, status: int,
                                         code: str) -> None:
    """No courier or no order, too many, or a repeated order id: a 4xx problem."""
    with pytest.raises(HttpProblem) as problem:
        check_request(request_)
    assert (problem.value.status_code, problem.value.code) == (status, code)


def test_windows_are_seconds_from_the_request() -> None:
    """ready_at and deliver_by become seconds after the request (ready in the past: now);
    each order is a pickup/drop-off pair with the service time at both stops."""
    problem, meta = build_problem(req(ready_at=NOW_MS + 300_000, deliver_by=NOW_MS + 3_600_000),
                                  NOW_MS)
    pick, drop = problem.tasks
    assert (pick.ready_s, drop.due_s) == (300, 3600)
    assert (pick.service_s, drop.service_s) == (SERVICE_S, SERVICE_S)
    assert (problem.pairs[0].pickup_id, problem.pairs[0].delivery_id) == (pick.id, drop.id)
    assert meta == [("o0", "pickup"), ("o0", "dropoff")]
    early, _ = build_problem(req(ready_at=NOW_MS - 60_000), NOW_MS)
    assert early.tasks[0].ready_s == 0


def test_a_deadline_in_the_past_is_422() -> None:
    """An order that had to be delivered before the request cannot be planned."""
    with pytest.raises(HttpProblem) as problem:
        build_problem(req(deliver_by=NOW_MS - 1000), NOW_MS)
    assert problem.value.code == "window_in_past"


def test_travel_times_are_the_slowest_vehicles() -> None:
    """One matrix for all couriers, at the slowest vehicle's speed, so no ETA is optimistic."""
    model = HaversineTravelModel()
    mixed, _ = build_problem(req(vehicles=("car", "bike")), NOW_MS)
    bikes, _ = build_problem(req(vehicles=("bike", "bike")), NOW_MS)
    assert (mixed.travel_s == bikes.travel_s).all()
    assert model.speeds_mps[Vehicle("bike")] < model.speeds_mps[Vehicle("car")]
