"""Per-courier ingest locks: one courier's batches run in order, the map never grows unbounded."""

from __future__ import annotations

import asyncio

from api.core.gps.ingest import KeyedLocks


async def test_same_key_is_serialised_and_other_keys_are_not() -> None:
    """Two holders of one key run one after the other; a holder of another key runs while
    the first is inside (a holds c1 until x is inside c2: if x had to wait, this deadlocks
    and the deadline fails it)."""
    locks = KeyedLocks()
    trace: list[str] = []
    x_inside = asyncio.Event()

    async def a() -> None:
        async with locks.hold("c1"):
            trace.append("a+")
            await x_inside.wait()
            trace.append("a-")

    async def b() -> None:
        async with locks.hold("c1"):
            trace.append("b+")

    async def x() -> None:
        async with locks.hold("c2"):
            trace.append("x+")
            x_inside.set()

    await asyncio.wait_for(asyncio.gather(a(), b(), x()), 5)
    # b waited for a to leave c1; x ran beside a.
    assert trace.index("a-") < trace.index("b+")
    assert trace.index("x+") < trace.index("a-")


async def test_entries_are_dropped_when_the_last_holder_leaves() -> None:
    """A key's entry lives while someone holds or waits for it, shared by all of them, and
    goes when the last one leaves: the map never grows with keys no longer in use."""
    locks = KeyedLocks()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("c1"):
            inside.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("c1"):
            pass

    first = asyncio.create_task(holder())
    await inside.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert len(locks) == 1  # the waiter shares the holder's lock, not a fresh one
    release.set()
    await asyncio.gather(first, second)
    assert len(locks) == 0
    for i in range(1000):
        async with locks.hold(f"c{i}"):
            pass
    assert len(locks) == 0


async def test_an_error_inside_still_frees_the_entry() -> None:
    """An exception inside the lock releases it and drops the entry."""
    locks = KeyedLocks()
    try:
        async with locks.hold("c1"):
            raise ValueError("boom")
    except ValueError:
        pass
    assert len(locks) == 0
