"""What `homechef simulate` (and the demo) say about orders still open when a run ends: one
sentence of counts, and per-order lines in ages, never epoch timestamps."""

from __future__ import annotations

import re

from api.simulator.run import report_unfinished, unfinished_summary
from api.simulator.world import World, now_s
from dispatch.day_kpis import OrderTimeline


def test_open_orders_are_summed_up_in_words() -> None:
    world = World()
    t = now_s()
    world.timelines = {
        "a": OrderTimeline(order_id="a", placed_s=t - 90),
        "b": OrderTimeline(order_id="b", placed_s=t - 80, assigned_s=t - 60),
        "c": OrderTimeline(order_id="c", placed_s=t - 70, assigned_s=t - 50,
                           picked_up_s=t - 20),
        "d": OrderTimeline(order_id="d", placed_s=t - 60, assigned_s=t - 40,
                           picked_up_s=t - 10),
        "e": OrderTimeline(order_id="e", placed_s=t - 50, delivered_s=t - 5),
    }
    assert unfinished_summary(world) == (
        "4 orders still open when the run ended: 1 waiting for a courier, 1 with a courier "
        "before pickup, 2 on the way to the door")
    lines = report_unfinished(world, [])
    assert len(lines) == 4
    assert lines[0].startswith("unfinished order a: placed 90 s ago, dispatchable not yet")
    assert not any(re.search(r"\d{9,}", line) for line in lines)  # no epoch seconds


def test_nothing_open_says_nothing() -> None:
    assert unfinished_summary(World()) == ""
