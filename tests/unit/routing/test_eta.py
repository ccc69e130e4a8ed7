"""ETA: travel, waiting for food, service and lateness on hand-checked routes."""

from __future__ import annotations

from routing.eta import route_eta
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
