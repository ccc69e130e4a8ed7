"""Route elimination without OR-Tools: put left-out orders back with an ejection pool.

The solver's fleet reduction drops a route and must place its orders on the other vehicles.
OR-Tools can only restart its iterated local search from a *hint*, which it rebuilds lossily
(docs/adr/0016-routing-solver.md), and a greedy descent from the exact routes often
leaves one order out. This module finishes the job on exact routes, in the spirit of Nagata &
Bräysy's route minimisation (2009): take an order from the pool of left-out ones; insert it at
its cheapest feasible position (`routing.insertion.insert`) if some route admits it; else eject
the one or two orders from one route whose removal lets it in, preferring orders that were
ejected least often so far (a penalty counter per order), and put those back in the pool.
Every route stays feasible after every step (each insertion is checked in full), so the result,
when the pool empties, is a complete feasible plan with the same routes or fewer.

Speed (docs/adr/0016-routing-solver.md): the insertion check is
`routing.insertion.insert`'s, on a schedule computed once per stop sequence (`Schedule`);
answers are memoised per (sequence, order); ejections are tried in (penalty, size) order and
the search stops at the first class with a feasible one. Same steps, ~3.5x less CPU.

Pure and deterministic: the same input and seed give the same routes; the only clock use is
the deadline, which can only make it give up (return None) sooner.
"""

from __future__ import annotations

import itertools
import random
import time

from routing.insertion import Schedule
from routing.model import Pair, Problem, Task, Vehicle

__all__ = ["reinsert_orders"]

Routes = list[tuple[int, list[int]]]


def reinsert_orders(
    problem: Problem,
    routes: Routes,
    deadline: float,
    seed: int = 0,
    *,
    max_ejected: int = 2,
    max_steps: int = 10_000,
) -> Routes | None:
    """`routes` (vehicle id, task ids in order; feasible, some tasks left out) completed with
    every left-out task, on the same vehicles; None if that was not achieved before
    `deadline` (`time.monotonic()`) or `max_steps` insertions.

    Only orders (pickup/delivery pairs) not bound to a courier are moved; a left-out task
    that is not such an order makes it give up at once.
    """
    tasks = problem.task_by_id()
    vehicles = problem.vehicle_by_id()
    pair_of: dict[int, Pair] = {}
    for pair in problem.pairs:
        pair_of[pair.pickup_id] = pair
        pair_of[pair.delivery_id] = pair
    placed = {i for _, ids in routes for i in ids}
    pool: list[Pair] = []
    for task in problem.tasks:
        if task.id in placed:
            continue
        order = pair_of.get(task.id)
        if order is None or task.vehicle_id is not None:
            return None
        if task.id == order.pickup_id:
            pool.append(order)
    if not pool:
        return [(v, list(ids)) for v, ids in routes]
    # Plain lists: `insert` reads them faster than numpy for its small sub-matrices.
    travel: list[list[int]] = problem.travel_s.tolist()
    rng = random.Random(seed)
    rng.shuffle(pool)
    state = [_Route(vehicles[v], [tasks[i] for i in ids], pair_of) for v, ids in routes]
    penalty: dict[Pair, int] = {}
    steps = 0
    while pool:
        if steps >= max_steps or time.monotonic() > deadline:
            return None
        steps += 1
        pair = pool.pop()
        penalty[pair] = penalty.get(pair, 0) + 1
        pickup, delivery = tasks[pair.pickup_id], tasks[pair.delivery_id]
        direct = _cheapest(state, pickup, delivery, travel)
        if direct is not None:
            k, stops = direct
            state[k].stops = stops
            continue
        ejection = _cheapest_ejection(state, pickup, delivery, travel, penalty, max_ejected)
        if ejection is None:
            return None  # fits no route even with ejections
        k, stops, ejected = ejection
        state[k].stops = stops
        pool.extend(ejected)
    return [(r.vehicle.id, [t.id for t in r.stops]) for r in state]


_MEMO_SIZE = 50_000  # answers kept per route before the memo starts afresh


class _Route:
    def __init__(self, vehicle: Vehicle, stops: list[Task], pair_of: dict[int, Pair]) -> None:
        self.vehicle = vehicle
        self.stops = stops
        self.pair_of = pair_of
        self.memo: dict[tuple[tuple[int, ...], int], tuple[float, list[Task]] | None] = {}
        self.schedules: dict[tuple[int, ...], Schedule] = {}

    def insert(
        self, stops: list[Task], pickup: Task, delivery: Task, travel: list[list[int]]
    ) -> tuple[float, list[Task]] | None:
        """Cheapest insertion of the order into `stops` on this vehicle: (added travel, new
        stops), the same answer as `routing.insertion.insert` (tested). Memoised, as is each
        stop sequence's schedule: the pool's random walk asks the same questions many times.
        """
        ids = tuple(t.id for t in stops)
        key = (ids, pickup.id)
        if key in self.memo:
            return self.memo[key]
        if len(self.memo) > _MEMO_SIZE:
            self.memo.clear()
            self.schedules.clear()
        schedule = self.schedules.get(ids)
        if schedule is None:
            schedule = self.schedules[ids] = Schedule(self.vehicle, stops, travel)
        found = schedule.cheapest(pickup, delivery, travel)
        answer = None
        if found is not None:
            cost, i, j = found
            answer = (cost, [*stops[:i], pickup, *stops[i:j], delivery, *stops[j:]])
        self.memo[key] = answer
        return answer

    def ejectable(self) -> list[Pair]:
        """Orders on this route that may move (unbound pairs), in route order of pickups."""
        out = []
        for t in self.stops:
            pair = self.pair_of.get(t.id)
            if pair is not None and pair.pickup_id == t.id and t.vehicle_id is None:
                out.append(pair)
        return out


def _cheapest(
    state: list[_Route], pickup: Task, delivery: Task, travel: list[list[int]]
) -> tuple[int, list[Task]] | None:
    best: tuple[float, int, list[Task]] | None = None
    for k, route in enumerate(state):
        found = route.insert(route.stops, pickup, delivery, travel)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], k, found[1])
    return None if best is None else (best[1], best[2])


def _cheapest_ejection(
    state: list[_Route],
    pickup: Task,
    delivery: Task,
    travel: list[list[int]],
    penalty: dict[Pair, int],
    max_ejected: int,
) -> tuple[int, list[Task], list[Pair]] | None:
    """The route and the (at most `max_ejected`) orders to eject from it so that the order
    fits, least total penalty first, then fewest ejected, then least added travel (ties: the
    first route, then the first combination in route order).

    The candidate ejections are tried in order of (penalty, size) and the search stops at the
    first (penalty, size) class holding a feasible one: the same answer as trying them all,
    with a fraction of the insertion checks (most steps find one in the first classes).
    """
    candidates: list[tuple[int, int, int, tuple[Pair, ...]]] = []
    for k, route in enumerate(state):
        movable = [(penalty.get(q, 0), q) for q in route.ejectable()]
        for size in range(1, max_ejected + 1):
            for combo in itertools.combinations(movable, size):
                cost = sum(c for c, _ in combo)
                candidates.append((cost, size, k, tuple(q for _, q in combo)))
    candidates.sort(key=lambda c: (c[0], c[1]))  # stable: enumeration order within a class
    best: tuple[float, int, list[Task], tuple[Pair, ...]] | None = None
    best_class: tuple[int, int] | None = None
    for cost, size, k, ejected in candidates:
        if best_class is not None and (cost, size) != best_class:
            break
        route = state[k]
        gone = {i for q in ejected for i in (q.pickup_id, q.delivery_id)}
        kept = [t for t in route.stops if t.id not in gone]
        found = route.insert(kept, pickup, delivery, travel)
        if found is None:
            continue
        if best is None or found[0] < best[0]:
            best = (found[0], k, found[1], ejected)
            best_class = (cost, size)
    return None if best is None else (best[1], best[2], list(best[3]))
