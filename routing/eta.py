"""Arrival times along a courier's remaining route.

A courier leaves its current position at `now_s`, drives to each stop in order, waits when it
arrives before the stop opens (the food is not ready yet), serves it, and drives on. Being late is
reported (`late_s`), never refused: an ETA must exist even for a route that slipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

__all__ = ["StopEta", "StopLike", "TravelFn", "route_eta"]

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
