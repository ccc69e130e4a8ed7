"""OR-Tools solve: optimal on tiny instances, feasible on a real one, reproducible, thread-safe."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from routing.feasibility import check_plan
from routing.lilim import read_lilim
from routing.model import Problem, Task, Vehicle, make_plan
from routing.solver import (
    InfeasibleProblemError,
    Routes,
    SolverConfig,
    _annealing_slice,
    _Budget,
    _Model,
    _reduce_fleet,
    _restart_from,
    solve,
)
from tests.unit.routing.builders import (
    brute_force,
    line_matrix,
    problem_from_matrix,
    random_problem,
)

LC101 = Path(__file__).resolve().parents[2] / "data" / "li_lim" / "lc101.txt"


def test_hand_checked_line() -> None:
    """Depot 0, orders 10->20 and 30->40 (B's drop due 45, A's food ready at 50): one vehicle
    must do B first, 0-30-40-10-20-0 = 100 s, beating two vehicles (40 + 80 s)."""
    travel_s = line_matrix([0, 10, 20, 30, 40])
    tasks = [
        Task(id=1, location=1, demand=1, ready_s=50),
        Task(id=2, location=2, demand=-1),
        Task(id=3, location=3, demand=1),
        Task(id=4, location=4, demand=-1, due_s=45),
    ]
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(2)]
    problem = problem_from_matrix(travel_s, tasks, [(1, 2), (3, 4)], vehicles)
    plan = solve(problem, time_limit_s=0.2)
    assert check_plan(problem, plan) == []
    assert [r.task_ids for r in plan.routes] == [[3, 4, 1, 2]]
    assert plan.travel_s == 100


def test_fewer_vehicles_beat_less_travel() -> None:
    """Vehicles are minimised first: one vehicle at 122 s beats two at 42 s in total.

    The matrix breaks the triangle inequality (a one-way detour between the two orders), the
    only way one route can cost more travel than two.
    """
    travel_s = np.full((5, 5), 100, dtype=np.int64)
    np.fill_diagonal(travel_s, 0)
    travel_s[0, :] = travel_s[:, 0] = 10
    travel_s[0, 0] = 0
    travel_s[1, 2] = travel_s[3, 4] = 1
    tasks = [Task(id=k, location=k, demand=1 if k % 2 else -1) for k in range(1, 5)]
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(2)]
    problem = problem_from_matrix(travel_s, tasks, [(1, 2), (3, 4)], vehicles)
    plan = solve(problem, time_limit_s=0.2)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == (1, 122)


@pytest.mark.parametrize("seed", range(6))
def test_tiny_random_instances_solved_to_optimum(seed: int) -> None:
    """On 3 orders / 2 vehicles, (vehicles, travel) equals the brute-force optimum."""
    problem = random_problem(seed)
    best = brute_force(problem)
    if best is None:
        with pytest.raises((InfeasibleProblemError, RuntimeError)):
            solve(problem, time_limit_s=0.2)
        return
    plan = solve(problem, time_limit_s=0.2, seed=seed)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == best


def test_guided_local_search_option() -> None:
    """The GLS alternative (SolverConfig.metaheuristic) reaches the same tiny optimum."""
    problem = random_problem(0)
    config = SolverConfig(metaheuristic="GUIDED_LOCAL_SEARCH", trim_fleet=False)
    plan = solve(problem, time_limit_s=0.2, config=config)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == brute_force(problem)


def test_courier_with_food_on_board_and_open_route() -> None:
    """A drop-off already on board (bound to its courier, counted in the initial load) stays
    with that courier; an open route ends at its last stop. Matches brute force."""
    travel_s = line_matrix([0, 50, 10, 20, 60])
    tasks = [
        Task(id=1, location=1, demand=-2, vehicle_id=1, due_s=200),  # on board courier 1
        Task(id=2, location=2, demand=1),
        Task(id=3, location=3, demand=-1, due_s=60),
    ]
    vehicles = [
        Vehicle(id=0, start=0, capacity=2),
        Vehicle(id=1, start=4, capacity=2, initial_load=2),
    ]
    problem = problem_from_matrix(travel_s, tasks, [(2, 3)], vehicles)
    plan = solve(problem, time_limit_s=0.2)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == brute_force(problem)
    assert any(r.vehicle_id == 1 and 1 in r.task_ids for r in plan.routes)


def test_unservable_order_is_a_clear_error() -> None:
    """An order no vehicle can reach in time raises InfeasibleProblemError naming the order."""
    travel_s = line_matrix([0, 100, 200])
    tasks = [Task(id=1, location=1, demand=1, due_s=50), Task(id=2, location=2, demand=-1)]
    problem = problem_from_matrix(travel_s, tasks, [(1, 2)], [Vehicle(id=0, start=0)])
    with pytest.raises(InfeasibleProblemError, match="task 1/2"):
        solve(problem, time_limit_s=0.2)


def test_lc101_short_budget_is_feasible() -> None:
    """A real Li & Lim instance solved in 2 s passes the checker, within BKS + 1 vehicles."""
    problem = read_lilim(LC101).problem
    plan = solve(problem, time_limit_s=2.0)
    assert check_plan(problem, plan) == []
    assert plan.vehicles_used <= 10 + 1
    assert plan.dist == pytest.approx(sum(r.dist for r in plan.routes))


def test_solution_limit_is_reproducible_and_thread_safe() -> None:
    """With a solution limit the plan depends only on (problem, seed): two runs in parallel
    threads equal a run alone."""
    problem = read_lilim(LC101).problem
    alone = solve(problem, time_limit_s=60, seed=3, solution_limit=300)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(
            pool.map(lambda _: solve(problem, time_limit_s=60, seed=3, solution_limit=300), [0, 1])
        )
    assert all(r == alone for r in runs)
    assert check_plan(problem, alone) == []


def _two_orders_on_a_line() -> Problem:
    """Depot 0; orders 10->20 and 30->40, both fit one vehicle (0-10-20-30-40-0 = 80 s)."""
    travel_s = line_matrix([0, 10, 20, 30, 40])
    tasks = [Task(id=k, location=k, demand=1 if k % 2 else -1) for k in range(1, 5)]
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(2)]
    return problem_from_matrix(travel_s, tasks, [(1, 2), (3, 4)], vehicles)


def test_fleet_reduction_moves_the_shortest_route_onto_the_others() -> None:
    """From two one-order routes, the fleet-reduction phase drops the shorter route and
    re-inserts its order on the other vehicle: one route serving all four tasks."""
    problem = _two_orders_on_a_line()
    routes = [(0, [1, 2]), (1, [3, 4])]
    fewer = _restart_from(problem, routes, SolverConfig(), 0, 0.5, None, True)
    assert fewer is not None
    plan = make_plan(problem, fewer)
    assert check_plan(problem, plan) == []
    assert plan.vehicles_used == 1
    assert sorted(plan.routes[0].task_ids) == [1, 2, 3, 4]


def test_fleet_reduction_keeps_a_courier_with_food_on_board() -> None:
    """A courier carrying a bound drop-off is never the one dropped, even when its route is
    the shortest; and the phase returns a plan only when it serves every task."""

    def problem(order_a_due_s: int) -> Problem:
        tasks = [
            Task(id=1, location=1, demand=1),
            Task(id=2, location=2, demand=-1, due_s=order_a_due_s),
            Task(id=3, location=3, demand=1),
            Task(id=4, location=4, demand=-1),
            Task(id=5, location=4, demand=-1, vehicle_id=1),  # on board courier 1
        ]
        # Courier 1 is full until it has delivered task 5 at position 40.
        vehicles = [
            Vehicle(id=0, start=0, end=0),
            Vehicle(id=1, start=0, end=0, capacity=1, initial_load=1),
        ]
        return problem_from_matrix(
            line_matrix([0, 10, 20, 30, 40]), tasks, [(1, 2), (3, 4)], vehicles
        )

    routes = [(0, [1, 2, 3, 4]), (1, [5])]
    loose = problem(order_a_due_s=1000)
    fewer = _restart_from(loose, routes, SolverConfig(), 0, 0.5, None, True)
    assert fewer is not None
    plan = make_plan(loose, fewer)
    assert check_plan(loose, plan) == []
    assert [r.vehicle_id for r in plan.routes] == [1]
    assert plan.routes[0].task_ids[0] == 5
    # Order A due at 20: courier 1 alone cannot make it (it must go to 40 first), so the
    # phase gives up rather than leave a task out. The two-route plan itself is feasible.
    tight = problem(order_a_due_s=20)
    assert check_plan(tight, make_plan(tight, routes)) == []
    assert _restart_from(tight, routes, SolverConfig(), 0, 0.5, None, True) is None


def _reduce(problem: Problem, routes: Routes, budget: _Budget) -> tuple[Routes, float]:
    """Fleet reduction in hinted chunks (the path with `ejection_share` 0; the exact-route
    ejection is tested in test_reduce.py): from 0.4 of the schedule, share 0.3."""
    config = SolverConfig(ejection_share=0.0)
    routes, position, ejected = _reduce_fleet(
        problem, routes, config, 0, budget, (0.4, 0.3), time.monotonic() + 30
    )
    assert not ejected  # no ejection pool without ejection_share
    return routes, position


def test_fleet_reduction_chunks_stop_at_success() -> None:
    """Chunked fleet reduction from two one-order routes: the first chunk re-inserts the
    dropped order, so one chunk's solutions are spent and the plan has one route."""
    problem = _two_orders_on_a_line()
    budget = _Budget(search_s=30.0, solution_limit=100)
    routes = [(0, [1, 2]), (1, [3, 4])]
    fewer, at = _reduce(problem, routes, budget)
    assert check_plan(problem, make_plan(problem, fewer)) == []
    assert [len(ids) for _, ids in fewer if ids] == [4]
    assert (budget.spent, at) == (10, pytest.approx(0.5))


def test_hopeless_fleet_reduction_gives_up_when_a_chunk_makes_no_progress() -> None:
    """Dropping courier 0's route, the first chunk moves order B onto courier 1 (progress: 2
    tasks out instead of 4), but order A (due at 20) cannot follow courier 1's drop at 40, so
    the second chunk leaves as many out and the attempt stops (patience 1): the routes come
    back unchanged and the third chunk's solutions are not spent."""
    tasks = [
        Task(id=1, location=1, demand=1),
        Task(id=2, location=2, demand=-1, due_s=20),
        Task(id=3, location=3, demand=1),
        Task(id=4, location=4, demand=-1),
        Task(id=5, location=4, demand=-1, vehicle_id=1),  # on board courier 1, full
    ]
    vehicles = [
        Vehicle(id=0, start=0, end=0),
        Vehicle(id=1, start=0, end=0, capacity=1, initial_load=1),
    ]
    problem = problem_from_matrix(
        line_matrix([0, 10, 20, 30, 40]), tasks, [(1, 2), (3, 4)], vehicles
    )
    routes = [(0, [1, 2, 3, 4]), (1, [5])]
    budget = _Budget(search_s=30.0, solution_limit=100)
    kept, at = _reduce(problem, routes, budget)
    assert kept == routes
    assert (budget.spent, at) == (20, pytest.approx(0.6))


def test_no_fleet_reduction_at_the_lower_bound() -> None:
    """Two orders that no single route can serve (opposite sides, both due at 20): the fleet
    equals the lower bound, so no reduction chunk runs at all."""
    tasks = [
        Task(id=1, location=1, demand=1),
        Task(id=2, location=2, demand=-1, due_s=20),
        Task(id=3, location=3, demand=1),
        Task(id=4, location=4, demand=-1, due_s=20),
    ]
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(2)]
    problem = problem_from_matrix(
        line_matrix([0, 10, 20, -10, -20]), tasks, [(1, 2), (3, 4)], vehicles
    )
    routes = [(0, [1, 2]), (1, [3, 4])]
    budget = _Budget(search_s=30.0, solution_limit=100)
    assert _reduce(problem, routes, budget) == (routes, pytest.approx(0.4))
    assert budget.spent == 0


def test_annealing_slices_join_into_one_schedule() -> None:
    """Successive chunks cool like one search: each slice starts where the last one ended,
    the first at the initial and the last at the final temperature."""
    config = SolverConfig(sa_initial_temperature=2.5, sa_final_temperature=0.025)
    slices = [_annealing_slice(config, k / 4, (k + 1) / 4) for k in range(4)]
    assert slices[0].sa_initial_temperature == pytest.approx(2.5)
    assert slices[-1].sa_final_temperature == pytest.approx(0.025)
    for a, b in itertools.pairwise(slices):
        assert a.sa_final_temperature == pytest.approx(b.sa_initial_temperature)
        assert a.sa_initial_temperature > a.sa_final_temperature


def test_final_descent_repairs_a_detour() -> None:
    """The descent from 0-30-40-10-20-0 (100 s) reaches 0-10-20-30-40-0 (80 s), the optimum,
    on the same single vehicle."""
    problem = _two_orders_on_a_line()
    model = _Model(problem, 0, SolverConfig())
    better = model.descend([(0, [3, 4, 1, 2])], 5.0)
    assert better is not None
    plan = make_plan(problem, better)
    assert check_plan(problem, plan) == []
    assert (plan.vehicles_used, plan.travel_s) == (1, 80)
