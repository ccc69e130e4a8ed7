"""Tiny hand-checkable problems and a brute-force optimum for the routing tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from routing.feasibility import check_plan
from routing.model import Pair, Plan, Problem, Task, Vehicle, make_plan


def line_matrix(positions: Sequence[int]) -> npt.NDArray[np.int64]:
    """Travel seconds between points on a line: |x_i - x_j|."""
    x = np.asarray(positions, dtype=np.int64)
    return np.abs(x[:, None] - x[None, :])


def problem_from_matrix(
    travel_s: npt.NDArray[np.int64],
    tasks: Sequence[Task],
    pairs: Sequence[tuple[int, int]],
    vehicles: Sequence[Vehicle],
) -> Problem:
    return Problem(
        travel_s=travel_s,
        dist=travel_s.astype(np.float64),
        tasks=tuple(tasks),
        pairs=tuple(Pair(pickup_id=p, delivery_id=d) for p, d in pairs),
        vehicles=tuple(vehicles),
    )


def random_problem(seed: int, n_pairs: int = 3, n_vehicles: int = 2) -> Problem:
    """Random PDPTW on a 100 x 100 grid, depot at location 0, loose-ish windows."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 100, size=(2 * n_pairs + 1, 2))
    travel_s = np.ceil(np.sqrt(((xy[:, None] - xy[None, :]) ** 2).sum(axis=2))).astype(np.int64)
    tasks: list[Task] = []
    pairs: list[tuple[int, int]] = []
    for k in range(n_pairs):
        pick, drop = 1 + 2 * k, 2 + 2 * k
        demand = int(rng.integers(1, 4))
        ready = int(rng.integers(0, 150))
        tasks.append(
            Task(
                id=pick,
                location=pick,
                demand=demand,
                ready_s=ready,
                due_s=ready + int(rng.integers(50, 300)),
                service_s=5,
            )
        )
        tasks.append(
            Task(
                id=drop,
                location=drop,
                demand=-demand,
                ready_s=0,
                due_s=ready + int(rng.integers(150, 600)),
                service_s=5,
            )
        )
        pairs.append((pick, drop))
    capacity = int(rng.integers(3, 7))
    vehicles = [
        Vehicle(id=v, start=0, end=0, shift_end_s=1500, capacity=capacity)
        for v in range(n_vehicles)
    ]
    return problem_from_matrix(travel_s, tasks, pairs, vehicles)


def brute_force(problem: Problem) -> tuple[int, int] | None:
    """Optimal (vehicles used, total travel) by trying every assignment and every order.

    Feasibility of every candidate is decided by `check_plan`, so this is only as trustworthy
    as the checker, which has its own tests.
    """
    groups: list[tuple[int, ...]] = [(p.pickup_id, p.delivery_id) for p in problem.pairs]
    paired = {i for g in groups for i in g}
    groups += [(t.id,) for t in problem.tasks if t.id not in paired]
    best: tuple[int, int] | None = None
    cache: dict[tuple[int, frozenset[int]], tuple[int, list[int]] | None] = {}

    def best_route(vehicle: Vehicle, ids: frozenset[int]) -> tuple[int, list[int]] | None:
        key = (vehicle.id, ids)
        if key not in cache:
            found: tuple[int, list[int]] | None = None
            for order in itertools.permutations(sorted(ids)):
                plan = make_plan(problem, [(vehicle.id, list(order))])
                if _route_ok(problem, plan, ids) and (found is None or plan.travel_s < found[0]):
                    found = (plan.travel_s, list(order))
            cache[key] = found
        return cache[key]

    for assignment in itertools.product(range(len(problem.vehicles)), repeat=len(groups)):
        used = 0
        travel = 0
        ok = True
        for k, vehicle in enumerate(problem.vehicles):
            ids = frozenset(i for g, a in zip(groups, assignment, strict=True) if a == k for i in g)
            if not ids:
                continue
            r = best_route(vehicle, ids)
            if r is None:
                ok = False
                break
            used += 1
            travel += r[0]
        if ok and (best is None or (used, travel) < best):
            best = (used, travel)
    return best


def _route_ok(problem: Problem, plan: Plan, ids: frozenset[int]) -> bool:
    """The one-route plan breaks no rule except leaving out tasks not in `ids`."""
    return all(v.kind == "missing_task" and v.task_id not in ids for v in check_plan(problem, plan))
