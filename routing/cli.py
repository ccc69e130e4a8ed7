"""Entry point behind `homechef routing solve FILE --time-limit S` (wired up in `api/cli.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from routing.feasibility import assert_feasible
from routing.lilim import read_lilim
from routing.solver import Progress, solve

__all__ = ["solve_file"]


def solve_file(path: str, time_limit_s: float, seed: int = 0,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Solve a Li & Lim file and return the CLI's result; `log`, if given, gets a line on
    what is being solved and one as each phase of the solver ends (the CLI's stderr).

    `{"instance", "vehicles", "distance", "seconds", "routes"}`: routes are task (node) ids in
    visiting order without the depot; distance is the unrounded Euclidean total; seconds is the
    wall time of reading plus solving.

    Raises:
        LiLimFormatError: the file cannot be parsed (a ValueError naming the line).
        InfeasibleProblemError: some order can be served by no vehicle (a ValueError).
        NoSolutionError: no complete plan within the budget (a RuntimeError).
        InfeasiblePlanError: the plan fails the independent check (a solver bug; ValueError).
    """
    started = time.perf_counter()
    instance = read_lilim(path)
    problem = instance.problem
    on_phase = None
    if log is not None:
        orders, fleet = len(problem.pairs), len(problem.vehicles)
        log(f"{instance.name}: {orders} order{'s' * (orders != 1)}, {fleet} "
            f"vehicle{'s' * (fleet != 1)} available; solving for {time_limit_s:g} s (seed {seed})")

        def on_phase(p: Progress) -> None:
            log(f"  {p.elapsed_s:6.2f} s  {p.phase:<16} {p.vehicles:4d} vehicles "
                f"{p.dist:12.2f} distance")
    plan = solve(problem, time_limit_s, seed, progress=on_phase)
    assert_feasible(problem, plan)
    return {
        "instance": instance.name,
        "vehicles": plan.vehicles_used,
        "distance": plan.dist,
        "seconds": round(time.perf_counter() - started, 3),
        "routes": [route.task_ids for route in plan.routes],
    }
