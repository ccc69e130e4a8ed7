"""Route elimination without OR-Tools: put left-out orders back with an ejection pool.

The solver's fleet reduction drops a route and must place its orders on the other vehicles.
OR-Tools can only restart its iterated local search from a *hint*, which it rebuilds lossily
(docs/routing-notes.md, "lr110 at BKS+2"), and a greedy descent from the exact routes often
leaves one order out. This module finishes the job on exact routes, in the spirit of Nagata &
Bräysy's route minimisation (2009): take an order from the pool of left-out ones; insert it at
its cheapest feasible position (`routing.insertion.insert`) if some route admits it; else eject
the one or two orders from one route whose removal lets it in, preferring orders that were
ejected least often so far (a penalty counter per order), and put those back in the pool.
Every route stays feasible after every step (each insertion is checked in full), so the result,
when the pool empties, is a complete feasible plan with the same routes or fewer.

Pure and deterministic: the same input and seed give the same routes; the only clock use is
the deadline, which can only make it give up (return None) sooner.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence

from routing.insertion import CourierRoute, insert
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


class _Route:
    def __init__(self, vehicle: Vehicle, stops: list[Task], pair_of: dict[int, Pair]) -> None:
        self.vehicle = vehicle
        self.stops = stops
        self.pair_of = pair_of

    def courier(self, stops: Sequence[Task]) -> CourierRoute:
        v = self.vehicle
        return CourierRoute(
            location=v.start,
            now_s=v.shift_start_s,
            stops=tuple(stops),
            load=v.initial_load,
            capacity=v.capacity,
            end=v.end,
            shift_end_s=v.shift_end_s,
        )

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
        found = insert(route.courier(route.stops), pickup, delivery, travel)
        if found is not None and (best is None or found.added_travel_s < best[0]):
            best = (found.added_travel_s, k, list(found.route.stops))
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
    fits, least total penalty first, then fewest ejected, then least added travel."""
    best: tuple[tuple[int, int, float], int, list[Task], list[Pair]] | None = None
    for k, route in enumerate(state):
        movable = route.ejectable()
        for size in range(1, max_ejected + 1):
            for ejected in itertools.combinations(movable, size):
                cost = sum(penalty.get(q, 0) for q in ejected)
                if best is not None and (cost, size) > best[0][:2]:
                    continue
                gone = {i for q in ejected for i in (q.pickup_id, q.delivery_id)}
                kept = [t for t in route.stops if t.id not in gone]
                found = insert(route.courier(kept), pickup, delivery, travel)
                if found is None:
                    continue
                key = (cost, size, found.added_travel_s)
                if best is None or key < best[0]:
                    best = (key, k, list(found.route.stops), list(ejected))
    return None if best is None else (best[1], best[2], best[3])
