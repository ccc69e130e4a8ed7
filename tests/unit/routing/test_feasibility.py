"""The independent checker flags each kind of broken rule on hand-made plans."""

from __future__ import annotations

import msgspec
import pytest

from routing.feasibility import (
    InfeasiblePlanError,
    ViolationKind,
    assert_feasible,
    check_plan,
)
from routing.model import Plan, Problem, Task, Vehicle, make_plan
from tests.unit.routing.builders import line_matrix, problem_from_matrix

K = ViolationKind


def _problem(
    *, capacity: int = 10, shift_end_s: int = 1000, due_b_s: int = 1000, bound: int | None = None
) -> Problem:
    """Depot at 0; order A: pickup at 10, drop at 20; order B: pickup at 30, drop at 40."""
    travel_s = line_matrix([0, 10, 20, 30, 40])
    tasks = [
        Task(id=1, location=1, demand=5, vehicle_id=bound),
        Task(id=2, location=2, demand=-5, vehicle_id=bound),
        Task(id=3, location=3, demand=6, ready_s=50),
        Task(id=4, location=4, demand=-6, due_s=due_b_s),
    ]
    vehicles = [
        Vehicle(id=0, start=0, end=0, shift_end_s=shift_end_s, capacity=capacity),
        Vehicle(id=1, start=0, end=0, shift_end_s=shift_end_s, capacity=capacity),
    ]
    return problem_from_matrix(travel_s, tasks, [(1, 2), (3, 4)], vehicles)


def _kinds(problem: Problem, plan: Plan) -> set[ViolationKind]:
    return {v.kind for v in check_plan(problem, plan)}


def test_feasible_plan_has_no_violation() -> None:
    """A plan keeping every rule (including waiting for a window to open) passes."""
    problem = _problem()
    plan = make_plan(problem, [(0, [1, 2, 3, 4])])
    assert check_plan(problem, plan) == []
    assert_feasible(problem, plan)
    # 0->10->20->30 arrives at 30, waits for ready 50, then 40 at 60 and home at 100.
    assert [s.start_s for s in plan.routes[0].stops] == [10, 20, 50, 60]
    assert plan.routes[0].end_s == 100


def test_missing_and_duplicate_tasks() -> None:
    """Every task must be served exactly once."""
    problem = _problem()
    assert K.MISSING_TASK in _kinds(problem, make_plan(problem, [(0, [1, 2])]))
    assert K.DUPLICATE_TASK in _kinds(problem, make_plan(problem, [(0, [1, 2, 3, 4, 3])]))


def test_unknown_task_and_vehicle() -> None:
    """Ids the problem does not define are reported, not crashed on."""
    problem = _problem()
    plan = make_plan(problem, [(0, [1, 2, 3, 4])])
    stray = msgspec.structs.replace(plan.routes[0], vehicle_id=7)
    assert K.UNKNOWN_VEHICLE in _kinds(problem, msgspec.structs.replace(plan, routes=(stray,)))
    bad_stop = msgspec.structs.replace(plan.routes[0].stops[0], task_id=99)
    route = msgspec.structs.replace(plan.routes[0], stops=(bad_stop, *plan.routes[0].stops[1:]))
    assert K.UNKNOWN_TASK in _kinds(problem, msgspec.structs.replace(plan, routes=(route,)))


def test_two_routes_for_one_vehicle() -> None:
    """A vehicle drives one route."""
    problem = _problem()
    plan = make_plan(problem, [(0, [1, 2]), (0, [3, 4])])
    assert K.DUPLICATE_VEHICLE in _kinds(problem, plan)


def test_pair_split_across_vehicles() -> None:
    """A pickup and its delivery ride the same vehicle."""
    problem = _problem()
    assert K.PAIR_SPLIT in _kinds(problem, make_plan(problem, [(0, [1, 4]), (1, [3, 2])]))


def test_delivery_before_pickup() -> None:
    """The pickup comes before its delivery."""
    problem = _problem()
    assert K.PRECEDENCE in _kinds(problem, make_plan(problem, [(0, [2, 1, 3, 4])]))


def test_late_service() -> None:
    """Service must start by `due_s`; here B's drop-off is reached at 60 > due 55."""
    problem = _problem(due_b_s=55)
    kinds = _kinds(problem, make_plan(problem, [(0, [1, 2, 3, 4])]))
    assert kinds == {K.TIME_WINDOW}


def test_capacity_exceeded() -> None:
    """Load after any stop stays within capacity: carrying A (5) and B (6) needs 11 > 10."""
    problem = _problem()
    assert K.CAPACITY in _kinds(problem, make_plan(problem, [(0, [1, 3, 2, 4])]))
    assert _kinds(problem, make_plan(problem, [(0, [1, 2, 3, 4])])) == set()


def test_back_after_shift_end() -> None:
    """The vehicle reaches its end location by `shift_end_s` (depot due time in Li & Lim)."""
    problem = _problem(shift_end_s=90)
    assert _kinds(problem, make_plan(problem, [(0, [1, 2, 3, 4])])) == {K.SHIFT_END}


def test_task_bound_to_another_vehicle() -> None:
    """A task bound to a vehicle (its food on board) is served by that vehicle only."""
    problem = _problem(bound=1)
    assert K.WRONG_VEHICLE in _kinds(problem, make_plan(problem, [(0, [1, 2, 3, 4])]))
    assert _kinds(problem, make_plan(problem, [(1, [1, 2]), (0, [3, 4])])) == set()


def test_misreported_times_and_totals() -> None:
    """A plan's own times and totals must agree with the problem data."""
    problem = _problem()
    plan = make_plan(problem, [(0, [1, 2, 3, 4])])
    fake_stop = msgspec.structs.replace(plan.routes[0].stops[3], start_s=55)
    route = msgspec.structs.replace(plan.routes[0], stops=(*plan.routes[0].stops[:3], fake_stop))
    assert K.REPORT in _kinds(problem, msgspec.structs.replace(plan, routes=(route,)))
    assert K.REPORT in _kinds(problem, msgspec.structs.replace(plan, dist=1.0))
    assert K.REPORT in _kinds(problem, msgspec.structs.replace(plan, vehicles_used=2))


def test_assert_feasible_raises_with_all_violations() -> None:
    """`assert_feasible` raises a ValueError carrying every violation."""
    problem = _problem(due_b_s=55, shift_end_s=90)
    with pytest.raises(InfeasiblePlanError) as err:
        assert_feasible(problem, make_plan(problem, [(0, [1, 2, 3, 4])]))
    assert {v.kind for v in err.value.violations} == {K.TIME_WINDOW, K.SHIFT_END}
    assert isinstance(err.value, ValueError)
