"""Insertion into one courier's route and re-ordering it, checked against brute force."""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.feasibility import check_plan
from routing.insertion import CourierRoute, insert, route_cost_s
from routing.model import Pair, Problem, Task, Vehicle, make_plan
from routing.reorder import EXACT_MAX_STOPS, reoptimize


def _as_problem(
    route: CourierRoute, travel_s: npt.NDArray[np.int64], extra: tuple[Task, ...] = ()
) -> Problem:
    """The courier's route as a one-vehicle problem, so the independent checker can judge it."""
    paired = {i for p in route.pairs for i in (p.pickup_id, p.delivery_id)}
    tasks = tuple(
        t if t.id in paired or t in extra else msgspec.structs.replace(t, vehicle_id=0)
        for t in (*route.stops, *extra)
    )
    pairs = route.pairs
    if extra:
        pairs = (*pairs, Pair(pickup_id=extra[0].id, delivery_id=extra[1].id))
    return Problem(
        travel_s=travel_s,
        dist=travel_s.astype(np.float64),
        tasks=tasks,
        pairs=pairs,
        vehicles=(
            Vehicle(
                id=0,
                start=route.location,
                end=route.end,
                shift_start_s=route.now_s,
                shift_end_s=route.shift_end_s,
                capacity=route.capacity,
                initial_load=route.load,
            ),
        ),
    )


def _feasible_cost(problem: Problem, order: list[int]) -> int | None:
    plan = make_plan(problem, [(0, order)])
    return None if check_plan(problem, plan) else plan.travel_s


def _random_route(
    seed: int, n_pairs: int, n_onboard: int, tight: bool
) -> tuple[CourierRoute, Task, Task, npt.NDArray[np.int64]]:
    """A courier route with windows built around its own schedule (feasible), plus a new order.

    Travel is Euclidean rounded up, which keeps the triangle inequality.
    """
    rng = np.random.default_rng(seed)
    n_stops = 2 * n_pairs + n_onboard
    n_loc = 1 + n_stops + 2 + 1  # courier, stops, new pickup/drop-off, end
    xy = rng.integers(0, 100, size=(n_loc, 2))
    travel_s = np.ceil(np.sqrt(((xy[:, None] - xy[None, :]) ** 2).sum(axis=2))).astype(np.int64)
    # Visiting order: each pair's pickup before its drop-off; on-board drop-offs anywhere.
    seq = [k for k in range(n_pairs) for _ in range(2)] + [-1 - k for k in range(n_onboard)]
    rng.shuffle(seq)
    seen: set[int] = set()
    stops: list[Task] = []
    t_s, at = 0, 0
    onboard_amounts = list(rng.integers(1, 3, size=n_onboard))
    load = int(sum(onboard_amounts))
    start_load, max_load = load, load
    loc = 1
    pair_ids: list[tuple[int, int]] = []
    ids_of: dict[int, int] = {}
    amount_of = {k: int(rng.integers(1, 4)) for k in range(n_pairs)}
    for k in seq:
        if k >= 0 and k not in seen:
            demand = amount_of[k]
            ids_of[k] = loc
        elif k >= 0:
            demand = -amount_of[k]
            pair_ids.append((ids_of[k], loc))
        else:
            demand = -int(onboard_amounts[-1 - k])
        seen.add(k)
        arrival = t_s + int(travel_s[at, loc])
        ready = max(0, arrival + int(rng.integers(-50, 30)))
        start = max(arrival, ready)
        due = start + int(rng.integers(0, 40 if tight else 200))
        service = int(rng.integers(0, 10))
        stops.append(
            Task(id=loc, location=loc, demand=demand, ready_s=ready, due_s=due, service_s=service)
        )
        load += demand
        max_load = max(max_load, load)
        t_s, at = start + service, loc
        loc += 1
    end = n_loc - 1 if rng.random() < 0.5 else None
    finish = t_s + (int(travel_s[at, end]) if end is not None else 0)
    route = CourierRoute(
        location=0,
        now_s=0,
        stops=tuple(stops),
        pairs=tuple(Pair(pickup_id=p, delivery_id=d) for p, d in pair_ids),
        load=start_load,
        capacity=max_load + int(rng.integers(0, 3)),
        end=end,
        shift_end_s=finish + int(rng.integers(0, 300)),
    )
    q = int(rng.integers(1, 3))
    ready = int(rng.integers(0, 300))
    pickup = Task(
        id=loc,
        location=loc,
        demand=q,
        ready_s=ready,
        due_s=ready + int(rng.integers(0, 400)),
        service_s=int(rng.integers(0, 10)),
    )
    delivery = Task(
        id=loc + 1,
        location=loc + 1,
        demand=-q,
        due_s=ready + int(rng.integers(50, 600)),
        service_s=int(rng.integers(0, 10)),
    )
    return route, pickup, delivery, travel_s


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_pairs=st.integers(0, 4),
    n_onboard=st.integers(0, 2),
    tight=st.booleans(),
)
def test_insert_matches_brute_force(seed: int, n_pairs: int, n_onboard: int, tight: bool) -> None:
    """`insert` finds a feasible insertion iff one exists, at the minimum added travel, keeps
    the other stops in order, and the route it returns passes the independent checker."""
    route, pickup, delivery, travel_s = _random_route(seed, n_pairs, n_onboard, tight)
    problem = _as_problem(route, travel_s, (pickup, delivery))
    base_s = route_cost_s(route, travel_s)
    ids = [s.id for s in route.stops]
    best: int | None = None
    for i in range(len(ids) + 1):
        for j in range(i, len(ids) + 1):
            cost = _feasible_cost(problem, [*ids[:i], pickup.id, *ids[i:j], delivery.id, *ids[j:]])
            if cost is not None and (best is None or cost < best):
                best = cost

    got = insert(route, pickup, delivery, travel_s)
    if best is None:
        assert got is None
        return
    assert got is not None
    assert got.added_travel_s == best - base_s
    new_ids = [s.id for s in got.route.stops]
    assert [i for i in new_ids if i in ids] == ids
    assert new_ids[got.pickup_index] == pickup.id
    assert new_ids[got.delivery_index] == delivery.id
    assert _feasible_cost(problem, new_ids) == best
    assert got.route.pairs[-1] == Pair(pickup_id=pickup.id, delivery_id=delivery.id)


def test_insert_hand_checked() -> None:
    """On a line, an order on the way is inserted where it adds least: 0 -> [A 10] -> [B 30]
    with a new order 20 -> 40 goes A, pick 20, B, drop 40: +10 s travel."""
    travel_s = np.abs(np.subtract.outer([0, 10, 30, 20, 40], [0, 10, 30, 20, 40]))
    route = CourierRoute(
        location=0,
        now_s=0,
        stops=(Task(id=1, location=1, demand=1), Task(id=2, location=2, demand=-1)),
        pairs=(Pair(pickup_id=1, delivery_id=2),),
    )
    got = insert(
        route, Task(id=3, location=3, demand=1), Task(id=4, location=4, demand=-1), travel_s
    )
    assert got is not None
    assert [s.id for s in got.route.stops] == [1, 3, 2, 4]
    assert got.added_travel_s == 10
    # With capacity 1 the courier cannot hold both orders: A must be delivered first.
    full = CourierRoute(location=0, now_s=0, stops=route.stops, pairs=route.pairs, capacity=1)
    got = insert(
        full, Task(id=3, location=3, demand=1), Task(id=4, location=4, demand=-1), travel_s
    )
    assert got is not None
    assert [s.id for s in got.route.stops] == [1, 2, 3, 4]
    assert got.added_travel_s == 30


def test_insert_refuses_a_route_already_late() -> None:
    """A route that already misses a deadline takes no new order (None)."""
    travel_s = np.abs(np.subtract.outer([0, 10, 20, 30], [0, 10, 20, 30]))
    route = CourierRoute(location=0, now_s=100, stops=(Task(id=1, location=1, due_s=50),))
    assert (
        insert(route, Task(id=2, location=2, demand=1), Task(id=3, location=3, demand=-1), travel_s)
        is None
    )


def _all_orders(route: CourierRoute, travel_s: npt.NDArray[np.int64]) -> int | None:
    problem = _as_problem(route, travel_s)
    best: int | None = None
    for order in itertools.permutations([s.id for s in route.stops]):
        cost = _feasible_cost(problem, list(order))
        if cost is not None and (best is None or cost < best):
            best = cost
    return best


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n_pairs=st.integers(0, 2), n_onboard=st.integers(0, 2))
def test_reoptimize_exact_matches_brute_force(seed: int, n_pairs: int, n_onboard: int) -> None:
    """Exact re-ordering from the courier's position equals the best of all orders (checked
    by the independent checker), and never loses to the current order."""
    route, *_rest, travel_s = _random_route(seed, n_pairs, n_onboard, tight=False)
    route = msgspec.structs.replace(route, stops=route.stops[::-1])  # scrambled
    got = reoptimize(route, travel_s)
    if not route.stops:  # nothing to order: just the drive to the end location, if any
        assert got is not None
        assert got.travel_s == route_cost_s(route, travel_s)
        return
    best = _all_orders(route, travel_s)
    if best is None:
        assert got is None
        return
    assert got is not None
    assert got.exact
    assert got.travel_s == best
    assert _feasible_cost(_as_problem(route, travel_s), [s.id for s in got.route.stops]) == best


def test_reoptimize_long_route_with_ortools() -> None:
    """Beyond the exact limit, OR-Tools re-orders the route: feasible, and no worse than now."""
    route, *_rest, travel_s = _random_route(seed=7, n_pairs=5, n_onboard=1, tight=False)
    assert len(route.stops) > EXACT_MAX_STOPS
    got = reoptimize(route, travel_s, time_limit_s=0.3)
    assert got is not None
    assert not got.exact
    problem = _as_problem(route, travel_s)
    cost = _feasible_cost(problem, [s.id for s in got.route.stops])
    assert cost is not None
    assert cost == got.travel_s <= route_cost_s(route, travel_s)
