"""Arrival times along a courier's remaining route.

A courier leaves its current position at `now_s`, drives to each stop in order, waits when it
arrives before the stop opens (the food is not ready yet), serves it, and drives on. Being late is
reported (`late_s`), never refused: an ETA must exist even for a route that slipped.

`route_eta` times a planned route over location indices (the solver's model);
`delivery_eta_s` is the live tracking ETA of one order, on coordinates and a `TravelModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from geo.travel import TravelModel, Vehicle

__all__ = ["LatLngLike", "StopEta", "StopLike", "TravelFn", "delivery_eta_s", "route_eta"]

TravelFn = Callable[[int, int], float]
"""Seconds from one location index to another; must be pure."""


class StopLike(Protocol):
    """What ETA needs of a stop; `routing.model.Task` satisfies it."""

    @property
    def location(self) -> int: ...

    @property
    def ready_s(self) -> int: ...

    @property
    def due_s(self) -> int: ...

    @property
    def service_s(self) -> int: ...


class StopEta(msgspec.Struct, frozen=True, kw_only=True):
    """Timing of one stop: arrival, service start (after any wait), departure, lateness."""

    arrival_s: float
    start_s: float
    departure_s: float
    wait_s: float
    late_s: float


def route_eta(
    stops: Sequence[StopLike], location: int, now_s: float, travel_s: TravelFn
) -> list[StopEta]:
    """Earliest timing of every stop, visited in the given order from `location` at `now_s`.

    Service starts at `max(arrival, ready_s)`; `late_s` is how far that start is past `due_s`
    (0 when on time). Integer inputs and an integer `travel_s` give integer outputs.
    """
    etas: list[StopEta] = []
    at = location
    t = now_s
    for stop in stops:
        arrival_s = t + travel_s(at, stop.location)
        start_s = max(arrival_s, stop.ready_s)
        t = start_s + stop.service_s
        etas.append(
            StopEta(
                arrival_s=arrival_s,
                start_s=start_s,
                departure_s=t,
                wait_s=start_s - arrival_s,
                late_s=max(0, start_s - stop.due_s),
            )
        )
        at = stop.location
    return etas


class LatLngLike(Protocol):
    """A position; `streams.wire.Point` and `streams.events.LatLng` satisfy it."""

    @property
    def lat(self) -> float: ...

    @property
    def lng(self) -> float: ...


def delivery_eta_s(
    courier: LatLngLike,
    dropoff: LatLngLike,
    *,
    pickup: LatLngLike | None,
    food_on_board: bool,
    ready_at_ms: int | None,
    now_ms: int,
    travel: TravelModel,
    vehicle: Vehicle,
) -> float:
    """Seconds until the courier at `courier` reaches the order's `dropoff`.

    Straight to the drop once the food is on board (or when the pickup is unknown); otherwise
    via the pickup, where the courier waits until `ready_at_ms` if it arrives earlier (a
    `ready_at_ms` of None or 0 means the food is ready now). Never negative.
    """
    if food_on_board or pickup is None:
        return travel.travel_s(courier.lat, courier.lng, dropoff.lat, dropoff.lng, vehicle)
    to_pickup = travel.travel_s(courier.lat, courier.lng, pickup.lat, pickup.lng, vehicle)
    wait_s = max(0.0, (ready_at_ms - now_ms) / 1000) if ready_at_ms else 0.0
    return max(to_pickup, wait_s) + travel.travel_s(pickup.lat, pickup.lng, dropoff.lat,
                                                    dropoff.lng, vehicle)
