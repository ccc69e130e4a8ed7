"""Vehicle lower bound: pairwise-incompatible orders each need a vehicle; never above optimum."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.bounds import MAX_GROUPS, vehicle_lower_bound
from routing.lilim import read_lilim
from routing.model import Task, Vehicle
from tests.unit.routing.builders import (
    brute_force,
    line_matrix,
    problem_from_matrix,
    random_problem,
)

LC101 = Path(__file__).resolve().parents[2] / "data" / "li_lim" / "lc101.txt"


def _orders_on_a_line(due_b_s: int) -> list[Task]:
    """Depot at 0; order A 10->20 due at 20, order B -10->-20 (locations 3, 4) due `due_b_s`."""
    return [
        Task(id=1, location=1, demand=1),
        Task(id=2, location=2, demand=-1, due_s=20),
        Task(id=3, location=3, demand=1),
        Task(id=4, location=4, demand=-1, due_s=due_b_s),
    ]


def test_conflicting_windows_need_two_vehicles() -> None:
    """A and B lie on opposite sides of the depot, both due at 20: serving one first makes the
    other at least 40 late, so no single route serves both and the bound is 2."""
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(3)]
    problem = problem_from_matrix(
        line_matrix([0, 10, 20, -10, -20]), _orders_on_a_line(20), [(1, 2), (3, 4)], vehicles
    )
    assert vehicle_lower_bound(problem) == 2


def test_compatible_orders_need_one_vehicle() -> None:
    """With B due late, 0-10-20 then -10, -20 serves both: the bound is 1."""
    vehicles = [Vehicle(id=v, start=0, end=0) for v in range(3)]
    problem = problem_from_matrix(
        line_matrix([0, 10, 20, -10, -20]), _orders_on_a_line(1000), [(1, 2), (3, 4)], vehicles
    )
    assert vehicle_lower_bound(problem) == 1


def test_tasks_bound_to_two_couriers_need_both() -> None:
    """Food on board two different couriers: two routes whatever the windows."""
    tasks = [
        Task(id=1, location=1, demand=-1, vehicle_id=0),
        Task(id=2, location=2, demand=-1, vehicle_id=1),
    ]
    vehicles = [Vehicle(id=v, start=0, capacity=1, initial_load=1) for v in range(2)]
    problem = problem_from_matrix(line_matrix([0, 10, 20]), tasks, [], vehicles)
    assert vehicle_lower_bound(problem) == 2


def test_no_tasks_need_no_vehicle() -> None:
    problem = problem_from_matrix(line_matrix([0, 10]), [], [], [Vehicle(id=0, start=0)])
    assert vehicle_lower_bound(problem) == 0


@pytest.mark.parametrize("seed", range(8))
def test_bound_never_exceeds_the_optimum(seed: int) -> None:
    """On tiny random instances the bound is at most the brute-force optimal vehicle count."""
    problem = random_problem(seed, n_pairs=3, n_vehicles=3)
    best = brute_force(problem)
    if best is not None:
        assert 1 <= vehicle_lower_bound(problem) <= best[0]


def test_lc101_bound_is_its_best_known_fleet() -> None:
    """lc101's clustered windows force 10 vehicles (its best-known count is 10)."""
    assert vehicle_lower_bound(read_lilim(LC101).problem) == 10


def test_many_orders_fall_back_to_one() -> None:
    """Above MAX_GROUPS orders the quadratic check is skipped: the trivial bound 1, even where
    no two orders fit one route (all due at 10 s, 10 s or more from the depot and each other)."""
    n = MAX_GROUPS + 1
    tasks = [Task(id=k, location=k, due_s=10) for k in range(1, n + 1)]
    travel = line_matrix([0, *(10 * k for k in range(1, n + 1))])
    problem = problem_from_matrix(travel, tasks, [], [Vehicle(id=0, start=0)])
    assert vehicle_lower_bound(problem) == 1
