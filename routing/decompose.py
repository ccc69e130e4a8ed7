"""Improve a complete plan a few neighbouring routes at a time (decomposition).

At 200 customers and more, one OR-Tools ruin-and-recreate iteration on the whole plan costs
~4x what it costs at 100 (docs/routing.md, "Large instances"), and a restart from a plan
cannot start from it exactly: OR-Tools rebuilds a first-solution hint lossily (on Li & Lim
200 it comes back with ~10 % of the tasks left out and ~1.7x the travel). So the plan is
improved by parts instead: a few routes close to each other form a sub-problem (their tasks,
their vehicles) small enough for a fast search *from scratch*; its answer replaces those
routes only if it serves every one of their tasks with fewer vehicles or less travel. The
rest of the plan is untouched, so each accepted step keeps the whole plan feasible and never
makes it worse (the vehicles' fixed cost also lets a part end with one route fewer).

Pure: the sub-problem solver is passed in (`SolvePart`), so this module needs no OR-Tools.
Deterministic for a seed: the clock only decides how many parts are tried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import msgspec
import numpy as np

from routing.model import Problem, make_plan

__all__ = [
    "Routes", "SolvePart", "improve_by_parts", "neighbour_routes", "part_problem", "plan_rank",
]

Routes = list[tuple[int, list[int]]]
# (sub-problem, its current routes) -> new routes for it, or None.
SolvePart = Callable[[Problem, Routes], Routes | None]


def neighbour_routes(problem: Problem, routes: Routes) -> list[list[int]]:
    """For each route (index into `routes`), the other routes, nearest first.

    Nearness of route b to route a: the mean, over a's stops, of the travel time from the
    stop to b's nearest stop (and back, halved: travel may be asymmetric). Two routes that
    interleave in space score near zero."""
    tasks = problem.task_by_id()
    locs = [np.array([tasks[i].location for i in ids]) for _, ids in routes]
    travel = problem.travel_s
    n = len(routes)
    score = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a != b and len(locs[a]) and len(locs[b]):
                sub = travel[np.ix_(locs[a], locs[b])] + travel[np.ix_(locs[b], locs[a])].T
                score[a, b] = sub.min(axis=1).mean() / 2
    return [sorted((b for b in range(n) if b != a), key=lambda b: (score[a, b], b))
            for a in range(n)]


def part_problem(problem: Problem, routes: Routes) -> Problem:
    """The sub-problem of `routes`: their tasks, the pairs among them, their vehicles (same
    matrices: locations keep their indices)."""
    ids = {i for _, r in routes for i in r}
    vehicle_ids = {v for v, _ in routes}
    return msgspec.structs.replace(
        problem,
        tasks=tuple(t for t in problem.tasks if t.id in ids),
        pairs=tuple(p for p in problem.pairs if p.pickup_id in ids),
        vehicles=tuple(v for v in problem.vehicles if v.id in vehicle_ids),
    )


def plan_rank(problem: Problem, routes: Routes) -> tuple[int, int]:
    """The lexicographic objective of `routes`: (vehicles used, travel)."""
    plan = make_plan(problem, routes)
    return plan.vehicles_used, plan.travel_s


def improve_by_parts(
    problem: Problem,
    routes: Routes,
    solve_part: SolvePart,
    deadline: float,
    seed: int = 0,
    *,
    part_tasks: int = 80,
    max_parts: int | None = None,
    focus: set[int] | None = None,
) -> Routes:
    """`routes` (complete, feasible) improved part by part until `deadline`
    (`time.monotonic()`) or `max_parts` sub-problems.

    Each part: a seed route (every route in turn, in a seeded order, reshuffled each round)
    and its nearest routes until the part holds at least `part_tasks` tasks (two routes at
    least). The part's answer from `solve_part` replaces its routes when it serves the same
    tasks with a better (vehicles, travel); a route emptied there is dropped. Stops early
    once no part left to try is new (a part whose routes are unchanged since it failed is
    not tried again: the part solver is deterministic). With `focus` (vehicle ids), only
    routes of those vehicles seed parts (a warm start improves around what changed).
    """
    rng = random.Random(seed)
    current = [(v, list(ids)) for v, ids in routes if ids]
    failed: set[frozenset[tuple[int, tuple[int, ...]]]] = set()  # parts known not to improve
    tried = 0
    while len(current) >= 2:
        neighbours = neighbour_routes(problem, current)
        order = list(range(len(current)))
        rng.shuffle(order)
        if focus is not None:
            order = [k for k in order if current[k][0] in focus]
        for seed_route in order:
            if time.monotonic() >= deadline or (max_parts is not None and tried >= max_parts):
                return current
            members = [seed_route]
            size = len(current[seed_route][1])
            for b in neighbours[seed_route]:
                if size >= part_tasks and len(members) >= 2:
                    break
                members.append(b)
                size += len(current[b][1])
            part = [current[k] for k in members]
            key = frozenset((v, tuple(ids)) for v, ids in part)
            if key in failed:
                continue
            sub = part_problem(problem, part)
            tried += 1
            found = solve_part(sub, part)
            if found is not None:
                found = [(v, ids) for v, ids in found if ids]
                served = sorted(i for _, ids in found for i in ids)
                if served == sorted(t.id for t in sub.tasks) and plan_rank(sub, found) < plan_rank(
                    sub, part
                ):
                    current = [r for k, r in enumerate(current) if k not in members] + found
                    break  # routes changed: recompute the neighbours
            failed.add(key)
        else:
            return current  # a whole round of parts without an improvement
    return current
