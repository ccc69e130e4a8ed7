"""The fleet matcher's buffers (`roads.trails`): batches with their overlap fix, bounds that
drop the oldest instead of growing, and trails that only move forward."""

from __future__ import annotations

from roads.trails import FixBuffers, TrailLimits


def test_a_courier_is_due_with_a_batch_and_batches_overlap_by_one_fix() -> None:
    """Batch 3: due after 3 new fixes; the first batch is those 3, the next starts with the
    last of them (the leg between batches is matched too). Older or same-time fixes are
    ignored."""
    b = FixBuffers(TrailLimits(batch=3))
    for t in (1, 2):
        b.add("c1", 43.0, 7.0 + t / 1000, t)
    assert b.due() == []
    b.add("c1", 43.0, 7.003, 3)
    b.add("c1", 43.0, 7.0, 2.5)  # older: ignored
    assert b.due() == ["c1"]
    assert [f[2] for f in b.take("c1")] == [1, 2, 3]
    assert b.due() == []
    for t in (4, 5, 6):
        b.add("c1", 43.0, 7.0 + t / 1000, t)
    assert [f[2] for f in b.take("c1")] == [3, 4, 5, 6]
    assert b.take("c1") == []


def test_buffers_are_bounded_oldest_dropped() -> None:
    """At most max_fixes per courier (the oldest dropped and counted) and max_couriers
    couriers (the longest silent goes)."""
    b = FixBuffers(TrailLimits(batch=2, max_fixes=4, max_couriers=2))
    for t in range(10):
        b.add("c1", 43.0, 7.0, t)
    assert b.dropped == 6
    assert [f[2] for f in b.take("c1")] == [6, 7, 8, 9]
    b.add("c2", 43.0, 7.0, 1)
    b.add("c1", 43.0, 7.0, 11)  # c1 speaks again: c2 is now the longest silent
    b.add("c3", 43.0, 7.0, 1)
    assert len(b) == 2
    assert b.trail("c2") is None
    b.add("c2", 43.0, 7.0, 2)  # c2 again: a new courier, c1 (silent longest) goes
    assert b.take("c1") == []


def test_a_trail_keeps_its_last_points_and_only_moves_forward() -> None:
    b = FixBuffers(TrailLimits(batch=1, trail_points=3))
    b.add("c1", 43.0, 7.0, 1)
    assert b.trail("c1") is None  # nothing matched yet
    b.matched("c1", [(43.0, 7.0, 1), (43.1, 7.1, 2)], 0.9)
    b.matched("c1", [(43.1, 7.1, 2), (43.2, 7.2, 3), (43.3, 7.3, 4)], 0.8)
    trail = b.trail("c1")
    assert trail is not None
    assert [p[2] for p in trail.points] == [2, 3, 4]
    assert trail.confidence == 0.8
    b.matched("nobody", [(43.0, 7.0, 1)], 1.0)
    assert b.trail("nobody") is None
