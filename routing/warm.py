"""Warm start for a live day: re-plan from the current plan after orders came or went.

The dispatcher's "re-optimise routes in progress": one new order or one cancellation should
not cost a full `solve` (seconds, and a plan that may look nothing like the one couriers are
following). `replan` keeps the current routes, takes the cancelled tasks out, puts the new
orders in with the ejection pool (`routing.reduce`, exact routes, every step feasible), runs
VROOM's local search from the result (`routing.vroom_plan.vroom_from`, plain problems), then
improves only the parts of the plan around the routes that changed (`routing.decompose`,
`focus`), until its budget ends. A fraction of a second at 200 stops.

Pure and deterministic for a seed, as `solve` (the clock only decides how many parts are
tried).
"""

from __future__ import annotations

import time

import msgspec

from routing.decompose import improve_by_parts
from routing.feasibility import ViolationKind, check_plan
from routing.model import Plan, Problem, make_plan
from routing.reduce import reinsert_orders
from routing.solver import DEFAULT_CONFIG, NoSolutionError, SolverConfig, part_solver
from routing.vroom_plan import plain, vroom_from

__all__ = ["replan"]

Routes = list[tuple[int, list[int]]]

# Parts searched by a warm start: smaller than a full solve's so several fit in its budget.
WARM_CONFIG = msgspec.structs.replace(DEFAULT_CONFIG, part_solutions=100)


def replan(
    problem: Problem,
    routes: Routes,
    time_limit_s: float = 0.5,
    seed: int = 0,
    *,
    config: SolverConfig = WARM_CONFIG,
) -> Plan:
    """`problem` planned from `routes`, the current plan (vehicle id, task ids in order).

    Task ids in `routes` that `problem` no longer has (cancelled orders) are dropped; tasks
    of `problem` that no route holds (new orders) are inserted, on the routes' vehicles if
    the ejection pool manages, else with one idle vehicle more. Routes the removals leave
    empty are dropped. The routes that changed then seed improvement by parts until
    `time_limit_s`; an improved plan never has more vehicles or more travel.

    Raises:
        NoSolutionError: the new orders fit neither the current routes nor an idle vehicle,
            or a current route is no longer feasible (then a full `solve` is needed).
    """
    started = time.monotonic()
    deadline = started + time_limit_s
    known = {t.id for t in problem.tasks}
    vehicles = problem.vehicle_by_id()
    current: Routes = []
    changed: set[int] = set()
    for vehicle_id, ids in routes:
        if vehicle_id not in vehicles:
            raise NoSolutionError(f"vehicle {vehicle_id} is not in the problem")
        kept = [i for i in ids if i in known]
        if len(kept) < len(ids):
            changed.add(vehicle_id)
        if kept:
            current.append((vehicle_id, kept))
    broken = [
        v for v in check_plan(problem, make_plan(problem, current))
        if v.kind != ViolationKind.MISSING_TASK  # the new orders, placed below
    ]
    if broken:
        raise NoSolutionError("the current plan is no longer feasible: solve afresh")
    placed = {i for _, ids in current for i in ids}
    if len(placed) < len(known):
        # The pool gets most of the budget: without the new orders there is no plan at all.
        pool_end = started + 0.8 * time_limit_s
        before = {v: list(ids) for v, ids in current}
        done = reinsert_orders(problem, current, pool_end, seed)
        if done is None:
            idle = [v.id for v in problem.vehicles if v.id not in before]
            if not idle:
                raise NoSolutionError("the new orders fit no route and no vehicle is idle")
            done = reinsert_orders(problem, [*current, (idle[0], [])], pool_end, seed)
        if done is None:
            raise NoSolutionError("the new orders fit neither the routes nor an idle vehicle")
        current = [(v, ids) for v, ids in done if ids]
        changed |= {v for v, ids in current if before.get(v) != ids}
    if changed and plain(problem):
        # VROOM's local search from the plan: tens of ms at 200 stops when all are placed.
        polished = vroom_from(problem, current, max(0.001, deadline - time.monotonic()))
        if polished is not None and _better(problem, polished, current):
            current = [(v, ids) for v, ids in polished if ids]
    if len(current) >= 2 and changed:
        current = improve_by_parts(
            problem, current, part_solver(config, seed, deadline), deadline, seed,
            part_tasks=config.part_tasks, focus=changed,
        )
    return make_plan(problem, current)


def _better(problem: Problem, found: Routes, current: Routes) -> bool:
    """`found` serves every task of `current`, feasibly, with fewer vehicles or less travel."""
    if sum(len(ids) for _, ids in found) < sum(len(ids) for _, ids in current):
        return False
    new, old = make_plan(problem, found), make_plan(problem, current)
    if check_plan(problem, new):
        return False
    return (new.vehicles_used, new.travel_s) < (old.vehicles_used, old.travel_s)
