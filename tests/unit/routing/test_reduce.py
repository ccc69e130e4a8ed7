"""Route elimination on exact routes (routing.reduce) and the solver's use of it."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.feasibility import check_plan
from routing.insertion import CourierRoute, Schedule, insert
from routing.lilim import read_lilim
from routing.model import Pair, Problem, Task, Vehicle, make_plan
from routing.reduce import _cheapest_ejection, _Route, reinsert_orders
from routing.solver import SolverConfig, _Budget, _eject_route, _reduce_fleet, solve
from tests.unit.routing.builders import line_matrix, problem_from_matrix
from tests.unit.routing.test_insertion import _as_problem, _random_route

LR110 = Path(__file__).resolve().parents[2] / "data" / "li_lim" / "lr110.txt"

# A 12-vehicle plan the ILS ended with on lr110 (BKS 10) in a 3.6 s run, seed 9: the plan
# from which the hinted restart used to fail to remove a route (docs/adr/0016-routing-solver.md).
LR110_12_ROUTES = [
    (0, [28, 12, 29, 79, 3, 68, 54, 24]),
    (1, [83, 5, 61, 16, 6, 94, 97, 100]),
    (2, [82, 8, 7, 18, 96, 37, 91, 93]),
    (3, [2, 41, 22, 74, 73, 40, 53, 26]),
    (4, [92, 59, 99, 98, 85, 87, 57, 15, 43, 42, 13, 58]),
    (5, [52, 88, 10, 101, 30, 1]),
    (6, [76, 33, 103, 9, 51, 81, 34, 78]),
    (8, [21, 72, 75, 56, 23, 67, 39, 25, 55, 4]),
    (9, [27, 71, 65, 35, 50, 77, 104, 80]),
    (10, [69, 31, 64, 63, 90, 32, 102, 20, 66, 70]),
    (11, [62, 11, 19, 47, 49, 36, 46, 48]),
    (12, [95, 14, 44, 38, 86, 17, 84, 45, 60, 89]),
]


def _swap_problem() -> Problem:
    """Order P (demand 2, pickup at -10 due 10) fits only courier 0 (capacity 2), which already
    serves order X (pickup at +10 due 10): it cannot be at both sides by t=10. Courier 1
    (capacity 1) can take X before its own order Y. So P goes in only by ejecting X."""
    tasks = [
        Task(id=1, location=1, demand=1, due_s=10),  # X pickup at +10
        Task(id=2, location=2, demand=-1),  # X delivery at +20
        Task(id=3, location=3, demand=1),  # Y pickup at +30
        Task(id=4, location=4, demand=-1),  # Y delivery at +40
        Task(id=5, location=5, demand=2, due_s=10),  # P pickup at -10
        Task(id=6, location=6, demand=-2),  # P delivery at -20
    ]
    vehicles = [
        Vehicle(id=0, start=0, end=0, capacity=2),
        Vehicle(id=1, start=0, end=0, capacity=1),
    ]
    return problem_from_matrix(
        line_matrix([0, 10, 20, 30, 40, -10, -20]),
        tasks,
        [(1, 2), (3, 4), (5, 6)],
        vehicles,
    )


def test_left_out_order_goes_in_by_ejecting_another() -> None:
    problem = _swap_problem()
    routes = [(0, [1, 2]), (1, [3, 4])]
    # Feasible apart from P being left out; no direct insertion of P exists.
    violations = check_plan(problem, make_plan(problem, routes))
    assert {v.task_id for v in violations} == {5, 6}
    done = reinsert_orders(problem, routes, time.monotonic() + 10, seed=0)
    assert done is not None
    assert check_plan(problem, make_plan(problem, done)) == []
    assert dict(done) == {0: [5, 6], 1: [1, 2, 3, 4]}


def test_complete_routes_come_back_unchanged_and_unknown_shapes_give_up() -> None:
    problem = _swap_problem()
    full = [(0, [5, 6]), (1, [1, 2, 3, 4])]
    assert reinsert_orders(problem, full, time.monotonic() + 10) == full
    # A past deadline: no attempt.
    assert reinsert_orders(problem, [(0, [1, 2]), (1, [3, 4])], time.monotonic() - 1) is None


def test_bound_orders_are_never_moved() -> None:
    """A left-out order bound to a courier is not this module's to place, and a bound order on
    a route is never ejected: with X bound to courier 0, P has nowhere to go."""
    problem = _swap_problem()
    tasks = [
        t if t.id not in (1, 2) else Task(**{**_fields(t), "vehicle_id": 0}) for t in problem.tasks
    ]
    bound = problem_from_matrix(problem.travel_s, tasks, [(1, 2), (3, 4), (5, 6)], problem.vehicles)
    assert reinsert_orders(bound, [(0, [1, 2]), (1, [3, 4])], time.monotonic() + 10) is None
    assert reinsert_orders(bound, [(0, [5, 6]), (1, [3, 4])], time.monotonic() + 10) is None


def _fields(task: Task) -> dict[str, object]:
    return {f: getattr(task, f) for f in task.__struct_fields__}


def test_solver_ejection_step_removes_a_route_on_exact_routes() -> None:
    """The solver's exact route elimination (as run after a failed hinted attempt, step-bounded
    as in reproducible mode) takes three one-order routes down to two, then descends; every
    task served, checker clean."""
    problem = _swap_problem()
    problem = problem_from_matrix(
        problem.travel_s,
        problem.tasks,
        [(1, 2), (3, 4), (5, 6)],
        (*problem.vehicles, Vehicle(id=2, start=0, end=0, capacity=2)),
    )
    routes = [(0, [1, 2]), (1, [3, 4]), (2, [5, 6])]
    fewer = _eject_route(problem, routes, SolverConfig(), 0, (time.monotonic() + 30, 1.0), 100)
    assert fewer is not None
    assert check_plan(problem, make_plan(problem, fewer)) == []
    assert sum(1 for _, ids in fewer if ids) == 2


def test_lr110_twelve_routes_to_eleven() -> None:
    """The case the hinted restart lost: the shortest route of a 12-vehicle lr110 plan dropped,
    the ejection pool re-inserts its orders on the other 11 (step-bounded, so deterministic;
    ~0.1 s CPU)."""
    problem = read_lilim(LR110).problem
    assert check_plan(problem, make_plan(problem, LR110_12_ROUTES)) == []
    dropped = min(LR110_12_ROUTES, key=lambda r: (len(r[1]), r[0]))[0]
    state = [r for r in LR110_12_ROUTES if r[0] != dropped]
    done = reinsert_orders(problem, state, time.monotonic() + 30, 0, max_steps=400)
    again = reinsert_orders(problem, state, time.monotonic() + 30, 0, max_steps=400)
    assert done is not None
    assert done == again  # deterministic for a seed
    plan = make_plan(problem, done)
    assert check_plan(problem, plan) == []
    assert plan.vehicles_used == 11
    assert sorted(i for _, ids in done for i in ids) == sorted(t.id for t in problem.tasks)


def test_solve_with_ejection_is_feasible_and_reproducible() -> None:
    """Ejection on (`ejection_share` > 0) in reproducible mode: solution and step limits
    make the plan the same run after run, and it passes the checker."""
    problem = read_lilim(LR110).problem
    config = SolverConfig(ejection_share=0.2)
    plans = [solve(problem, 60, 3, solution_limit=150, config=config) for _ in range(2)]
    assert plans[0] == plans[1]
    assert check_plan(problem, plans[0]) == []


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_pairs=st.integers(0, 4),
    n_onboard=st.integers(0, 2),
    tight=st.booleans(),
)
def test_pool_insertion_matches_insertion_insert(
    seed: int, n_pairs: int, n_onboard: int, tight: bool
) -> None:
    """A schedule over the whole matrix, as the pool builds it, gives exactly `insert`'s answer
    (which re-indexes the route onto a local matrix, and is checked against brute force in
    test_insertion): feasibility, added travel and positions, ties included."""
    route, pickup, delivery, travel_s = _random_route(seed, n_pairs, n_onboard, tight)
    vehicle = _as_problem(route, travel_s).vehicles[0]  # the courier as the model's vehicle
    matrix: list[list[int]] = travel_s.tolist()
    got = Schedule(vehicle, list(route.stops), matrix).cheapest(pickup, delivery, matrix)
    want = insert(route, pickup, delivery, travel_s)
    if want is None:
        assert got is None
        return
    assert got == (want.added_travel_s, want.pickup_index, want.delivery_index - 1)


def test_cheapest_ejection_matches_exhaustive_search() -> None:
    """The pool's ejection step (candidates in (penalty, size) order, stopping at the first
    class with a feasible one) picks what trying every route and every 1-2 order ejection with
    `routing.insertion.insert` picks: least penalty, then fewest, then least added travel,
    ties to the first route and combination. On lr110's 12-route plan, every order of the
    shortest route in turn, under random penalties."""
    problem = read_lilim(LR110).problem
    tasks = problem.task_by_id()
    vehicles = problem.vehicle_by_id()
    pair_of = {i: pair for pair in problem.pairs for i in (pair.pickup_id, pair.delivery_id)}
    travel: list[list[int]] = problem.travel_s.tolist()
    rng = random.Random(0)
    found_any = False
    for dropped in sorted(LR110_12_ROUTES, key=lambda r: (len(r[1]), r[0]))[:3]:
        state = [
            _Route(vehicles[v], [tasks[i] for i in ids], pair_of)
            for v, ids in LR110_12_ROUTES
            if v != dropped[0]
        ]
        orders = [pair_of[i] for i in dropped[1] if pair_of[i].pickup_id == i]
        for trial in range(8):
            penalty = {pair: rng.randrange(5) for pair in problem.pairs} if trial else {}
            for order in orders:
                pickup, delivery = tasks[order.pickup_id], tasks[order.delivery_id]
                got = _cheapest_ejection(state, pickup, delivery, travel, penalty, 2)
                want = _exhaustive_ejection(state, pickup, delivery, travel, penalty)
                assert got == want
                found_any = found_any or got is not None
    assert found_any


def _exhaustive_ejection(
    state: list[_Route],
    pickup: Task,
    delivery: Task,
    travel: list[list[int]],
    penalty: dict[Pair, int],
) -> tuple[int, list[Task], list[Pair]] | None:
    best: tuple[tuple[int, int, float], int, list[Task], list[Pair]] | None = None
    for k, route in enumerate(state):
        for size in (1, 2):
            for ejected in itertools.combinations(route.ejectable(), size):
                gone = {i for q in ejected for i in (q.pickup_id, q.delivery_id)}
                v = route.vehicle
                courier = CourierRoute(
                    location=v.start,
                    now_s=v.shift_start_s,
                    stops=tuple(t for t in route.stops if t.id not in gone),
                    load=v.initial_load,
                    capacity=v.capacity,
                    end=v.end,
                    shift_end_s=v.shift_end_s,
                )
                found = insert(courier, pickup, delivery, travel)
                if found is None:
                    continue
                key = (sum(penalty.get(q, 0) for q in ejected), size, found.added_travel_s)
                if best is None or key < best[0]:
                    best = (key, k, list(found.route.stops), list(ejected))
    return None if best is None else (best[1], best[2], best[3])


def test_fleet_reduction_falls_back_to_the_pool_on_lr110() -> None:
    """The solver's reduction phase on lr110's 12-route plan, reproducible mode: the hinted
    chunk (30 solutions) cannot re-insert the dropped route, the ejection pool (400 steps per
    candidate) does. The phase reports the pool's plan as such (the polish then reserves its
    repair slice), with 11 routes, every task served, checker clean."""
    problem = read_lilim(LR110).problem
    budget = _Budget(20.0, 300)
    config = SolverConfig(ejection_share=0.08)
    routes, _, ejected = _reduce_fleet(
        problem, LR110_12_ROUTES, config, 0, budget, (0.4, 0.3), time.monotonic() + 20
    )
    assert ejected
    plan = make_plan(problem, routes)
    assert check_plan(problem, plan) == []
    assert plan.vehicles_used == 11
    assert sorted(i for _, ids in routes for i in ids) == sorted(t.id for t in problem.tasks)
