"""Per-courier ingest locks: one courier's batches run in order, the map never grows unbounded."""

from __future__ import annotations

import asyncio

from api.core.gps.ingest import KeyedLocks


async def test_same_key_is_serialised_and_other_keys_are_not() -> None:
    locks = KeyedLocks()
    trace: list[str] = []

    async def work(key: str, tag: str) -> None:
        async with locks.hold(key):
            trace.append(f"{tag}+")
            await asyncio.sleep(0.01)
            trace.append(f"{tag}-")

    await asyncio.gather(work("c1", "a"), work("c1", "b"), work("c2", "x"))
    # a and b never overlap; x runs beside a.
    assert trace.index("a-") < trace.index("b+")
    assert trace.index("x+") < trace.index("a-")


async def test_entries_are_dropped_when_the_last_holder_leaves() -> None:
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
    locks = KeyedLocks()
    try:
        async with locks.hold("c1"):
            raise ValueError("boom")
    except ValueError:
        pass
    assert len(locks) == 0
