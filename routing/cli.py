"""Entry point behind `homechef routing solve FILE --time-limit S` (wired up in `api/cli.py`)."""

from __future__ import annotations

import time
from typing import Any

from routing.feasibility import assert_feasible
from routing.lilim import read_lilim
from routing.solver import solve

__all__ = ["solve_file"]


def solve_file(path: str, time_limit_s: float, seed: int = 0) -> dict[str, Any]:
    """Solve a Li & Lim file and return the CLI's result.

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
    plan = solve(instance.problem, time_limit_s, seed)
    assert_feasible(instance.problem, plan)
    return {
        "instance": instance.name,
        "vehicles": plan.vehicles_used,
        "distance": plan.dist,
        "seconds": round(time.perf_counter() - started, 3),
        "routes": [route.task_ids for route in plan.routes],
    }
