"""Replaying a recorded day (`lab.replay`): a lab day saved as a record and replayed is the
same day, and a record that cannot be a day is refused with its reason."""

from __future__ import annotations

import msgspec
import pytest

from geo.travel import HaversineTravelModel
from lab.city import build_day
from lab.engine import LabDispatch, simulate_day
from lab.policies import apply_policy
from lab.replay import load_recorded, record_day, replay_day
from lab.scenario import PRESETS


def test_a_recorded_day_replays_as_the_same_day_under_any_policy() -> None:
    """The tiny day written as JSON and read back: every order's record under greedy and
    under `improved` is what the generated day gives (same kitchens, renumbered; same real
    and declared ready times, couriers, seed)."""
    day = build_day(PRESETS["tiny"], 3)
    raw = msgspec.json.encode(record_day(day))
    replayed = replay_day(load_recorded(raw), 3)
    # Kitchens are renumbered by first appearance; everything else is the same.
    renumber = {a.chef: b.chef for a, b in zip(day.orders, replayed.orders, strict=True)}
    assert len(set(renumber.values())) == len(renumber)
    assert [msgspec.structs.replace(o, chef=renumber[o.chef]) for o in day.orders] \
        == list(replayed.orders)
    assert replayed.couriers == day.couriers
    for policy in ("greedy", "improved"):
        d = apply_policy(policy, LabDispatch())
        a = simulate_day(day, d, HaversineTravelModel())
        b = simulate_day(replayed, d, HaversineTravelModel())
        assert a.orders == b.orders, policy


def test_a_record_that_cannot_be_a_day_is_refused() -> None:
    """No orders, an order accepted before it was placed, a courier offline before online:
    each refused, naming what is wrong."""
    day = msgspec.to_builtins(record_day(build_day(PRESETS["tiny"], 3)))
    o, c = day["orders"][0], day["couriers"][0]
    bad = [
        ({**day, "orders": []}, "at least one order"),
        ({**day, "orders": [{**o, "accepted_ms": o["placed_ms"] - 1}]}, o["order_id"]),
        ({**day, "couriers": [{**c, "offline_ms": c["online_ms"] - 1}]}, c["courier_id"]),
    ]
    for record, says in bad:
        with pytest.raises(msgspec.ValidationError, match=says):
            load_recorded(msgspec.json.encode(record))


def test_couriers_from_history_spans_start_pace_and_acceptance() -> None:
    """Online spans from the history rows (a repeated ``online`` is one span; a second span
    is a second courier), the start from the fix or the first delivery's kitchen, the pace
    from deliveries made alone (the fleet's median without one), acceptance from declines."""
    from geo.travel import HaversineTravelModel, Vehicle
    from lab.replay import Delivery, StatusRow, couriers_from_history

    model = HaversineTravelModel()
    kitchen, door = (12.97, 77.59), (12.98, 77.59)
    ride_ms = round(model.travel_s(*kitchen, *door, Vehicle.SCOOTER) * 1000)
    rows = [
        StatusRow(courier_id="a", online=True, at_ms=1000, at=(12.9, 77.5), vehicle="scooter"),
        StatusRow(courier_id="a", online=True, at_ms=5000),  # a retry: still the first span
        StatusRow(courier_id="a", online=False, at_ms=90_000),
        StatusRow(courier_id="a", online=True, at_ms=100_000, at=(12.91, 77.5)),
        StatusRow(courier_id="b", online=True, at_ms=2000),  # no fix, never offline
        StatusRow(courier_id="c", online=False, at_ms=3000),  # offline only: no span
    ]
    deliveries = [Delivery(courier_id="a", pickup=kitchen, dropoff=door, assigned_ms=10_000,
                           picked_up_ms=20_000, delivered_ms=20_000 + ride_ms // 2),
                  Delivery(courier_id="b", pickup=kitchen, dropoff=door, assigned_ms=3000,
                           picked_up_ms=4000, delivered_ms=9000),
                  Delivery(courier_id="b", pickup=kitchen, dropoff=door, assigned_ms=5000,
                           picked_up_ms=6000, delivered_ms=9500)]  # overlapping: not alone
    got = {c.courier_id: c for c in couriers_from_history(
        rows, until_ms=200_000, model=model, deliveries=deliveries, declines={"a": 1},
        vehicles={"b": "car"})}
    assert sorted(got) == ["a", "a~2", "b"]
    a, a2, b = got["a"], got["a~2"], got["b"]
    assert (a.online_ms, a.offline_ms, a.start, a.vehicle) == (1000, 90_000, (12.9, 77.5),
                                                              "scooter")
    assert (a2.online_ms, a2.offline_ms, a2.start) == (100_000, 200_000, (12.91, 77.5))
    assert a.pace == pytest.approx(0.5, rel=1e-3)
    assert a.accept_prob == pytest.approx(0.5)
    assert (b.start, b.vehicle, b.offline_ms, b.accept_prob) == (kitchen, "car", 200_000, 1.0)
    assert b.pace == a.pace  # no delivery alone: the fleet's median
