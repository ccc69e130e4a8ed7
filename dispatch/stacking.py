"""Stacking: may a courier already heading to a chef take one more order? (issue 5, item 7)

Rule. A courier whose held orders are all still to be picked up may be offered one more
order, up to a bound on the stack, when the new order comes from the same chef as one it
holds, or when routing's cheapest feasible insertion (`routing.insertion.insert`) keeps every
promised time — the held orders' and the new one's. Anything else: one order per courier.

Pure: positions, times and the travel model in; the added travel (the matching cost of the
pair) or None out. The claim itself stays atomic in Redis (the adapter passes the held orders
it decided on, and the script refuses if they changed in between).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from geo.travel import TravelModel, Vehicle
from routing.insertion import CourierRoute, insert
from routing.model import NO_DEADLINE_S, Pair, Task

__all__ = ["StackOrder", "StackedCourier", "stack_cost_s"]


class StackOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as stacking sees it (a held one or the candidate)."""

    order_id: str
    chef: str
    """Who cooks it: same chef means the same pickup stop."""
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    ready_at_s: float
    promised_at_s: float


class StackedCourier(msgspec.Struct, frozen=True, kw_only=True):
    """A courier heading to a chef with `held` orders, none picked up yet."""

    position: tuple[float, float]
    vehicle: Vehicle
    held: tuple[StackOrder, ...]


def stack_cost_s(
    courier: StackedCourier,
    new: StackOrder,
    *,
    now_s: float,
    max_stack: int,
    service_s: float,
    travel: TravelModel,
) -> float | None:
    """Seconds of travel the new order adds to the courier's route, or None when it may not
    join: the stack is full (`max_stack` orders incl. the new one), or it is from another chef
    and no insertion keeps every promised time. A same-chef order joins even when a promise
    is already at risk (the courier is going there anyway); its cost is then the cheapest
    insertion with the deadlines dropped.

    Each stop takes half of `service_s` (the cost model's hand-over at the chef plus at the
    door); the held orders are served pickups first, then drop-offs, in the order given.
    """
    if len(courier.held) + 1 > max_stack or not courier.held:
        return None
    points = [courier.position]
    for o in (*courier.held, new):
        points += [o.pickup, o.dropoff]
    lat = np.array([p[0] for p in points])
    lng = np.array([p[1] for p in points])
    # Integer seconds (routing's clock), rounded up so feasibility is never optimistic.
    travel_s = np.ceil(travel.travel_matrix_s(lat, lng, lat, lng, courier.vehicle)).astype(
        np.int64)
    stop_s = math.ceil(service_s / 2)

    # Routing's clock starts at the round (its "no deadline" is ~34 years, not an epoch time).
    def ready(t: float) -> int:
        return max(0, math.ceil(t - now_s))

    def route_and_tasks(deadlines: bool) -> tuple[CourierRoute, Task, Task]:
        def due(t: float) -> int:
            return math.floor(t - now_s) if deadlines else NO_DEADLINE_S

        pickups, drops, pairs = [], [], []
        for k, o in enumerate(courier.held):
            pickups.append(Task(id=2 * k, location=1 + 2 * k, demand=1,
                                ready_s=ready(o.ready_at_s), service_s=stop_s))
            drops.append(Task(id=2 * k + 1, location=2 + 2 * k, demand=-1,
                              due_s=due(o.promised_at_s), service_s=stop_s))
            pairs.append(Pair(pickup_id=2 * k, delivery_id=2 * k + 1))
        n = len(courier.held)
        route = CourierRoute(location=0, now_s=0, stops=(*pickups, *drops),
                             pairs=tuple(pairs))
        pickup = Task(id=2 * n, location=1 + 2 * n, demand=1, ready_s=ready(new.ready_at_s),
                      service_s=stop_s)
        delivery = Task(id=2 * n + 1, location=2 + 2 * n, demand=-1,
                        due_s=due(new.promised_at_s), service_s=stop_s)
        return route, pickup, delivery

    found = insert(*route_and_tasks(deadlines=True), travel_s)
    if found is not None:
        return float(found.added_travel_s)
    if any(o.chef == new.chef for o in courier.held):
        relaxed = insert(*route_and_tasks(deadlines=False), travel_s)
        return None if relaxed is None else float(relaxed.added_travel_s)
    return None
