"""What one matching round decides (`dispatch.round.plan_round`), on tiny cities laid out on
one meridian so every distance is a difference of metres north: who is offered which order,
which couriers are candidates at all, when a courier already heading to a chef gets a second
order, and that the same inputs always give the same plan."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from dispatch.round import (
    HeldOrders,
    RoundCouriers,
    RoundInputs,
    RoundOrder,
    RoundParams,
    RoundPlan,
    plan_round,
)
from geo.distance import haversine_m

NOW_MS = 1_750_000_000_000
LAT0, LNG0 = 12.9716, 77.5946
M_PER_DEG = 111_320.0


def at(north_m: float, east_deg: float = 0.0) -> tuple[float, float]:
    """A point `north_m` metres north of the city's origin (and `east_deg` east)."""
    return LAT0 + north_m / M_PER_DEG, LNG0 + east_deg


def order(order_id: str, chef_m: float, drop_m: float | None = None, *, chef: str = "chef-1",
          ready_in_s: float = -60, promised_in_s: float = 40 * 60,
          declined: frozenset[str] = frozenset()) -> RoundOrder:
    pickup = at(chef_m)
    dropoff = at(chef_m + 500 if drop_m is None else drop_m)
    return RoundOrder(order_id=order_id, chef=chef, pickup_lat=pickup[0], pickup_lng=pickup[1],
                      dropoff_lat=dropoff[0], dropoff_lng=dropoff[1],
                      ready_ms=NOW_MS + round(ready_in_s * 1000),
                      promised_ms=NOW_MS + round(promised_in_s * 1000), declined=declined)


class Courier(msgspec.Struct, frozen=True):
    courier_id: str
    north_m: float
    status: str = "idle"
    vehicle: str = "bike"


def city(orders: list[RoundOrder], couriers: list[Courier], *, radius_m: float = 5000.0,
         limit: int = 12, stacks: tuple[HeldOrders, ...] = ()) -> RoundInputs:
    """The round's inputs as the search gives them: per order and status, the couriers
    within `radius_m` by (distance, id), the first `limit` + its declines."""
    table = sorted(couriers, key=lambda c: c.courier_id)
    points = [at(c.north_m) for c in table]

    def nearest(status: str) -> np.ndarray:
        rows = []
        for o in orders:
            found = sorted((haversine_m(o.pickup_lat, o.pickup_lng, *p), m)
                           for m, (c, p) in enumerate(zip(table, points, strict=True))
                           if c.status == status)
            rows.append([m for d, m in found if d <= radius_m][:limit + len(o.declined)])
        out = np.full((len(orders), max([1, *map(len, rows)])), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out

    return RoundInputs(
        orders=orders, now_ms=NOW_MS, idle=nearest("idle"), to_pickup=nearest("to_pickup"),
        stacks=stacks,
        couriers=RoundCouriers(ids=[c.courier_id for c in table],
                               lat=np.asarray([p[0] for p in points]),
                               lng=np.asarray([p[1] for p in points]),
                               vehicle=[c.vehicle for c in table]))


def offered(plan: RoundPlan) -> dict[str, str]:
    return {o.order_id: o.courier_id for o in plan.offers}


def test_the_optimum_beats_nearest_first() -> None:
    """c1 at 0 m, c2 at 1000 m; A's chef at 400 m (ready first), B's at -800 m. Nearest
    first gives A the nearer c1 and leaves B the far c2 (rides 400 + 1800 m); the optimal
    policy swaps them (600 + 800 m), at a lower total cost."""
    inputs = city([order("A", 400, ready_in_s=-2), order("B", -800, ready_in_s=-1)],
                  [Courier("c1", 0), Courier("c2", 1000)])
    optimal = plan_round(inputs, RoundParams(policy="optimal"))
    greedy = plan_round(inputs, RoundParams(policy="greedy"))
    assert offered(optimal) == {"A": "c2", "B": "c1"}
    assert offered(greedy) == {"A": "c1", "B": "c2"}
    assert optimal.total_cost_s < greedy.total_cost_s
    assert optimal.n_couriers == greedy.n_couriers == 2


def test_a_courier_who_declined_an_order_is_never_its_candidate() -> None:
    """The decliner is skipped even when it is the nearest and free: the order goes to the
    next courier found; with nobody else in reach it waits, and the decliner stays free."""
    near, far = Courier("c-near", 100), Courier("c-far", 2000)
    plan = plan_round(city([order("A", 0, declined=frozenset({"c-near"}))], [near, far]),
                      RoundParams())
    assert offered(plan) == {"A": "c-far"}
    alone = plan_round(city([order("A", 0, declined=frozenset({"c-near"}))], [near]),
                       RoundParams())
    assert alone.offers == []
    assert alone.unassigned == ["A"]


def test_k_limits_the_candidates_of_an_order() -> None:
    """With K = 1 each order sees only its nearest courier: two orders nearest to c1 cannot
    both be served though c2 is free (one waits); with K = 2 both are."""
    inputs = city([order("A", 0), order("B", 50)], [Courier("c1", 20), Courier("c2", 900)])
    one = plan_round(inputs, RoundParams(candidates=1))
    assert len(one.offers) == 1
    assert set(offered(one).values()) == {"c1"}
    assert one.n_couriers == 1  # c2 was nobody's candidate
    two = plan_round(inputs, RoundParams(candidates=2))
    assert sorted(offered(two).values()) == ["c1", "c2"]
    assert two.unassigned == []


def test_a_courier_heading_to_a_chef_is_offered_that_chefs_next_order() -> None:
    """A courier on its way to chef-A with one order gets chef-A's next order as a stacked
    offer (naming the order it holds) rather than an idle courier 2 km away; with stacking
    off (max stack 1) the idle courier gets it."""
    held = order("h1", 0, 1100, chef="chef-A", ready_in_s=120)
    new = order("o2", 0, 1160, chef="chef-A", ready_in_s=120)
    heading = Courier("c-heading", 220, status="to_pickup", vehicle="scooter")
    idle = Courier("c-idle", 2200, vehicle="scooter")
    stack = HeldOrders(courier_id="c-heading", vehicle="scooter", orders=(held,))
    inputs = city([new], [heading, idle], stacks=(stack,))
    (offer,) = plan_round(inputs, RoundParams()).offers
    assert (offer.courier_id, offer.stacked, offer.held) == ("c-heading", True, ("h1",))
    (single,) = plan_round(inputs, RoundParams(max_stack=1)).offers
    assert (single.courier_id, single.stacked, single.held) == ("c-idle", False, ())


def test_a_stacked_courier_who_declined_is_not_offered_it_again() -> None:
    """Declines hold for couriers heading to a chef too."""
    held = order("h1", 0, 1100, chef="chef-A", ready_in_s=120)
    new = order("o2", 0, 1160, chef="chef-A", ready_in_s=120,
                declined=frozenset({"c-heading"}))
    inputs = city([new], [Courier("c-heading", 220, status="to_pickup")],
                  stacks=(HeldOrders(courier_id="c-heading", vehicle="bike", orders=(held,)),))
    plan = plan_round(inputs, RoundParams())
    assert plan.offers == []
    assert plan.n_couriers == 0


def test_orders_with_no_courier_in_reach_are_left_unassigned() -> None:
    """An order with no courier found within the search radius waits, and so does one whose
    only courier is found but rides longer than the pickup limit (20 min); the others are
    served. With no courier at all the round considers nobody."""
    orders = [order("near", 0), order("lonely", 30_000), order("too-far", -60_000)]
    inputs = city(orders, [Courier("c1", 100), Courier("c-far", -52_000)], radius_m=10_000)
    plan = plan_round(inputs, RoundParams())
    assert offered(plan) == {"near": "c1"}
    assert plan.unassigned == ["lonely", "too-far"]
    empty = plan_round(city(orders, []), RoundParams())
    assert (empty.offers, empty.n_couriers) == ([], 0)
    assert empty.unassigned == ["near", "lonely", "too-far"]


def test_an_offer_carries_what_the_courier_is_told() -> None:
    """Each offer names the order's pickup, drop-off and ready time as given."""
    o = order("A", 300, 900, ready_in_s=240)
    (offer,) = plan_round(city([o], [Courier("c1", 0)]), RoundParams()).offers
    assert (offer.pickup_lat, offer.pickup_lng) == (o.pickup_lat, o.pickup_lng)
    assert (offer.dropoff_lat, offer.dropoff_lng) == (o.dropoff_lat, o.dropoff_lng)
    assert offer.ready_ms == o.ready_ms


@pytest.mark.parametrize("policy", ["optimal", "greedy"])
def test_the_same_inputs_give_the_same_plan(policy: str) -> None:
    """A seeded city of 60 orders and 40 couriers (some interchangeable: two at each spot),
    planned twice, gives equal plans; every courier and every order appears at most once."""
    rng = np.random.default_rng(7)
    orders = [order(f"o{i:02d}", float(rng.integers(-3000, 3000)),
                    ready_in_s=float(rng.integers(-120, 600))) for i in range(60)]
    spots = rng.integers(-3000, 3000, 20).tolist()
    couriers = [Courier(f"c{j:02d}", float(spots[j // 2])) for j in range(40)]
    params = RoundParams(policy="greedy" if policy == "greedy" else "optimal")
    first = plan_round(city(orders, couriers), params)
    again = plan_round(city(orders, couriers), params)
    assert first == again
    assert len(first.offers) == 40
    assert len({o.courier_id for o in first.offers}) == 40
    assert len(first.offers) + len(first.unassigned) == 60


def test_holding_leaves_an_early_courier_free_for_a_later_round() -> None:
    """Food ready in 15 min, a courier 200 m away: offered at once by default; with
    `commit_early_s` = 3 min it would wait 14 min at the counter, so the order waits a
    round; once the food is 3 minutes off it is offered. A stacked courier is not held."""
    inputs = city([order("o1", 0, ready_in_s=15 * 60)], [Courier("c1", 200)])
    assert offered(plan_round(inputs, RoundParams())) == {"o1": "c1"}
    held = plan_round(inputs, RoundParams(commit_early_s=180.0))
    assert (held.offers, held.unassigned) == ([], ["o1"])
    soon = city([order("o1", 0, ready_in_s=3 * 60)], [Courier("c1", 200)])
    assert offered(plan_round(soon, RoundParams(commit_early_s=180.0))) == {"o1": "c1"}
    first = order("h1", 0, 1100, chef="chef-A", ready_in_s=15 * 60)
    stacked = city([order("o2", 0, 1160, chef="chef-A", ready_in_s=15 * 60)],
                   [Courier("c-heading", 220, status="to_pickup")],
                   stacks=(HeldOrders(courier_id="c-heading", vehicle="bike", orders=(first,)),))
    (offer,) = plan_round(stacked, RoundParams(commit_early_s=180.0)).offers
    assert offer.stacked
