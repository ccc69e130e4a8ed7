"""Per-socket back-pressure: events are never dropped or reordered, state is coalesced per
key, an event backlog over its bound flags the socket, and the throttle lets at most one item
per key per interval through (the latest held one when due)."""

from __future__ import annotations

import asyncio

import pytest

from streams.outbox import Outbox, Throttle


async def test_events_in_order_then_latest_state_per_key() -> None:
    """take() returns every event in order, then only the latest message of each state key."""
    box = Outbox(max_event_bytes=1000, max_slots=10)
    box.push_event(b"s1")
    box.push_state("loc", b"l1")
    box.push_event(b"s2")
    box.push_state("loc", b"l2")
    box.push_state("heat", b"h1")
    assert await box.take() == [b"s1", b"s2", b"l2", b"h1"]
    assert box.pending() == 0


async def test_take_waits_for_a_push() -> None:
    """A writer blocked in take() wakes up on the next push."""
    box = Outbox(max_event_bytes=1000, max_slots=10)
    waiter = asyncio.create_task(box.take())
    await asyncio.sleep(0)
    assert not waiter.done()
    box.push_state("k", b"x")
    assert await asyncio.wait_for(waiter, 1) == [b"x"]


async def test_event_backlog_over_bound_overflows_once() -> None:
    """Past max_event_bytes the outbox is overflowed: the closer is called once, later pushes
    are refused and take() returns nothing (the socket is to be closed 4008)."""
    calls: list[int] = []
    box = Outbox(max_event_bytes=10, max_slots=10)
    box.on_overflow = lambda: calls.append(1)
    assert box.push_event(b"12345")
    assert box.push_event(b"12345")
    assert not box.push_event(b"1")
    assert not box.push_event(b"1")
    assert box.overflowed
    assert calls == [1]
    assert await box.take() == []


async def test_state_slots_are_bounded() -> None:
    """New state keys beyond max_slots are dropped (counted); existing keys still update."""
    box = Outbox(max_event_bytes=1000, max_slots=2)
    box.push_state("a", b"1")
    box.push_state("b", b"1")
    box.push_state("c", b"1")
    box.push_state("a", b"2")
    assert box.dropped == 1
    assert await box.take() == [b"2", b"1"]


async def test_closed_outbox_drains_then_ends() -> None:
    box = Outbox(max_event_bytes=1000, max_slots=2)
    box.push_event(b"e")
    box.close()
    box.push_event(b"late")
    assert await box.take() == [b"e"]
    assert await box.take() == []


# (now_s, key, item) offered; expected passes, then due() at the given time
THROTTLE_TABLE: list[tuple[list[tuple[float, str, str]], list[str], float, list[str]]] = [
    ([(0.0, "a", "a0")], ["a0"], 1.0, []),
    ([(0.0, "a", "a0"), (0.3, "a", "a1"), (0.6, "a", "a2")], ["a0"], 0.9, []),
    ([(0.0, "a", "a0"), (0.3, "a", "a1"), (0.6, "a", "a2")], ["a0"], 1.0, ["a2"]),
    ([(0.0, "a", "a0"), (1.0, "a", "a1")], ["a0", "a1"], 2.5, []),
    ([(0.0, "a", "a0"), (0.1, "b", "b0"), (0.2, "a", "a1")], ["a0", "b0"], 1.05, ["a1"]),
]


@pytest.mark.parametrize(("offers", "passed", "at", "due"), THROTTLE_TABLE)
def test_throttle_leading_and_trailing_edge(offers: list[tuple[float, str, str]],
                                            passed: list[str], at: float,
                                            due: list[str]) -> None:
    """The first item after a quiet second passes at once; later ones in the same second
    replace each other and the latest is released when the second is over."""
    throttle: Throttle[str] = Throttle(1.0)
    out = [x for t, k, item in offers if (x := throttle.offer(k, item, t)) is not None]
    assert out == passed
    assert throttle.due(at) == due


def test_throttle_after_release_waits_a_full_interval() -> None:
    """An item released by due() starts a new interval for its key."""
    throttle: Throttle[str] = Throttle(1.0)
    throttle.offer("a", "a0", 0.0)
    throttle.offer("a", "a1", 0.5)
    assert throttle.due(1.0) == ["a1"]
    assert throttle.offer("a", "a2", 1.5) is None
    assert throttle.due(2.0) == ["a2"]
