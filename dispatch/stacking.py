"""Stacking: may a courier already heading to a chef take one more order? (issue 5, item 7)

Rule. A courier whose held orders are all still to be picked up may be offered one more
order, up to a bound on the stack, when the new order comes from the same chef as one it
holds, or when routing's cheapest feasible insertion (`routing.insertion.insert`) keeps every
promised time — the held orders' and the new one's. Anything else: one order per courier.

Cost of a stacked pair, on the scale of an idle courier's (travel to the chef + wait +
lateness, `dispatch.costs`): the travel the new order adds, plus the delay it imposes on the
held orders' drop-offs (waiting at the chef for its food, its extra stops), plus
`lateness_weight` per second of lateness it adds to any order. Counting the delay matters:
costed on added travel alone, a same-chef order was stacked even with idle couriers near,
and the first customer waited for the second's food and drop-off (simulated day,
docs/benchmarks.md).

Pure: positions, times and the travel model in; the cost of the pair or None out. The claim
itself stays atomic in Redis (the adapter passes the held orders it decided on, and the script
refuses if they changed in between).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from geo.travel import TravelModel, Vehicle
from routing.eta import route_eta
from routing.insertion import CourierRoute, Insertion, insert
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


_UNREACHABLE_S = 10**9
"""Seconds standing in for an unreachable leg (~32 years: past any deadline)."""


def stack_cost_s(
    courier: StackedCourier,
    new: StackOrder,
    *,
    now_s: float,
    max_stack: int,
    service_s: float,
    travel: TravelModel,
    lateness_weight: float = 3.0,
    max_delay_s: float | None = None,
) -> float | None:
    """Cost in seconds of giving the courier the new order too (module docstring), or None
    when it may not join: the stack is full (`max_stack` orders incl. the new one), or it is
    from another chef and no insertion keeps every promised time. A same-chef order joins even
    when a promise is already at risk (the courier is going there anyway), through the
    cheapest insertion with the deadlines dropped; its lateness is then in the cost.

    With `max_delay_s`, an order that would delay any held order's drop-off by more than
    that may not join either (the customer already waiting is not made to wait for it).

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
    # Integer seconds (routing's clock), rounded up so feasibility is never optimistic. A
    # road model's unreachable leg (inf) becomes a ride longer than any real one, so a route
    # through it misses every deadline and costs more than `_UNREACHABLE_S` (refused below).
    matrix = travel.travel_matrix_s(lat, lng, lat, lng, courier.vehicle)
    matrix = np.where(np.isfinite(matrix), matrix, _UNREACHABLE_S)
    travel_s = np.ceil(matrix).astype(np.int64)
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

    # Promised times on routing's clock, by drop-off task id (the new order's is 2n + 1).
    promised = {2 * k + 1: o.promised_at_s - now_s for k, o in enumerate((*courier.held, new))}

    def drop_starts(route: CourierRoute) -> dict[int, float]:
        etas = route_eta(route.stops, route.location, route.now_s,
                         lambda a, b: float(travel_s[a, b]))
        return {stop.id: eta.start_s for stop, eta in zip(route.stops, etas, strict=True)
                if stop.id in promised}

    def cost(before: CourierRoute, found: Insertion) -> float:
        old, now = drop_starts(before), drop_starts(found.route)
        if max_delay_s is not None and any(now[i] - old[i] > max_delay_s for i in old):
            return _UNREACHABLE_S  # refused below

        def lateness(starts: dict[int, float]) -> float:
            return sum(max(0.0, t - promised[i]) for i, t in starts.items())

        delay = sum(max(0.0, now[i] - old[i]) for i in old)  # held orders only
        added_late = max(0.0, lateness(now) - lateness(old))  # the new order's included
        return float(found.added_travel_s) + delay + lateness_weight * added_late

    strict = route_and_tasks(deadlines=True)
    found = insert(*strict, travel_s)
    if found is not None:
        return _reachable(cost(strict[0], found))
    if any(o.chef == new.chef for o in courier.held):
        relaxed = route_and_tasks(deadlines=False)
        found = insert(*relaxed, travel_s)
        return None if found is None else _reachable(cost(relaxed[0], found))
    return None


def _reachable(cost_s: float) -> float | None:
    return None if cost_s >= _UNREACHABLE_S else cost_s
