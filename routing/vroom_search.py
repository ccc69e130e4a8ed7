"""Improve a complete plan of a plain problem with VROOM's search as the inner engine.

Two moves, tried in this order until the deadline; each result is kept only if it serves every
task, passes `check_plan` and is better in (vehicles, travel), so the plan never gets worse:

1. *Parts* (`routing.decompose.improve_by_parts`), each solved by VROOM twice: from scratch on
   the part's vehicles and from the part's own routes. When a whole round of parts finds
   nothing, the parts grow by half (more routes each), up to half the tasks. At most half
   the time, and only on plans of 8 routes or more.
2. *Ruin and recreate*, the rest of the time: the 5-20 orders nearest a random stop are
   taken out, and VROOM's local search puts them back (it inserts unassigned orders),
   searching only the routes that lost orders: the other routes stay as they are.

Why VROOM: at 200 orders, after route elimination, OR-Tools' ILS on a part of ~60 tasks
barely moved the plan in the seconds left (LRC1_2_10 at 12 vehicles: 18.4 % over the
best-known distance after 4 s of parts), while VROOM on the same parts reached 2.9 % in 3 s
(ADR 0041). Parts help most when routes are short (many small routes: Li & Lim
type 1). With a few long routes (type 2) a part is two whole routes and VROOM rarely finds
better; ruin and recreate across routes is what shortens those (LR2_2_10: 9.9 % -> 2.0 %).
A ruin's recreate on the routes it touched, not the whole plan, is ~5x faster (~20 against
~90 ms a step at 200 orders) and so tries ~5x more ruins in the same time (ADR 0042).

Deterministic for a seed when `max_steps` is given (VROOM then runs without a timeout): the
clock only decides how many steps are tried otherwise.
"""

from __future__ import annotations

import random
import time

from routing.decompose import Routes, SolvePart, improve_by_parts, part_problem, plan_rank
from routing.feasibility import check_plan
from routing.model import Problem, make_plan
from routing.vroom_plan import vroom_from, vroom_routes

__all__ = ["improve_with_vroom", "vroom_part_solver"]

PART_GROWTH = 1.5
# Parts stop growing past half the tasks: a part that large is most of the plan, VROOM from
# scratch on it costs seconds and rarely wins.
MAX_PART_SHARE = 0.5
# Parts get at most half the time and need 8 routes: on fewer, longer routes (Li & Lim type
# 2 has 3-7 after route elimination) ruin and recreate did better on the time (ADR 0042).
PARTS_SHARE = 0.5
MIN_PART_ROUTES = 8
RUIN_ORDERS = (5, 20)


def _complete(problem: Problem, routes: Routes | None) -> Routes | None:
    """`routes` without empty ones if they serve every task feasibly, else None."""
    if routes is None or sum(len(ids) for _, ids in routes) < len(problem.tasks):
        return None
    if check_plan(problem, make_plan(problem, routes)):
        return None
    return [(v, ids) for v, ids in routes if ids]


def vroom_part_solver(deadline: float | None, *, level: int = 5, threads: int = 1) -> SolvePart:
    """A `SolvePart` for `improve_by_parts`: the better of VROOM from scratch on the part's
    vehicles and VROOM's local search from the part's routes (None if neither serves every
    task). `deadline` None: VROOM runs without a timeout (reproducible)."""

    def seconds() -> float | None:
        return None if deadline is None else max(0.001, deadline - time.monotonic())

    def solve_part(sub: Problem, part: Routes) -> Routes | None:
        if deadline is not None and time.monotonic() >= deadline:
            return None
        best: Routes | None = None
        for found in (
            vroom_routes(sub, seconds(), exploration_level=level, threads=threads),
            vroom_from(sub, part, seconds(), exploration_level=level, threads=threads),
        ):
            complete = _complete(sub, found)
            if complete is not None and (
                best is None or plan_rank(sub, complete) < plan_rank(sub, best)
            ):
                best = complete
        return best

    return solve_part


def improve_with_vroom(
    problem: Problem,
    routes: Routes,
    deadline: float,
    seed: int = 0,
    *,
    part_tasks: int = 60,
    threads: int = 1,
    max_steps: int | None = None,
) -> Routes:
    """`routes` (complete, feasible, `problem` plain) improved by VROOM parts, then ruin and
    recreate, until `deadline` (`time.monotonic()`) or `max_steps` VROOM runs of each kind
    (then without VROOM timeouts: the result depends only on the seed)."""
    current = [(v, list(ids)) for v, ids in routes if ids]
    vroom_deadline = None if max_steps is not None else deadline
    size = part_tasks
    start = time.monotonic()
    # In reproducible mode the step counts bound the parts, not the clock.
    parts_end = deadline if max_steps is not None else start + (deadline - start) * PARTS_SHARE
    solve = vroom_part_solver(vroom_deadline, threads=threads)
    calls = 0

    def counted(sub: Problem, part: Routes) -> Routes | None:
        nonlocal calls
        calls += 1
        return solve(sub, part)

    while (len(current) >= MIN_PART_ROUTES and time.monotonic() < parts_end
           and (max_steps is None or calls < max_steps)):
        current = improve_by_parts(
            problem, current, counted, parts_end, seed, part_tasks=size,
            max_parts=None if max_steps is None else max_steps - calls)
        size = round(size * PART_GROWTH)
        if size > len(problem.tasks) * MAX_PART_SHARE:
            break
    return _ruin_and_recreate(problem, current, deadline, seed, threads, max_steps)


def _ruin_and_recreate(
    problem: Problem, routes: Routes, deadline: float, seed: int, threads: int,
    max_steps: int | None,
) -> Routes:
    rng = random.Random(seed)
    tasks = problem.task_by_id()
    pairs = list(problem.pairs)
    current, rank = routes, plan_rank(problem, routes)
    step = 0
    while time.monotonic() < deadline and (max_steps is None or step < max_steps):
        step += 1
        centre = problem.travel_s[rng.choice(problem.tasks).location]
        near = sorted(
            pairs,
            key=lambda p: (min(centre[tasks[p.pickup_id].location],
                               centre[tasks[p.delivery_id].location]), p.pickup_id),
        )[: rng.randint(*RUIN_ORDERS)]
        out = {i for p in near for i in (p.pickup_id, p.delivery_id)}
        # Only the routes the ruin touched are searched: the rest of the plan is left as
        # it is, and VROOM's local search on a few routes is ~5x faster than on all.
        touched = [r for r in current if not out.isdisjoint(r[1])]
        sub = part_problem(problem, touched)
        ruined = [(v, [i for i in ids if i not in out]) for v, ids in touched]
        seconds = None if max_steps is not None else max(0.001, deadline - time.monotonic())
        recreated = _complete(sub, vroom_from(sub, ruined, seconds, threads=threads))
        if recreated is None:
            continue
        found = [r for r in current if out.isdisjoint(r[1])] + recreated
        if (new := plan_rank(problem, found)) < rank:
            current, rank = found, new
    return current
