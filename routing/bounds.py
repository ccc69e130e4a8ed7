"""A cheap lower bound on the number of vehicles a PDPTW plan needs.

Two orders (pickup/delivery pairs, or lone stops) are *incompatible* when no vehicle can serve
both on one route: none of the interleavings that keep each pickup before its delivery meets
the time windows, the shift and the capacity. Pairwise incompatible orders need a vehicle each,
so the size of any clique of the incompatibility graph bounds the fleet from below. The solver
uses it to skip fleet-reduction attempts that cannot succeed (docs/adr/0016-routing-solver.md).

Relaxations keep the bound valid: the two orders are checked alone on the vehicle (other stops
only add time), and the load starts at 0 (food already on board only adds load).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from routing.model import Problem, Task, Vehicle

__all__ = ["incompatibility", "vehicle_lower_bound"]

# Above this many distinct vehicle profiles (start, end, shift, capacity) the O(profiles x
# orders^2) check costs more than it can save; the bound then falls back to 1 when any task
# exists.
MAX_PROFILES = 4
# The check is quadratic in orders (in Python: ~0.09 s for Li & Lim's 53 orders); above this
# many it would eat a real share of a seconds-long budget, and the bound falls back to 1.
MAX_GROUPS = 150


def vehicle_lower_bound(problem: Problem) -> int:
    """Vehicles any plan serving every task must use (0 without tasks, else at least 1)."""
    if not problem.tasks:
        return 0
    profiles = {_profile(v) for v in problem.vehicles}
    if len(profiles) > MAX_PROFILES:
        return 1
    groups = _groups(problem)
    if len(groups) > MAX_GROUPS:
        return 1
    return max(1, _greedy_clique(incompatibility(problem, groups)))


def incompatibility(problem: Problem, groups: Sequence[Sequence[Task]]) -> list[list[bool]]:
    """Symmetric matrix: True where no vehicle can serve both groups on one route."""
    by_profile: dict[tuple[int, int | None, int, int, int], Vehicle] = {}
    for v in problem.vehicles:
        by_profile.setdefault(_profile(v), v)
    vehicles = problem.vehicle_by_id()
    n = len(groups)
    out = [[False] * n for _ in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            bound = {t.vehicle_id for t in (*groups[a], *groups[b]) if t.vehicle_id is not None}
            if len(bound) > 1:
                out[a][b] = out[b][a] = True
                continue
            if bound:
                candidates: Sequence[Vehicle] = [vehicles[bound.pop()]]
            else:
                candidates = list(by_profile.values())
            if not any(_together(problem, v, groups[a], groups[b]) for v in candidates):
                out[a][b] = out[b][a] = True
    return out


def _profile(v: Vehicle) -> tuple[int, int | None, int, int, int]:
    return (v.start, v.end, v.shift_start_s, v.shift_end_s, v.capacity)


def _groups(problem: Problem) -> list[tuple[Task, ...]]:
    tasks = problem.task_by_id()
    paired: set[int] = set()
    groups: list[tuple[Task, ...]] = []
    for pair in problem.pairs:
        groups.append((tasks[pair.pickup_id], tasks[pair.delivery_id]))
        paired.update((pair.pickup_id, pair.delivery_id))
    groups.extend((t,) for t in problem.tasks if t.id not in paired)
    return groups


def _together(problem: Problem, v: Vehicle, a: Sequence[Task], b: Sequence[Task]) -> bool:
    """Some precedence-respecting interleaving of groups a and b is feasible alone on v."""
    for order in _interleavings(len(a), len(b)):
        its = [iter(a), iter(b)]
        if _feasible(problem, v, [next(its[k]) for k in order]):
            return True
    return False


def _interleavings(n_a: int, n_b: int) -> list[tuple[int, ...]]:
    """Sequences of 0s (n_a of them) and 1s (n_b): each group's own order is kept."""
    slots = range(n_a + n_b)
    out = []
    for picks in itertools.combinations(slots, n_a):
        chosen = set(picks)
        out.append(tuple(0 if i in chosen else 1 for i in slots))
    return out


def _feasible(problem: Problem, v: Vehicle, seq: Sequence[Task]) -> bool:
    travel = problem.travel_s
    t_s, at, load = v.shift_start_s, v.start, 0
    for task in seq:
        t_s = max(t_s + int(travel[at, task.location]), task.ready_s)
        load += task.demand
        if t_s > task.due_s or load > v.capacity:
            return False
        t_s += task.service_s
        at = task.location
    if v.end is not None:
        t_s += int(travel[at, v.end])
    return t_s <= v.shift_end_s


def _greedy_clique(adj: list[list[bool]]) -> int:
    """Size of a large clique: from every vertex, add the candidate with most neighbours among
    the remaining candidates. Any clique is a valid bound; this one is often the maximum."""
    n = len(adj)
    best = 1 if n else 0
    for start in range(n):
        clique = 1
        cand = [j for j in range(n) if adj[start][j]]
        while cand:
            j = max(cand, key=lambda j: sum(adj[j][k] for k in cand))
            clique += 1
            cand = [k for k in cand if k != j and adj[j][k]]
        best = max(best, clique)
    return best
