"""Improvement with VROOM as the inner search (routing.vroom_search)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from routing import vroom_search
from routing.decompose import Routes
from routing.feasibility import check_plan
from routing.model import Problem, make_plan
from routing.vroom_search import improve_with_vroom, vroom_part_solver
from tests.unit.routing.builders import random_problem
from tests.unit.routing.test_decompose import ONE_ORDER_EACH, _line_orders


def test_single_order_routes_are_merged_into_the_optimum() -> None:
    problem = _line_orders()
    routes = improve_with_vroom(problem, ONE_ORDER_EACH, time.monotonic() + 30, part_tasks=4,
                                max_steps=5)
    plan = make_plan(problem, routes)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == (1, 84)


def test_the_plan_only_gets_better_and_a_seed_gives_one_answer() -> None:
    problem = random_problem(5, n_pairs=6, n_vehicles=6)
    single: Routes = [(v.id, [p.pickup_id, p.delivery_id])
                      for v, p in zip(problem.vehicles, problem.pairs, strict=True)]
    before = make_plan(problem, single)
    runs = [improve_with_vroom(problem, single, time.monotonic() + 30, 3, part_tasks=4,
                               max_steps=8) for _ in range(2)]
    assert runs[0] == runs[1]
    plan = make_plan(problem, runs[0])
    assert check_plan(problem, plan) == []
    assert sorted(i for _, ids in runs[0] for i in ids) == sorted(t.id for t in problem.tasks)
    assert (plan.vehicles_used, plan.travel_s) < (before.vehicles_used, before.travel_s)


def test_a_part_vroom_cannot_serve_whole_is_no_answer() -> None:
    """Orders at opposite ends of the line, each due 25 after the start, on a part of one
    vehicle: no route serves both, VROOM leaves one out, and the part solver answers None
    (the part keeps its routes)."""
    problem = _line_orders()
    due = {2: 25, 6: 25}
    part = msgspec.structs.replace(
        problem,
        tasks=tuple(msgspec.structs.replace(t, due_s=due.get(t.id, t.due_s))
                    for t in problem.tasks if t.id in (1, 2, 5, 6)),
        pairs=tuple(p for p in problem.pairs if p.pickup_id in (1, 5)),
        vehicles=problem.vehicles[:1],
    )
    solve = vroom_part_solver(None)
    assert solve(part, [(0, [1, 2])]) is None
    two = msgspec.structs.replace(part, vehicles=problem.vehicles[:2])
    found = solve(two, [(0, [1, 2]), (1, [5, 6])])
    assert found is not None
    assert sorted(i for _, ids in found for i in ids) == [1, 2, 5, 6]


def test_a_ruin_searches_only_the_routes_it_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ruin and recreate hands VROOM the routes that lost orders, not the whole plan: every
    call sees a sub-problem of those routes' tasks and vehicles, and the plan it returns is
    complete, feasible and no worse."""
    problem = random_problem(2, n_pairs=30, n_vehicles=30)
    single: Routes = [(v.id, [p.pickup_id, p.delivery_id])
                      for v, p in zip(problem.vehicles, problem.pairs, strict=True)]
    seen: list[tuple[int, int]] = []
    real = vroom_search.vroom_from

    def recording(sub: Problem, routes: Routes, *args: Any, **kwargs: Any) -> Routes | None:
        held = {i for _, ids in routes for i in ids}
        assert held <= {t.id for t in sub.tasks}
        assert {v for v, _ in routes} == {v.id for v in sub.vehicles}
        seen.append((len(sub.vehicles), len(sub.tasks)))
        return real(sub, routes, *args, **kwargs)

    assert check_plan(problem, make_plan(problem, single)) == []
    monkeypatch.setattr(vroom_search, "vroom_from", recording)
    routes = vroom_search._ruin_and_recreate(problem, single, time.monotonic() + 30, 5, 1, 6)
    assert len(seen) == 6
    # A ruin takes 5-20 of the 30 orders, so it touches at most 20 of the routes: never the
    # whole plan.
    assert all(1 <= vehicles <= 20 and tasks < len(problem.tasks) for vehicles, tasks in seen)
    plan = make_plan(problem, routes)
    assert check_plan(problem, plan) == []
    assert sorted(i for _, ids in routes for i in ids) == sorted(t.id for t in problem.tasks)
    assert plan.travel_s <= make_plan(problem, single).travel_s
