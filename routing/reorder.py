"""One courier's route: the cheapest feasible order of the stops it has left.

Re-ordering from the courier's current position, for a route already in progress: exact
(branch and bound over every order) up to `EXACT_MAX_STOPS` stops, which answers in
milliseconds; beyond that OR-Tools `solve` on the one-vehicle sub-problem, within a time limit.
Routes, costs and positions as in `routing.insertion` (travel time in seconds).

Its own module because it calls the solver: `routing.solver` uses `routing.reduce`, which uses
`routing.insertion`, so the re-ordering cannot live in `routing.insertion` without an import
cycle. Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from routing.insertion import CourierRoute, route_cost_s
from routing.model import Problem, Vehicle

__all__ = ["EXACT_MAX_STOPS", "Reoptimization", "reoptimize"]

EXACT_MAX_STOPS = 8  # exhaustive re-ordering up to here (8!/2^4 = 2520 orders at most)


class Reoptimization(msgspec.Struct, frozen=True, kw_only=True):
    route: CourierRoute
    travel_s: float
    exact: bool  # True when every feasible order was considered


def reoptimize(
    route: CourierRoute,
    travel_s: npt.NDArray[Any],
    *,
    time_limit_s: float = 0.2,
    seed: int = 0,
) -> Reoptimization | None:
    """Cheapest feasible order of the remaining stops, from the courier's current position.

    Up to `EXACT_MAX_STOPS` stops every order is searched (branch and bound, exact); beyond
    that OR-Tools `solve` runs on the one-vehicle sub-problem within `time_limit_s`, and the
    current order is kept if it is at least as good. None when no feasible order exists (exact)
    or none was found (OR-Tools).
    """
    if len(route.stops) <= EXACT_MAX_STOPS:
        return _reoptimize_exact(route, travel_s)
    return _reoptimize_ortools(route, travel_s, time_limit_s, seed)


def _reoptimize_exact(route: CourierRoute, travel_s: npt.NDArray[Any]) -> Reoptimization | None:
    stops = route.stops
    n = len(stops)
    locs = [*(s.location for s in stops), route.location]
    if route.end is not None:
        locs.append(route.end)
    if isinstance(travel_s, list):  # a matrix as plain lists: faster for many calls
        rows = [travel_s[a] for a in locs]
        sub: list[list[float]] = [[row[b] for b in locs] for row in rows]
    else:
        sub = travel_s[np.ix_(locs, locs)].tolist()
    here = n  # local index of the courier's position

    def to_end(a: int) -> float:
        return sub[a][n + 1] if route.end is not None else 0

    index_of = {s.id: k for k, s in enumerate(stops)}
    pickup_of = [-1] * n  # local index of the pickup that must come first, if still ahead
    for pair in route.pairs:
        pickup_of[index_of[pair.delivery_id]] = index_of[pair.pickup_id]

    best_cost = math.inf
    best_order: list[int] = []
    order: list[int] = []
    done = [False] * n

    def dfs(at: int, t_s: float, load: int, cost: float) -> None:
        nonlocal best_cost, best_order
        if cost >= best_cost:
            return
        if len(order) == n:
            finish = t_s + to_end(at)
            total = cost + to_end(at)
            if finish <= route.shift_end_s and total < best_cost:
                best_cost, best_order = total, order.copy()
            return
        for k in range(n):
            if done[k] or (pickup_of[k] >= 0 and not done[pickup_of[k]]):
                continue
            s = stops[k]
            new_load = load + s.demand
            start = max(t_s + sub[at][k], s.ready_s)
            if start > s.due_s or not 0 <= new_load <= route.capacity:
                continue
            done[k] = True
            order.append(k)
            dfs(k, start + s.service_s, new_load, cost + sub[at][k])
            order.pop()
            done[k] = False

    dfs(here, route.now_s, route.load, 0.0)
    if not math.isfinite(best_cost):
        return None
    new_route = msgspec.structs.replace(route, stops=tuple(stops[k] for k in best_order))
    return Reoptimization(route=new_route, travel_s=best_cost, exact=True)


def _reoptimize_ortools(
    route: CourierRoute, travel_s: npt.NDArray[Any], time_limit_s: float, seed: int
) -> Reoptimization | None:
    # Imported here: OR-Tools is only needed for long routes, keep the exact case import-light.
    from routing.solver import InfeasibleProblemError, NoSolutionError, solve

    # Sub-problem on the few locations involved: location k = stop k, then courier, then end.
    stops = route.stops
    n = len(stops)
    locs = [*(s.location for s in stops), route.location]
    if route.end is not None:
        locs.append(route.end)
    sub_travel = np.asarray(travel_s)[np.ix_(locs, locs)]
    if not np.issubdtype(sub_travel.dtype, np.integer):
        sub_travel = np.ceil(sub_travel).astype(np.int64)  # OR-Tools needs integers
    tasks = tuple(msgspec.structs.replace(s, location=k, vehicle_id=0) for k, s in enumerate(stops))
    problem = Problem(
        travel_s=sub_travel,
        dist=sub_travel.astype(np.float64),
        tasks=tasks,
        pairs=route.pairs,
        vehicles=(
            Vehicle(
                id=0,
                start=n,
                end=n + 1 if route.end is not None else None,
                shift_start_s=route.now_s,
                shift_end_s=route.shift_end_s,
                capacity=route.capacity,
                initial_load=route.load,
            ),
        ),
    )
    current_s = route_cost_s(route, travel_s) if _order_feasible(route, travel_s) else math.inf
    try:
        plan = solve(problem, time_limit_s, seed)
    except (InfeasibleProblemError, NoSolutionError):
        plan = None
    if plan is None or plan.travel_s >= current_s:
        if math.isinf(current_s):
            return None
        return Reoptimization(route=route, travel_s=current_s, exact=False)
    by_id = {s.id: s for s in stops}
    order = plan.routes[0].task_ids
    new_route = msgspec.structs.replace(route, stops=tuple(by_id[i] for i in order))
    return Reoptimization(route=new_route, travel_s=route_cost_s(new_route, travel_s), exact=False)


def _order_feasible(route: CourierRoute, travel_s: npt.NDArray[Any]) -> bool:
    t_s, at, load = float(route.now_s), route.location, route.load
    for s in route.stops:
        t_s = max(t_s + float(travel_s[at, s.location]), s.ready_s)
        load += s.demand
        if t_s > s.due_s or not 0 <= load <= route.capacity:
            return False
        t_s += s.service_s
        at = s.location
    if route.end is not None:
        t_s += float(travel_s[at, route.end])
    return t_s <= route.shift_end_s
