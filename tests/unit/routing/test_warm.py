"""Warm start (routing.warm.replan): re-plan from the current plan after orders came or went."""

from __future__ import annotations

import msgspec
import pytest

from routing.feasibility import check_plan
from routing.model import Problem, Task, Vehicle
from routing.solver import NoSolutionError, solve
from routing.warm import replan
from tests.unit.routing.builders import line_matrix, problem_from_matrix, random_problem


def _without_last_order(problem: Problem) -> Problem:
    last = problem.pairs[-1]
    gone = {last.pickup_id, last.delivery_id}
    return msgspec.structs.replace(
        problem, tasks=tuple(t for t in problem.tasks if t.id not in gone),
        pairs=problem.pairs[:-1],
    )


def _routes(plan_routes: object) -> list[tuple[int, list[int]]]:
    return [(r.vehicle_id, list(r.task_ids)) for r in plan_routes]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 4])
def test_a_new_order_is_planned_from_the_current_routes(seed: int) -> None:
    full = random_problem(seed, n_pairs=6, n_vehicles=4)
    before = _without_last_order(full)
    current = _routes(solve(before, 10, 0, solution_limit=100).routes)
    plans = [replan(full, current, 5.0, seed=3) for _ in range(2)]
    assert check_plan(full, plans[0]) == []  # every task, the new order included
    assert plans[0] == plans[1]  # deterministic for a seed


def test_a_cancellation_drops_its_stops() -> None:
    problem = random_problem(2, n_pairs=6, n_vehicles=4)
    current = _routes(solve(problem, 10, 0, solution_limit=100).routes)
    first = problem.pairs[0]
    gone = {first.pickup_id, first.delivery_id}
    cancelled = msgspec.structs.replace(
        problem, tasks=tuple(t for t in problem.tasks if t.id not in gone),
        pairs=problem.pairs[1:],
    )
    plan = replan(cancelled, current, 5.0)
    assert check_plan(cancelled, plan) == []  # also: no task of the cancelled order
    assert plan.vehicles_used <= sum(1 for _, ids in current if ids)


def _line(positions: list[int], due: int) -> Problem:
    """Orders on a line (pickup at odd ids, delivery next), two vehicles at 0."""
    tasks = [
        Task(id=k, location=k, demand=1 if k % 2 else -1, due_s=due)
        for k in range(1, len(positions))
    ]
    pairs = [(k, k + 1) for k in range(1, len(positions), 2)]
    vehicles = [Vehicle(id=v, start=0, end=0, capacity=1) for v in range(2)]
    return problem_from_matrix(line_matrix(positions), tasks, pairs, vehicles)


def test_a_new_order_that_fits_no_route_takes_an_idle_vehicle() -> None:
    # Capacity 1 and both orders due by 25: one courier cannot serve both in time.
    problem = _line([0, 10, 12, -10, -12], due=25)
    plan = replan(problem, [(0, [1, 2])], 1.0)
    assert check_plan(problem, plan) == []
    assert plan.vehicles_used == 2


def test_a_route_the_cancellation_empties_is_dropped() -> None:
    problem = _line([0, 10, 12, -10, -12], due=25)
    cancelled = msgspec.structs.replace(
        problem, tasks=problem.tasks[:2], pairs=problem.pairs[:1]
    )
    plan = replan(cancelled, [(0, [1, 2]), (1, [3, 4])], 1.0)
    assert check_plan(cancelled, plan) == []
    assert [(r.vehicle_id, r.task_ids) for r in plan.routes if r.task_ids] == [(0, [1, 2])]


def test_a_plan_that_no_longer_holds_is_refused() -> None:
    problem = _line([0, 10, 12, -10, -12], due=25)
    with pytest.raises(NoSolutionError):
        replan(problem, [(0, [1, 2, 3, 4])], 1.0)  # the second order is late
    with pytest.raises(NoSolutionError):
        replan(problem, [(0, [1, 2]), (7, [3, 4])], 1.0)  # no vehicle 7
