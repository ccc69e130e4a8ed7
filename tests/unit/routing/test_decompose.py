"""Improvement by parts (routing.decompose) and the solver's large-instance path."""

from __future__ import annotations

import time

import msgspec
import pytest

from routing.decompose import Routes, improve_by_parts, neighbour_routes, part_problem
from routing.feasibility import check_plan
from routing.model import Problem, Task, Vehicle, make_plan
from routing.solver import DEFAULT_CONFIG, SolverConfig, _Model, solve
from tests.unit.routing.builders import line_matrix, problem_from_matrix, random_problem


def _line_orders() -> Problem:
    """Four orders on a line, each pickup 1 before its delivery, at -21/-20, -11/-10, +10/+11,
    +20/+21; four vehicles at 0 with room for two orders at once. Optimal: one route, one
    side then the other (travel 84)."""
    positions = [0, -21, -20, -11, -10, 10, 11, 20, 21]
    tasks = [
        Task(id=k, location=k, demand=1 if k % 2 else -1) for k in range(1, len(positions))
    ]
    pairs = [(1, 2), (3, 4), (5, 6), (7, 8)]
    vehicles = [Vehicle(id=v, start=0, end=0, capacity=2) for v in range(4)]
    return problem_from_matrix(line_matrix(positions), tasks, pairs, vehicles)


ONE_ORDER_EACH: Routes = [(0, [1, 2]), (1, [5, 6]), (2, [3, 4]), (3, [7, 8])]


def test_part_problem_keeps_the_tasks_pairs_and_vehicles_of_its_routes() -> None:
    problem = _line_orders()
    sub = part_problem(problem, [(0, [1, 2]), (2, [3, 4])])
    assert sorted(t.id for t in sub.tasks) == [1, 2, 3, 4]
    assert sorted((p.pickup_id, p.delivery_id) for p in sub.pairs) == [(1, 2), (3, 4)]
    assert [v.id for v in sub.vehicles] == [0, 2]
    assert sub.travel_s.shape == problem.travel_s.shape  # locations keep their indices


def test_neighbour_routes_puts_the_route_on_the_same_side_first() -> None:
    near = neighbour_routes(_line_orders(), ONE_ORDER_EACH)
    # Route 0 serves -21/-20: the -11/-10 route (index 2) is nearest, the +20/+21 one last.
    assert near[0] == [2, 1, 3]
    assert near[3] == [1, 2, 0]


def _exact_part(sub: Problem, part: Routes) -> Routes | None:
    return _Model(sub, 0, DEFAULT_CONFIG).search(DEFAULT_CONFIG, 5.0, 50, part)


def test_parts_merge_the_routes_into_the_optimum() -> None:
    problem = _line_orders()
    before = make_plan(problem, ONE_ORDER_EACH)
    routes = improve_by_parts(problem, ONE_ORDER_EACH, _exact_part, time.monotonic() + 30,
                              part_tasks=4)
    plan = make_plan(problem, routes)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == (1, 84)
    assert before.vehicles_used == 4


@pytest.mark.parametrize(
    "answer",
    [
        [(0, [1, 3, 4, 2]), (1, [5, 6])],  # leaves an order out
        [(0, [1, 2, 5, 6]), (1, [3, 4, 7, 8])],  # feasible, both sides each: travel 128
    ],
)
def test_a_part_answer_that_is_worse_or_incomplete_is_not_taken(answer: Routes) -> None:
    problem = _line_orders()
    start: Routes = [(0, [1, 3, 4, 2]), (1, [5, 7, 8, 6])]  # 2 vehicles, travel 84
    calls: list[Routes] = []

    def worse(sub: Problem, part: Routes) -> Routes | None:
        calls.append(part)
        return answer

    routes = improve_by_parts(problem, start, worse, time.monotonic() + 30, part_tasks=4)
    assert routes == start
    # Both seed routes make the same part: tried once (same routes, same answer).
    assert calls == [[(1, [5, 7, 8, 6]), (0, [1, 3, 4, 2])]] or calls == [start]


def test_max_parts_bounds_the_work_and_the_result_is_deterministic() -> None:
    problem = random_problem(5, n_pairs=6, n_vehicles=6)
    single = [(v.id, [p.pickup_id, p.delivery_id])
              for v, p in zip(problem.vehicles, problem.pairs, strict=True)]
    assert check_plan(problem, make_plan(problem, single)) == []
    calls: list[int] = []

    def counted(sub: Problem, part: Routes) -> Routes | None:
        calls.append(1)
        return _exact_part(sub, part)

    first = improve_by_parts(problem, single, counted, time.monotonic() + 30, 3, max_parts=2)
    assert len(calls) == 2
    again = improve_by_parts(problem, single, _exact_part, time.monotonic() + 30, 3,
                             max_parts=2)
    assert first == again
    assert check_plan(problem, make_plan(problem, first)) == []


@pytest.mark.parametrize("start", ["vroom", "ils"])
def test_the_large_instance_path_is_feasible_and_reproducible(start: str) -> None:
    problem = random_problem(11, n_pairs=8, n_vehicles=8)
    config = msgspec.structs.replace(
        SolverConfig(), large_tasks=4, part_tasks=6, part_solutions=20, ejection_steps=50,
        large_start=start,
    )
    plans = [solve(problem, 30, 2, solution_limit=200, config=config) for _ in range(2)]
    assert check_plan(problem, plans[0]) == []
    assert plans[0] == plans[1]
