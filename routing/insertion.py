"""One courier's route: cheapest insertion of a new order (re-ordering what is left is
`routing.reorder`, which needs the OR-Tools solver for long routes).

It answers in milliseconds for a courier's typical handful of stops, so dispatch can call it
inline when a full `solve` has no budget. The cost is travel time (seconds), the quantity the
solver minimises too.

Position convention for a route with `n` remaining stops: 0 is the courier's current position,
1..n the stops, n + 1 the route terminal (the end location, or a free "done" node when open).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from routing.model import (
    NO_CAPACITY_LIMIT,
    NO_DEADLINE_S,
    Pair,
    Task,
    Vehicle,
)

__all__ = ["CourierRoute", "Insertion", "Schedule", "insert", "route_cost_s"]


class CourierRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A courier's remaining work: where it is at `now_s`, what it carries, the stops ahead.

    `pairs` lists the orders whose pickup *and* drop-off are both still ahead; a drop-off in no
    pair is food already on board (counted in `load`). Stops already done are not listed.
    """

    location: int
    now_s: int
    stops: tuple[Task, ...] = ()
    pairs: tuple[Pair, ...] = ()
    load: int = 0
    capacity: int = NO_CAPACITY_LIMIT
    end: int | None = None
    shift_end_s: int = NO_DEADLINE_S


class Insertion(msgspec.Struct, frozen=True, kw_only=True):
    """The route with the new order in it; the pickup/drop-off indices are into `route.stops`."""

    route: CourierRoute
    pickup_index: int
    delivery_index: int
    added_travel_s: float


class Schedule:
    """One vehicle's stop sequence with its earliest departures, loads and latest service
    starts (forward and backward), computed once and reused for every order tried on it: the
    ejection pool (routing.reduce) tries thousands of orders per sequence. Positions as in
    the module docstring. `travel` is the matrix as nested lists (plain lists are far faster
    than numpy scalar indexing in these loops); rows are looked up by the tasks' locations.
    """

    def __init__(self, vehicle: Vehicle, stops: Sequence[Task], travel: list[list[int]]) -> None:
        n = len(stops)
        self.n = n
        self.capacity = vehicle.capacity
        self.end = vehicle.end
        self.locs = [vehicle.start, *(s.location for s in stops)]
        self.rows = [travel[a] for a in self.locs]
        self.ready = [0, *(s.ready_s for s in stops), 0]
        self.due = [NO_DEADLINE_S, *(s.due_s for s in stops), vehicle.shift_end_s]
        self.service = [0, *(s.service_s for s in stops), 0]
        end = self.end
        # leg[k]: travel from position k to k + 1.
        self.leg = [self.rows[k][self.locs[k + 1]] for k in range(n)]
        self.leg.append(self.rows[n][end] if end is not None else 0)
        self.dep = [0.0] * (n + 2)
        self.load_after = [0] * (n + 1)
        self.dep[0], self.load_after[0] = vehicle.shift_start_s, vehicle.initial_load
        self.ok = True
        for k in range(1, n + 1):
            start = max(self.dep[k - 1] + self.leg[k - 1], self.ready[k])
            if start > self.due[k]:
                self.ok = False
                return
            self.dep[k] = start + self.service[k]
            self.load_after[k] = self.load_after[k - 1] + stops[k - 1].demand
        if self.dep[n] + self.leg[n] > self.due[n + 1]:
            self.ok = False
            return
        self.latest = [0.0] * (n + 2)
        self.latest[n + 1] = self.due[n + 1]
        for k in range(n, 0, -1):
            self.latest[k] = min(self.due[k], self.latest[k + 1] - self.leg[k] - self.service[k])

    def cheapest(
        self, pickup: Task, delivery: Task, travel: list[list[int]]
    ) -> tuple[float, int, int] | None:
        """(added travel, i, j) of the cheapest feasible insertion: the pickup after position
        i, the delivery after position j >= i; ties to the earliest positions. Each of the
        O(n^2) position pairs is checked in O(1) amortised from the forward times and the
        backward "latest start" bounds; departures only grow along the route, so once one is
        past the pickup's or the delivery's due time no later position can serve it."""
        if not self.ok:
            return None
        n, capacity, end = self.n, self.capacity, self.end
        dep, load_after, latest = self.dep, self.load_after, self.latest
        ready, due, service, leg = self.ready, self.due, self.service, self.leg
        p_loc, d_loc = pickup.location, delivery.location
        t_p, t_d = travel[p_loc], travel[d_loc]
        to_p = [row[p_loc] for row in self.rows]  # position k -> pickup
        to_d = [row[d_loc] for row in self.rows]
        tail_p = t_p[end] if end is not None else 0
        tail_d = t_d[end] if end is not None else 0
        from_p = [0, *(t_p[a] for a in self.locs[1:]), tail_p]  # pickup -> position k
        from_d = [0, *(t_d[a] for a in self.locs[1:]), tail_d]
        p_to_d = t_p[d_loc]
        q = pickup.demand
        p_ready, p_due, p_service = pickup.ready_s, pickup.due_s, pickup.service_s
        d_ready, d_due, d_service = delivery.ready_s, delivery.due_s, delivery.service_s
        best: tuple[float, int, int] | None = None
        for i in range(n + 1):  # pickup right after position i
            if dep[i] > p_due:
                break
            if load_after[i] + q > capacity:
                continue
            s_p = max(dep[i] + to_p[i], p_ready)
            if s_p > p_due:
                continue
            dep_p = s_p + p_service
            pick_cost = to_p[i] - leg[i]
            s_d = max(dep_p + p_to_d, d_ready)
            if s_d <= d_due and (
                max(s_d + d_service + from_d[i + 1], ready[i + 1]) <= latest[i + 1]
            ):
                cost = pick_cost + p_to_d + from_d[i + 1]
                if best is None or cost < best[0]:
                    best = (cost, i, i)
            pick_cost += from_p[i + 1]
            prev_dep = dep_p
            for j in range(i + 1, n + 1):
                s_j = max(prev_dep + (from_p[j] if j == i + 1 else leg[j - 1]), ready[j])
                if s_j > due[j] or load_after[j] + q > capacity:
                    break  # stop j's time/load do not depend on where the delivery goes
                prev_dep = s_j + service[j]
                if prev_dep > d_due:
                    break
                s_d = max(prev_dep + to_d[j], d_ready)
                if s_d > d_due:
                    continue
                if max(s_d + d_service + from_d[j + 1], ready[j + 1]) > latest[j + 1]:
                    continue
                cost = pick_cost + to_d[j] + from_d[j + 1] - leg[j]
                if best is None or cost < best[0]:
                    best = (cost, i, j)
        return best



def insert(
    route: CourierRoute,
    pickup: Task,
    delivery: Task,
    travel_s: npt.NDArray[Any] | list[list[int]],
) -> Insertion | None:
    """Cheapest feasible insertion of the order `pickup -> delivery`, other stops kept in order.

    Feasible means: every service starts by its `due_s` (waiting for `ready_s` allowed), load
    stays within capacity, the pickup precedes its drop-off, and the route ends by
    `shift_end_s`. Exhaustive over all O(n^2) position pairs (`Schedule.cheapest`). Ties go to
    the earliest positions. Returns None when no position pair is feasible (including when
    the route is already late). `travel_s` may also be the matrix as nested lists.
    """
    stops = route.stops
    n = len(stops)
    # A local matrix over [courier, stops..., pickup, delivery, end], and the route re-indexed
    # onto it: a few small rows instead of the whole city's matrix.
    locs = [route.location, *(s.location for s in stops), pickup.location, delivery.location]
    if route.end is not None:
        locs.append(route.end)
    if isinstance(travel_s, list):
        rows = [travel_s[a] for a in locs]
        sub: list[list[int]] = [[row[b] for b in locs] for row in rows]
    else:
        sub = travel_s[np.ix_(locs, locs)].tolist()
    courier = Vehicle(id=0, start=0, end=n + 3 if route.end is not None else None,
                      shift_start_s=route.now_s, shift_end_s=route.shift_end_s,
                      capacity=route.capacity, initial_load=route.load)
    local_stops = [msgspec.structs.replace(s, location=k) for k, s in enumerate(stops, 1)]
    found = Schedule(courier, local_stops, sub).cheapest(
        msgspec.structs.replace(pickup, location=n + 1),
        msgspec.structs.replace(delivery, location=n + 2), sub)
    if found is None:
        return None
    cost, i, j = found
    new_stops = [*stops[:i], pickup, *stops[i:j], delivery, *stops[j:]]
    new_route = msgspec.structs.replace(
        route,
        stops=tuple(new_stops),
        pairs=(*route.pairs, Pair(pickup_id=pickup.id, delivery_id=delivery.id)),
    )
    return Insertion(route=new_route, pickup_index=i, delivery_index=j + 1, added_travel_s=cost)


def route_cost_s(route: CourierRoute, travel_s: npt.NDArray[Any]) -> float:
    """Travel time from the courier's position through every stop (to `end` if set)."""
    locs = [route.location, *(s.location for s in route.stops)]
    if route.end is not None:
        locs.append(route.end)
    return float(travel_s[locs[:-1], locs[1:]].sum()) if len(locs) > 1 else 0.0
