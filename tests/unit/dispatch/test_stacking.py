"""Stacking rule: same chef, or an insertion that keeps every promised time; bounded."""

from __future__ import annotations

from dispatch.stacking import StackedCourier, StackOrder, stack_cost_s
from geo.travel import HaversineTravelModel, Vehicle

MODEL = HaversineTravelModel()
CHEF = (12.9700, 77.5900)
KM = 1 / 111.32  # degrees of latitude per km


def order(oid: str, chef: str, pickup: tuple[float, float], drop_km_north: float,
          promised_at_s: float, ready_at_s: float = 300.0) -> StackOrder:
    return StackOrder(order_id=oid, chef=chef, pickup=pickup,
                      dropoff=(pickup[0] + drop_km_north * KM, pickup[1]),
                      ready_at_s=ready_at_s, promised_at_s=promised_at_s)


def courier(*held: StackOrder) -> StackedCourier:
    return StackedCourier(position=(CHEF[0] - 1 * KM, CHEF[1]), vehicle=Vehicle.SCOOTER,
                          held=held)


def cost(c: StackedCourier, new: StackOrder, max_stack: int = 2) -> float | None:
    return stack_cost_s(c, new, now_s=0.0, max_stack=max_stack, service_s=120.0, travel=MODEL)


def test_same_chef_second_order_is_stacked_cheaply() -> None:
    held = order("a", "chef-1", CHEF, 2.0, promised_at_s=3600)
    new = order("b", "chef-1", CHEF, 2.2, promised_at_s=3600)
    added = cost(courier(held), new)
    assert added is not None
    # Same pickup stop: only the 200 m further drop-off is added, far less than a ride to
    # the chef from elsewhere.
    assert 0 < added < MODEL.travel_s(*CHEF, CHEF[0] + 1 * KM, CHEF[1], Vehicle.SCOOTER)


def test_same_chef_joins_even_when_a_promise_is_at_risk() -> None:
    held = order("a", "chef-1", CHEF, 2.0, promised_at_s=3600)
    tight = order("b", "chef-1", CHEF, -3.0, promised_at_s=400)  # cannot be met at all
    relaxed = order("b", "chef-1", CHEF, -3.0, promised_at_s=3600)
    at_risk, fine = cost(courier(held), tight), cost(courier(held), relaxed)
    assert at_risk is not None
    assert fine is not None
    # Its lateness is priced (3 s per late second), so an idle courier can still win it.
    assert at_risk > fine + 3 * 60


def test_waiting_for_later_food_is_charged_to_the_stack() -> None:
    """A second order whose food is ready 10 min after the first makes the first customer
    wait: that delay is in the cost, so an idle courier 1 km away is preferred to stacking."""
    held = order("a", "chef-1", CHEF, 2.0, ready_at_s=300, promised_at_s=3600)
    soon = order("b", "chef-1", CHEF, 2.2, ready_at_s=300, promised_at_s=3600)
    later = order("b", "chef-1", CHEF, 2.2, ready_at_s=900, promised_at_s=3600)
    same_time, ten_min_later = cost(courier(held), soon), cost(courier(held), later)
    assert same_time is not None
    assert ten_min_later is not None
    assert ten_min_later >= same_time + 540  # ~600 s of waiting imposed on a's drop-off
    idle_ride_s = MODEL.travel_s(*CHEF, CHEF[0] + 1 * KM, CHEF[1], Vehicle.SCOOTER)
    assert ten_min_later > idle_ride_s > same_time


def test_other_chef_on_the_way_is_stacked_when_every_promise_holds() -> None:
    held = order("a", "chef-1", CHEF, 4.0, promised_at_s=3600)
    other = (CHEF[0] + 2 * KM, CHEF[1])  # on the way to a's drop-off
    new = order("b", "chef-2", other, 1.0, promised_at_s=3600)
    assert cost(courier(held), new) is not None


def test_insertion_that_breaks_a_promised_time_is_not_stacked() -> None:
    # a and b must each be delivered about as soon as a courier could go straight there:
    # whichever goes second is late, so no insertion keeps both promises.
    start = (CHEF[0] - 1 * KM, CHEF[1])
    other = (CHEF[0], CHEF[1] + 3 * KM)  # 3 km off to the side

    def direct_s(pickup: tuple[float, float]) -> float:
        return (MODEL.travel_s(*start, *pickup, Vehicle.SCOOTER)
                + MODEL.travel_s(*pickup, pickup[0] + 2 * KM, pickup[1], Vehicle.SCOOTER)
                + 120 + 60)

    held = order("a", "chef-1", CHEF, 2.0, ready_at_s=0, promised_at_s=direct_s(CHEF))
    new = order("b", "chef-2", other, 2.0, ready_at_s=0, promised_at_s=direct_s(other))
    assert cost(courier(held), new) is None
    # The same order with a relaxed promise on a is stackable: the promise was the reason.
    relaxed = order("a", "chef-1", CHEF, 2.0, ready_at_s=0, promised_at_s=7200)
    assert cost(courier(relaxed), new) is not None  # b first, then a
    # and the new order's own promise counts too.
    late_new = order("b", "chef-2", other, 2.0, promised_at_s=200)
    assert cost(courier(relaxed), late_new) is None


def test_stack_is_bounded_and_needs_a_held_order() -> None:
    a = order("a", "chef-1", CHEF, 2.0, promised_at_s=3600)
    b = order("b", "chef-1", CHEF, 2.1, promised_at_s=3600)
    c = order("c", "chef-1", CHEF, 2.2, promised_at_s=3600)
    assert cost(courier(a, b), c, max_stack=2) is None
    assert cost(courier(a, b), c, max_stack=3) is not None
    assert cost(courier(), c, max_stack=3) is None


def test_epoch_clock() -> None:
    """Rounds run on epoch seconds (~1.8e9, beyond routing's "no deadline" of 2**30)."""
    now = 1_795_000_000.0
    held = order("a", "chef-1", CHEF, 2.0, ready_at_s=now + 120, promised_at_s=now + 2400)
    new = order("b", "chef-1", CHEF, 2.1, ready_at_s=now + 120, promised_at_s=now + 2400)
    added = stack_cost_s(courier(held), new, now_s=now, max_stack=2, service_s=120.0,
                         travel=MODEL)
    assert added == cost(courier(order("a", "chef-1", CHEF, 2.0, ready_at_s=120,
                                       promised_at_s=2400)),
                         order("b", "chef-1", CHEF, 2.1, ready_at_s=120, promised_at_s=2400))
    assert added is not None


def test_a_cap_on_the_delay_refuses_a_stack_that_makes_the_first_customer_wait() -> None:
    """Same chef, the second food ready 10 min after the first: the held order's drop-off
    moves ~10 min later. Priced in the cost without a cap; refused with a 5-minute cap, and
    kept with a cap the delay fits under."""
    held = order("a", "chef-1", CHEF, 2.0, promised_at_s=3600, ready_at_s=300.0)
    new = order("b", "chef-1", CHEF, 2.0, promised_at_s=3600, ready_at_s=900.0)

    def capped(max_delay_s: float | None) -> float | None:
        return stack_cost_s(courier(held), new, now_s=0.0, max_stack=2, service_s=120.0,
                            travel=MODEL, max_delay_s=max_delay_s)

    uncapped = capped(None)
    assert uncapped is not None
    assert uncapped >= 600.0 - 1  # the first customer's 10-minute wait is in the cost
    assert capped(300.0) is None
    assert capped(900.0) == uncapped
