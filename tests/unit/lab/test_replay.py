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
