"""VROOM on a Problem (routing.vroom_plan) and the large path that starts from its plan."""

from __future__ import annotations

import msgspec
import pytest

from routing.feasibility import check_plan
from routing.model import Task, make_plan
from routing.solver import SolverConfig, solve
from routing.vroom_plan import exploration_for, plain, vroom_routes
from tests.unit.routing.builders import random_problem


def test_vroom_serves_every_task_of_a_plain_problem() -> None:
    problem = random_problem(5, n_pairs=8, n_vehicles=6)
    assert plain(problem)
    routes = vroom_routes(problem, 10)
    assert routes is not None
    assert check_plan(problem, make_plan(problem, routes)) == []


def test_equal_vehicles_get_their_routes_in_one_order_every_run() -> None:
    # VROOM alone hands two equal vehicles their routes in either order (2 runs in 5).
    problem = random_problem(11, n_pairs=8, n_vehicles=8)
    answers = {repr(vroom_routes(problem, None, exploration_level=5)) for _ in range(30)}
    assert len(answers) == 1


def test_a_problem_vroom_cannot_express_gets_none() -> None:
    problem = random_problem(5, n_pairs=3, n_vehicles=2)
    pair = problem.pairs[0]
    bound = msgspec.structs.replace(
        problem,
        tasks=tuple(
            msgspec.structs.replace(t, vehicle_id=0)
            if t.id in (pair.pickup_id, pair.delivery_id) else t
            for t in problem.tasks
        ),
    )
    lone = msgspec.structs.replace(
        problem, tasks=(*problem.tasks, Task(id=99, location=0)),
    )
    for other in (bound, lone):
        assert not plain(other)
        assert vroom_routes(other, 10) is None


@pytest.mark.parametrize("seed", [3, 11])
def test_the_large_path_is_never_worse_than_vroom(seed: int) -> None:
    problem = random_problem(seed, n_pairs=10, n_vehicles=8)
    config = SolverConfig(large_tasks=4, part_tasks=8, part_solutions=30, ejection_steps=100)
    plan = solve(problem, 30, 0, solution_limit=300, config=config)
    theirs = make_plan(problem, vroom_routes(problem, 30) or [])
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) <= (theirs.vehicles_used, theirs.travel_s)


def test_the_exploration_level_shrinks_with_size_and_budget() -> None:
    assert exploration_for(200, 8.0, threads=2) == 5  # Li & Lim 200 at 10 s
    assert exploration_for(200, 8.0, threads=2, max_level=3) == 3
    assert exploration_for(1000, 8.0, threads=2) < exploration_for(200, 8.0, threads=2)
    assert exploration_for(200, 0.8, threads=2) < exploration_for(200, 8.0, threads=2)
    assert exploration_for(5000, 0.1, threads=1) == 0
