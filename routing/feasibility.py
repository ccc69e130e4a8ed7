"""Independent feasibility check of a `Plan` against its `Problem`.

Deliberately re-derives every time and load from the raw problem data instead of reusing the
schedule code the solver uses, so a bug there cannot hide itself here.
"""

from __future__ import annotations

import math
from enum import StrEnum

import msgspec

from routing.model import Plan, Problem

__all__ = ["InfeasiblePlanError", "Violation", "ViolationKind", "assert_feasible", "check_plan"]


class ViolationKind(StrEnum):
    UNKNOWN_VEHICLE = "unknown_vehicle"
    DUPLICATE_VEHICLE = "duplicate_vehicle"  # two routes for one vehicle
    UNKNOWN_TASK = "unknown_task"
    DUPLICATE_TASK = "duplicate_task"
    MISSING_TASK = "missing_task"
    WRONG_VEHICLE = "wrong_vehicle"  # a task bound to another vehicle (`Task.vehicle_id`)
    PAIR_SPLIT = "pair_split"  # pickup and delivery on different vehicles
    PRECEDENCE = "precedence"  # delivery before its pickup
    TIME_WINDOW = "time_window"  # service would start after `due_s`
    CAPACITY = "capacity"  # load above capacity (or below zero)
    SHIFT_END = "shift_end"  # back at the end location / done after `shift_end_s`
    REPORT = "report"  # the plan's own times or totals disagree with the problem data


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    kind: ViolationKind
    message: str
    vehicle_id: int | None = None
    task_id: int | None = None


class InfeasiblePlanError(ValueError):
    """Raised by `assert_feasible`; carries every violation found."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        shown = "; ".join(v.message for v in violations[:5])
        more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"infeasible plan: {shown}{more}")

    def __reduce__(self) -> tuple[type[InfeasiblePlanError], tuple[list[Violation]]]:
        return (type(self), (self.violations,))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def check_plan(problem: Problem, plan: Plan) -> list[Violation]:
    """Every rule the plan breaks; an empty list means feasible.

    Rules: each task served exactly once, by its bound vehicle if any; a pair's pickup and
    delivery on one vehicle, pickup first; service starts by `due_s` (waiting for `ready_s` is
    allowed); load within `[0, capacity]` after every stop; the vehicle leaves no earlier than
    its shift start and finishes by its shift end; reported times and totals match the data.
    """
    out: list[Violation] = []

    def flag(kind: ViolationKind, message: str, *, vehicle_id: int | None = None,
             task_id: int | None = None) -> None:
        out.append(Violation(kind=kind, message=message, vehicle_id=vehicle_id, task_id=task_id))

    tasks = problem.task_by_id()
    vehicles = problem.vehicle_by_id()
    travel = problem.travel_s
    dist = problem.dist
    where: dict[int, tuple[int, int]] = {}  # task id -> (vehicle id, position)
    seen_vehicles: set[int] = set()
    total_dist = 0.0
    total_travel_s = 0
    used = 0

    for route in plan.routes:
        vid = route.vehicle_id
        vehicle = vehicles.get(vid)
        if vehicle is None:
            flag(ViolationKind.UNKNOWN_VEHICLE, f"vehicle {vid}?")
            continue
        if vid in seen_vehicles:
            flag(ViolationKind.DUPLICATE_VEHICLE, f"vehicle {vid} has two routes", vehicle_id=vid)
        seen_vehicles.add(vid)
        used += bool(route.stops)

        t_s = vehicle.shift_start_s
        if route.depart_s != t_s:
            flag(ViolationKind.REPORT,
                 f"vehicle {vid}: depart_s {route.depart_s} != shift start {t_s}", vehicle_id=vid)
        load = vehicle.initial_load
        at = vehicle.start
        route_dist = 0.0
        route_travel_s = 0
        for pos, stop in enumerate(route.stops):
            task = tasks.get(stop.task_id)
            if task is None:
                flag(ViolationKind.UNKNOWN_TASK,
                     f"vehicle {vid}: unknown task {stop.task_id}",
                     vehicle_id=vid, task_id=stop.task_id)
                continue
            if task.id in where:
                flag(ViolationKind.DUPLICATE_TASK,
                     f"task {task.id} served twice", vehicle_id=vid, task_id=task.id)
            else:
                where[task.id] = (vid, pos)
            if task.vehicle_id is not None and task.vehicle_id != vid:
                flag(ViolationKind.WRONG_VEHICLE,
                     f"task {task.id} bound to vehicle {task.vehicle_id}, on {vid}",
                     vehicle_id=vid, task_id=task.id)
            leg_s = int(travel[at, task.location])
            route_travel_s += leg_s
            route_dist += float(dist[at, task.location])
            arrival_s = t_s + leg_s
            start_s = max(arrival_s, task.ready_s)
            if start_s > task.due_s:
                flag(ViolationKind.TIME_WINDOW,
                     f"task {task.id}: service starts {start_s} > due {task.due_s}",
                     vehicle_id=vid, task_id=task.id)
            t_s = start_s + task.service_s
            if (stop.arrival_s, stop.start_s, stop.departure_s) != (arrival_s, start_s, t_s):
                flag(ViolationKind.REPORT,
                     f"task {task.id}: reported times differ from the schedule",
                     vehicle_id=vid, task_id=task.id)
            load += task.demand
            if not 0 <= load <= vehicle.capacity:
                flag(ViolationKind.CAPACITY,
                     f"task {task.id}: load {load} outside [0, {vehicle.capacity}]",
                     vehicle_id=vid, task_id=task.id)
            at = task.location

        if vehicle.end is not None:
            leg_s = int(travel[at, vehicle.end])
            route_travel_s += leg_s
            route_dist += float(dist[at, vehicle.end])
            t_s += leg_s
        if t_s > vehicle.shift_end_s:
            flag(ViolationKind.SHIFT_END,
                 f"vehicle {vid}: finishes {t_s} > shift end {vehicle.shift_end_s}", vehicle_id=vid)
        if (
            route.end_s != t_s
            or route.travel_s != route_travel_s
            or not _close(route.dist, route_dist)
        ):
            flag(ViolationKind.REPORT,
                 f"vehicle {vid}: reported end/travel/dist differ from the data", vehicle_id=vid)
        total_dist += route_dist
        total_travel_s += route_travel_s

    for task in problem.tasks:
        if task.id not in where:
            flag(ViolationKind.MISSING_TASK, f"task {task.id} not served", task_id=task.id)
    for pair in problem.pairs:
        pick, drop = where.get(pair.pickup_id), where.get(pair.delivery_id)
        if pick is None or drop is None:
            continue  # already reported as missing
        if pick[0] != drop[0]:
            flag(ViolationKind.PAIR_SPLIT,
                 f"pair {pair.pickup_id}->{pair.delivery_id} on vehicles {pick[0]} and {drop[0]}",
                 task_id=pair.pickup_id)
        elif pick[1] > drop[1]:
            flag(ViolationKind.PRECEDENCE,
                 f"delivery {pair.delivery_id} before pickup {pair.pickup_id}",
                 vehicle_id=pick[0], task_id=pair.delivery_id)

    if (
        plan.vehicles_used != used
        or plan.travel_s != total_travel_s
        or not _close(plan.dist, total_dist)
    ):
        flag(ViolationKind.REPORT,
             f"plan totals (vehicles {plan.vehicles_used}, travel {plan.travel_s}, "
             f"dist {plan.dist}) differ from the routes")
    return out


def assert_feasible(problem: Problem, plan: Plan) -> None:
    """Raise `InfeasiblePlanError` listing every violation, if there is any."""
    violations = check_plan(problem, plan)
    if violations:
        raise InfeasiblePlanError(violations)
