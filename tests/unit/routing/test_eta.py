"""ETA: travel, waiting for food, service and lateness on hand-checked routes."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from geo.travel import Vehicle
from routing.eta import delivery_eta_s, route_eta
from routing.model import Task
from tests.unit.routing.builders import line_matrix


def _travel(a: int, b: int) -> int:
    return int(line_matrix([0, 100, 300, 600])[a, b])


def test_eta_waits_for_food_and_serves() -> None:
    """Arrive, wait until `ready_s` (food not ready), serve, drive on: times add up exactly."""
    stops = [
        Task(id=1, location=1, ready_s=250, due_s=400, service_s=60),  # chef, food at 250
        Task(id=2, location=2, due_s=900, service_s=30),  # customer
    ]
    etas = route_eta(stops, location=0, now_s=0, travel_s=_travel)
    # 0 -> 100 s to the chef, wait 150 s, serve 60 s, leave at 310; 200 s to the customer.
    assert [(e.arrival_s, e.start_s, e.departure_s, e.wait_s) for e in etas] == [
        (100, 250, 310, 150),
        (510, 510, 540, 0),
    ]
    assert all(e.late_s == 0 for e in etas)


def test_eta_starts_from_current_position_and_time() -> None:
    """The courier's current location and clock are the route's origin."""
    stops = [Task(id=3, location=3, due_s=2000)]
    (eta,) = route_eta(stops, location=2, now_s=1000, travel_s=_travel)
    assert (eta.arrival_s, eta.start_s) == (1300, 1300)


def test_eta_reports_lateness_instead_of_failing() -> None:
    """A stop reached after `due_s` still gets an ETA, with `late_s` = start - due."""
    stops = [
        Task(id=1, location=3, due_s=500, service_s=10),
        Task(id=2, location=1, due_s=10_000),
    ]
    etas = route_eta(stops, location=0, now_s=0, travel_s=_travel)
    assert (etas[0].start_s, etas[0].late_s) == (600, 100)
    assert (etas[1].arrival_s, etas[1].late_s) == (1110, 0)


def test_eta_of_empty_route() -> None:
    """No stops, no ETAs."""
    assert route_eta([], location=0, now_s=0, travel_s=_travel) == []


class P(NamedTuple):
    lat: float
    lng: float


class LineTravel:
    """100 s per unit of latitude, whatever the vehicle: hand-checkable."""

    def travel_s(self, lat1: float, lng1: float, lat2: float, lng2: float,
                 vehicle: Vehicle) -> float:
        return abs(lat2 - lat1) * 100

    def travel_matrix_s(self, *args: Any) -> Any:
        raise NotImplementedError


COURIER, PICKUP, DROP = P(0, 0), P(2, 0), P(5, 0)  # 200 s to the chef, 300 s on to the drop


@pytest.mark.parametrize(
    ("on_board", "pickup", "ready_at_ms", "expect_s"),
    [
        (False, PICKUP, None, 200 + 300),  # no ready time: ready now
        (False, PICKUP, 100_000, 200 + 300),  # ready (100 s) before the courier arrives
        (False, PICKUP, 450_000, 450 + 300),  # arrives at 200 s, waits until 450 s
        (False, PICKUP, 0, 200 + 300),  # 0 reads as unknown, like None
        (True, PICKUP, 450_000, 500),  # food on board: straight to the drop
        (False, None, 450_000, 500),  # pickup unknown: straight to the drop
    ],
)
def test_delivery_eta_goes_via_the_chef_and_waits_for_the_food(
    on_board: bool, pickup: P | None, ready_at_ms: int | None, expect_s: float,
) -> None:
    """The live ETA of an order: via the pickup (waiting there until the food is ready)
    unless the food is on board or the pickup is unknown, then on to the drop."""
    eta = delivery_eta_s(COURIER, DROP, pickup=pickup, food_on_board=on_board,
                         ready_at_ms=ready_at_ms, now_ms=0, travel=LineTravel(),
                         vehicle=Vehicle.BIKE)
    assert eta == pytest.approx(expect_s)
