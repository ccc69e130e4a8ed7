"""The lab's event engine on tiny days: hand-checked timing, repeatability, KPIs that agree
with the records, and the production planner deciding every round."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from dispatch.day_kpis import percentile
from dispatch.prep import PrepParams
from dispatch.reposition import RepositionParams
from dispatch.round import RoundInputs, RoundParams, RoundPlan, plan_round
from geo.travel import HaversineTravelModel, Vehicle
from lab.city import Day, LabCourier, LabOrder, build_day
from lab.engine import LabDispatch, RunResult, nearest_members, simulate_day
from lab.kpis import lab_kpis, series
from lab.policies import apply_policy
from lab.scenario import PRESETS, Couriers, Scenario, Shift

T0 = 1_788_796_800_000
MIN = 60_000
MODEL = HaversineTravelModel()
CHEF = (12.9716, 77.5946)


def _east(m: float) -> tuple[float, float]:
    """A point `m` metres east of CHEF."""
    return (CHEF[0], CHEF[1] + m / (111_320.0 * math.cos(math.radians(CHEF[0]))))


def _day(orders: list[LabOrder], couriers: list[LabCourier], *, think_s: float = 5.0) -> Day:
    """A hand-made day: couriers at exactly the model's pace, no leg noise, a fixed think
    time, everyone accepting."""
    scenario = Scenario(name="hand", start_utc_ms=T0, hours=1.0, drain_h=1.0,
                        couriers=Couriers(count=len(couriers), leg_sigma=0.0,
                                          think_s=(think_s, think_s),
                                          shifts=(Shift(start_h=0, end_h=2, share=1.0),)))
    return Day(scenario=scenario, seed=0, chefs=(CHEF,), declared_prep_min=(10,),
               orders=tuple(orders), couriers=tuple(couriers))


def _courier(k: int, at: tuple[float, float], vehicle: str = "bike") -> LabCourier:
    return LabCourier(courier_id=f"c{k:04d}", vehicle=vehicle, start=at, shift_start_ms=T0,
                      shift_end_ms=T0 + 120 * MIN, accept_prob=1.0, pace=1.0)


def _order(i: int, *, pickup: tuple[float, float], dropoff: tuple[float, float],
           accepted_ms: int, estimated_ready_ms: int, ready_ms: int,
           promised_ms: int) -> LabOrder:
    return LabOrder(order_id=f"o{i:05d}", chef=0, pickup=pickup, dropoff=dropoff,
                    placed_ms=accepted_ms - MIN, accepted_ms=accepted_ms,
                    estimated_ready_ms=estimated_ready_ms, ready_ms=ready_ms,
                    promised_ms=promised_ms)


def _run(day: Day, policy: str = "optimal", **kw: object) -> RunResult:
    return simulate_day(day, LabDispatch(params=RoundParams(policy=policy)),  # type: ignore[arg-type]
                        MODEL, **kw)  # type: ignore[arg-type]


def test_one_order_is_delivered_on_the_hand_computed_timeline() -> None:
    """A courier standing at the kitchen: the order enters matching at ready - 60 s lead
    (the ride is 0), the offer goes out in that round, is accepted 5 s later, the courier
    waits for the food, hands over for 60 s and rides the model's time to the door."""
    door = _east(1500.0)
    order = _order(0, pickup=CHEF, dropoff=door, accepted_ms=T0 + MIN,
                   estimated_ready_ms=T0 + 11 * MIN, ready_ms=T0 + 11 * MIN,
                   promised_ms=T0 + 40 * MIN)
    run = _run(_day([order], [_courier(0, CHEF)]))
    (r,) = run.orders
    entry = T0 + 10 * MIN  # ready - (0 s ride + 60 s lead); a round falls on it (2 s grid)
    assert r.assigned_ms == entry + 5000
    assert r.courier_id == "c0000"
    assert r.at_chef_ms == entry + 5000  # already there
    assert r.picked_up_ms == T0 + 11 * MIN  # waited for the food
    ride_ms = round(MODEL.travel_s(*CHEF, *door, Vehicle.BIKE) * 1000)
    assert r.delivered_ms == T0 + 12 * MIN + ride_ms
    assert r.predicted_drop_ms == r.delivered_ms  # no noise: the ETA at pickup is exact
    assert run.offers == 1
    k = lab_kpis(run, couriers=1)
    assert (k.delivered, k.undelivered, k.late_pct, k.eta_error_p90_s) == (1, 0, 0.0, 0.0)
    assert k.wait_at_chef_p50_s == 55.0


def test_food_ready_early_brings_the_order_forward() -> None:
    """The kitchen is ready 6 minutes before it declared: the order, queued for
    (estimate - lead), becomes due when the food is marked ready (`entry_when_food_ready_ms`)
    and is offered in the next round."""
    order = _order(0, pickup=CHEF, dropoff=_east(800.0), accepted_ms=T0 + MIN,
                   estimated_ready_ms=T0 + 15 * MIN, ready_ms=T0 + 8 * MIN,
                   promised_ms=T0 + 40 * MIN)
    (r,) = _run(_day([order], [_courier(0, CHEF)])).orders
    assert r.assigned_ms == T0 + 8 * MIN + 5000
    assert r.picked_up_ms == r.assigned_ms


def test_a_slow_kitchen_is_learnt_and_its_next_order_sent_later() -> None:
    """A kitchen that declares 10 minutes and takes 20: its first order's courier (at the
    counter) waits 10 minutes either way. With prediction (`-prep`) the second order, accepted
    once the first was delivered (the courier idle at its door), is predicted at 20 minutes,
    so its courier is sent for then and waits only the queue-entry lead; trusting the
    declared time it waits 10 minutes again."""
    orders = [_order(i, pickup=CHEF, dropoff=_east(800.0), accepted_ms=start,
                     estimated_ready_ms=start + 10 * MIN, ready_ms=start + 20 * MIN,
                     promised_ms=start + 60 * MIN)
              for i, start in enumerate((T0 + MIN, T0 + 35 * MIN))]
    day = _day(orders, [_courier(0, CHEF)])
    waits = {}
    for prep in (None, PrepParams()):
        run = simulate_day(day, LabDispatch(prep=prep), MODEL)
        waits[prep is not None] = [(r.picked_up_ms or 0) - (r.at_chef_ms or 0)
                                   for r in run.orders]
    assert waits[False][0] == waits[True][0] >= 10 * MIN
    assert waits[False][1] >= 10 * MIN
    assert waits[True][1] <= 60_000  # the queue-entry lead, no more


def test_the_improvements_decide_through_the_production_planner() -> None:
    """Under the `improved` policy too, each round's plan is `plan_round`'s for its inputs
    with the policy's parameters (holding, added lateness, no stacking): the lab never
    copies a policy."""
    day = build_day(PRESETS["tiny"], 3)
    d = apply_policy("improved", LabDispatch())
    rounds: list[tuple[RoundInputs, RoundPlan]] = []
    run = simulate_day(day, d, MODEL, on_round=lambda i, p: rounds.append((i, p)))
    assert rounds
    assert all(plan == plan_round(inputs, d.params) for inputs, plan in rounds)
    assert sum(r.delivered_ms is not None for r in run.orders) == len(day.orders)


def _crossing_day() -> Day:
    """Two kitchens on a line and two couriers: order o00000 (ready first) has courier c0000
    nearest (100 m) but c0001 at 300 m; order o00001 has only c0000 near (100 m, the other is
    ~2.7 km away). Nearest-first gives o00000 c0000 and o00001 the far courier; the optimum
    swaps them."""
    k1, k2 = _east(0.0), _east(200.0)
    couriers = [_courier(0, _east(100.0)), _courier(1, _east(-300.0))]
    orders = [
        _order(0, pickup=k1, dropoff=_east(-800.0), accepted_ms=T0 + MIN,
               estimated_ready_ms=T0 + 2 * MIN, ready_ms=T0 + 2 * MIN,
               promised_ms=T0 + 30 * MIN),
        _order(1, pickup=k2, dropoff=_east(1000.0), accepted_ms=T0 + MIN,
               estimated_ready_ms=T0 + 2 * MIN + 1000, ready_ms=T0 + 2 * MIN + 1000,
               promised_ms=T0 + 30 * MIN),
    ]
    return _day(orders, couriers)


def test_the_policy_decides_through_the_production_planner() -> None:
    """Each round's plan is exactly what `dispatch.round.plan_round` answers for that round's
    inputs (the lab calls the production planner, no copy), and on the crossing day the two
    matchers assign differently: greedy gives the first-ready order its nearest courier,
    optimal the cheaper total."""
    seen: dict[str, list[tuple[RoundInputs, RoundPlan]]] = {"greedy": [], "optimal": []}
    result = {}
    for policy in seen:
        result[policy] = _run(_crossing_day(), policy,
                              on_round=lambda i, p, policy=policy: seen[policy].append((i, p)))
        for inputs, plan in seen[policy]:
            assert plan == plan_round(inputs, RoundParams(policy=policy))  # type: ignore[arg-type]
    couriers = {p: {r.order_id: r.courier_id for r in run.orders} for p, run in result.items()}
    assert couriers["greedy"] == {"o00000": "c0000", "o00001": "c0001"}
    assert couriers["optimal"] == {"o00000": "c0001", "o00001": "c0000"}
    first = {p: rounds[0][1] for p, rounds in seen.items()}
    assert first["optimal"].total_cost_s < first["greedy"].total_cost_s
    assert all(r.delivered_ms is not None for run in result.values() for r in run.orders)


def test_same_seed_same_day_and_result() -> None:
    """A preset day is a function of its seed: built twice, run twice, byte-identical; another
    seed gives another day."""
    tiny = PRESETS["tiny"]
    a, b = build_day(tiny, 7), build_day(tiny, 7)
    assert msgspec.json.encode(a) == msgspec.json.encode(b)
    assert msgspec.json.encode(build_day(tiny, 8)) != msgspec.json.encode(a)
    ra, rb = _run(a), _run(b)
    assert msgspec.json.encode(ra) == msgspec.json.encode(rb)
    assert msgspec.json.encode(lab_kpis(ra, 15)) == msgspec.json.encode(lab_kpis(rb, 15))


def test_a_tiny_day_is_consistent() -> None:
    """On the tiny preset every order is delivered; each timeline runs forward (placed,
    accepted, assigned, at the chef, picked up no earlier than the food was really ready,
    delivered); the KPIs are the records' figures."""
    day = build_day(PRESETS["tiny"], 3)
    run = _run(day)
    real_ready = {o.order_id: o.ready_ms for o in day.orders}
    for r in run.orders:
        assert r.assigned_ms is not None
        assert r.at_chef_ms is not None
        assert r.picked_up_ms is not None
        assert r.delivered_ms is not None
        assert r.placed_ms < r.accepted_ms <= r.assigned_ms <= r.at_chef_ms <= r.picked_up_ms
        assert r.picked_up_ms >= real_ready[r.order_id]
        assert r.delivered_ms > r.picked_up_ms
    k = lab_kpis(run, len(day.couriers))
    assert k.placed == k.delivered == len(day.orders)
    assert k.undelivered == 0
    assert k.double_assignments == 0
    waits = [(r.picked_up_ms - r.at_chef_ms) / 1000 for r in run.orders
             if r.picked_up_ms is not None and r.at_chef_ms is not None]
    assert k.wait_at_chef_p50_s == pytest.approx(percentile(waits, 50), abs=1e-3)  # s vs ms
    late = sum(1 for r in run.orders if (r.delivered_ms or 0) > r.promised_ms)
    assert k.late_pct == 100.0 * late / len(run.orders)
    stacked = sum(r.stacked for r in run.orders)
    assert k.stacked == stacked
    assert k.orders_per_courier_hour == round(
        len(run.orders) / (run.courier_online_ms / 3.6e6), 3)
    points = series(run, day.start_ms, day.start_ms + 30 * MIN)
    assert sum(p.placed for p in points) == len(day.orders)


def test_nearest_members_orders_by_distance_then_index() -> None:
    """Eligible members within the radius, nearest first, ties by member index, -1 padded,
    each row cut at its own limit (the snapshot search's answer)."""
    dist = np.array([[5.0, 1.0, 1.0, 9.0, 2.0],
                     [3.0, 3.0, 0.0, 1.0, 7.0]])
    eligible = np.array([True, True, True, True, False])
    got = nearest_members(dist, eligible, np.array([3, 2]), radius_m=8.0)
    assert got.tolist() == [[1, 2, 0], [2, 3, -1]]


def test_a_stacked_courier_rides_to_the_nearest_open_stop() -> None:
    """A courier waiting at kitchen K1 for order A is stacked order B from kitchen K2 (800 m
    away, generous promises: the insertion keeps them). With A on board, A's door (200 m) is
    nearer than K2, so A is delivered before B is collected: the rule of `homechef
    simulate`'s couriers, not pickups first."""
    k1, k2 = CHEF, _east(800.0)
    a = _order(0, pickup=k1, dropoff=_east(-200.0), accepted_ms=T0 + MIN,
               estimated_ready_ms=T0 + 10 * MIN, ready_ms=T0 + 10 * MIN,
               promised_ms=T0 + 60 * MIN)
    b = _order(1, pickup=k2, dropoff=_east(1200.0), accepted_ms=T0 + 9 * MIN + 30_000,
               estimated_ready_ms=T0 + 10 * MIN, ready_ms=T0 + 10 * MIN,
               promised_ms=T0 + 70 * MIN)
    ra, rb = _run(_day([a, b], [_courier(0, k1)])).orders
    assert ra.courier_id == rb.courier_id == "c0000"
    assert rb.stacked
    assert not ra.stacked
    assert ra.picked_up_ms == T0 + 10 * MIN
    assert ra.delivered_ms is not None
    assert rb.picked_up_ms is not None
    assert ra.delivered_ms < rb.picked_up_ms
    assert rb.delivered_ms is not None
    # ETA at pickup of A: hand-over then straight to its door, exact without noise.
    assert ra.predicted_drop_ms == ra.delivered_ms


def test_idle_couriers_follow_repositioning_hints_toward_demand() -> None:
    """Three couriers idle 2.5 km west of a kitchen whose orders (three, cooking for 40
    minutes) make its res-7 cell short of couriers (one courier per order). Off: nobody
    moves until an order is offered. On (`LabDispatch.reposition`, everyone accepting):
    hints go out and are followed, the km ridden following them are counted as idle km, and
    each order's courier reaches the kitchen sooner after its assignment (it waits near the
    demand, 0.9 km from the kitchen, instead of 2.5 km away)."""
    west = _east(-2500.0)
    orders = [_order(i, pickup=CHEF, dropoff=_east(800.0), accepted_ms=T0 + (i + 1) * MIN,
                     estimated_ready_ms=T0 + 40 * MIN, ready_ms=T0 + 40 * MIN,
                     promised_ms=T0 + 80 * MIN) for i in range(3)]
    day = _day(orders, [_courier(k, west) for k in range(3)])
    params = RepositionParams(cell_res=7, orders_per_courier=1.0)
    runs = {on: simulate_day(day, LabDispatch(reposition=params if on else None), MODEL)
            for on in (False, True)}
    off, on = runs[False], runs[True]
    assert (off.hints, off.hints_followed, off.reposition_m) == (0, 0, 0.0)
    assert on.hints >= 2
    assert on.hints_followed == on.hints
    assert on.reposition_m > 2 * 2000.0
    assert on.empty_m >= on.reposition_m
    ride = {flag: sorted((r.at_chef_ms or 0) - (r.assigned_ms or 0) for r in run.orders)
            for flag, run in runs.items()}
    assert all(r.delivered_ms is not None for run in runs.values() for r in run.orders)
    assert all(a < b / 2 for a, b in zip(ride[True][:2], ride[False][:2], strict=True))


def test_a_day_with_hints_is_repeatable() -> None:
    """`improved-repos` on the tiny day: hints are given (and some declined, by the
    couriers' acceptance probability), every order is delivered, and the same seed gives
    the same run, hints included."""
    day = build_day(PRESETS["tiny"], 1)
    d = apply_policy("improved-repos", LabDispatch())
    a, b = (simulate_day(day, d, MODEL) for _ in range(2))
    assert a == b
    assert 0 < a.hints_followed < a.hints
    assert a.reposition_m > 0
    assert all(r.delivered_ms is not None for r in a.orders)
