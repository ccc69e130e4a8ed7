"""VROOM (pyvroom) on a `Problem`: a construction for the large-instance path, and the bench's
baseline.

Same integer model as `routing.solver`: durations and costs are the integer travel times, and a
fixed cost per used vehicle larger than any travel saving makes the objective lexicographic
(vehicles, then travel). VROOM is deterministic for a given input and exploration level.

Only *plain* problems are handed over: every task in a pickup/delivery pair, no task bound to a
vehicle, no initial load (what Li & Lim and the generated bench instances are). Others get
None and the solver does without (`plain`).
"""

from __future__ import annotations

from datetime import timedelta

from routing.model import Problem, Vehicle

__all__ = ["exploration_for", "plain", "vroom_from", "vroom_routes"]

Routes = list[tuple[int, list[int]]]


def plain(problem: Problem) -> bool:
    """True if VROOM's shipment model expresses `problem` exactly."""
    paired = 2 * len(problem.pairs)
    return (
        paired == len(problem.tasks)
        and all(t.vehicle_id is None for t in problem.tasks)
        and all(v.initial_load == 0 for v in problem.vehicles)
    )


# CPU seconds of one VROOM solve on one thread at 200 tasks, by exploration level 0-5 (the
# dearer of the Li & Lim 200 instances measured: LR2_2_2, LR1_2_6, LC1_2_3). It grows like
# tasks^1.4 (a 500-order generated instance: level 0 2.7 s, level 2 7.0 s).
_LEVEL_CPU_S_AT_200 = (0.4, 1.0, 1.3, 3.0, 4.7, 7.0)


def exploration_for(n_tasks: int, seconds: float, threads: int, max_level: int = 5) -> int:
    """The highest exploration level (at most `max_level`, at least 0) whose expected solve
    fits `seconds` on `threads` threads. VROOM's timeout does not bound its construction
    heuristics (a 500-order instance at level 5 took ~90 s under a 10 s timeout), so the
    level, not the timeout, is what keeps it within a budget."""
    growth = (max(n_tasks, 1) / 200) ** 1.4
    for level in range(min(max_level, 5), 0, -1):
        if _LEVEL_CPU_S_AT_200[level] * growth / max(1, threads) <= seconds:
            return level
    return 0


def vroom_routes(
    problem: Problem,
    time_limit_s: float | None,
    *,
    exploration_level: int = 5,
    threads: int = 1,
) -> Routes | None:
    """VROOM's routes (vehicle id, task ids) serving every task; None if the problem is not
    `plain` or VROOM left a task unassigned. Not checked: callers run `check_plan`.
    `time_limit_s` None: no timeout (VROOM is then deterministic for its input and level)."""
    if not plain(problem) or not problem.tasks:
        return None
    routes = _solve(problem, [(v.id, []) for v in problem.vehicles], time_limit_s,
                    exploration_level, threads)
    if sum(len(ids) for _, ids in routes) < len(problem.tasks):
        return None
    return routes


def vroom_from(
    problem: Problem,
    routes: Routes,
    time_limit_s: float | None,
    *,
    exploration_level: int = 5,
    threads: int = 1,
) -> Routes | None:
    """VROOM's local search started from `routes` (its initial solution), on their vehicles
    only; tasks no route holds are VROOM's to place. The answer may leave some out (callers
    check). Far cheaper than `vroom_routes` (no construction heuristics): 0.03-2 CPU s at
    200 tasks. None if the problem is not `plain`."""
    if not plain(problem):
        return None
    return _solve(problem, routes, time_limit_s, exploration_level, threads)


def _solve(
    problem: Problem, routes: Routes, time_limit_s: float | None, level: int, threads: int
) -> Routes:
    # Imported on first use: pyvroom loads pandas (~1.5 s of a solver process's start, which
    # the small problems of the routing API never need).
    import vroom

    inp = vroom.Input()
    travel = problem.travel_s
    inp.set_durations_matrix("car", travel)
    inp.set_costs_matrix("car", travel)
    fixed = int(travel.max()) * (len(problem.tasks) + 2 * len(problem.vehicles)) + 1
    tasks = problem.task_by_id()
    vehicles = problem.vehicle_by_id()
    for vehicle_id, ids in routes:
        v = vehicles[vehicle_id]
        steps = [
            vroom.VehicleStep("pickup" if tasks[i].demand > 0 else "delivery", i) for i in ids
        ]
        if steps:
            steps = [vroom.VehicleStep("start"), *steps, vroom.VehicleStep("end")]
        inp.add_vehicle(
            vroom.Vehicle(
                v.id,
                start=v.start,
                end=v.end,
                capacity=vroom.Amount([v.capacity]),
                time_window=vroom.TimeWindow(v.shift_start_s, v.shift_end_s),
                costs=vroom.VehicleCosts(fixed=fixed),
                steps=steps,
            )
        )
    for pair in problem.pairs:
        pick, drop = (
            vroom.ShipmentStep(
                t.id,
                t.location,
                default_service=t.service_s,
                time_windows=[vroom.TimeWindow(t.ready_s, t.due_s)],
            )
            for t in (tasks[pair.pickup_id], tasks[pair.delivery_id])
        )
        inp.add_shipment(pick, drop, amount=vroom.Amount([tasks[pair.pickup_id].demand]))
    solution = inp.solve(
        exploration_level=level,
        nb_threads=threads,
        timeout=None if time_limit_s is None else timedelta(seconds=max(0.001, time_limit_s)),
    )
    return _canonical(problem, [
        (r["vehicle"], [s["id"] for s in r["steps"] if s["type"] in ("pickup", "delivery")])
        for r in solution.to_dict()["routes"]
    ])


def _canonical(problem: Problem, routes: Routes) -> Routes:
    """`routes` with the routes of interchangeable vehicles (equal but for the id) handed to
    them in one order: task ids ascending to vehicle ids ascending. VROOM hands equal
    vehicles their routes in an order that varies from run to run, even on one thread
    (measured: 2 of 5 runs swapped two routes), and the solver promises one plan per seed."""
    def kind(v: Vehicle) -> tuple[object, ...]:
        return (v.start, v.end, v.shift_start_s, v.shift_end_s, v.capacity, v.initial_load)

    by_id = problem.vehicle_by_id()
    groups: dict[tuple[object, ...], list[int]] = {}
    for vehicle_id, _ in routes:
        groups.setdefault(kind(by_id[vehicle_id]), []).append(vehicle_id)
    held = dict(routes)
    moved: dict[int, list[int]] = {}
    for ids in groups.values():
        tasks = sorted((held[i] for i in ids), key=lambda t: (not t, t))
        moved.update(zip(sorted(ids), tasks, strict=True))
    return sorted(moved.items())
