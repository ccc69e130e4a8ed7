"""The solver pool admits a solve only if it would start within `max_wait_s`: the submitted
solves' time limits, shared over the processes, say how long that is. Their seconds count
until the worker is done with them, or until they are cancelled before starting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.core.routing.pool import SolverBusyError, SolverPool


@pytest.fixture
async def pool() -> AsyncIterator[SolverPool]:
    solvers = SolverPool(processes=1, max_wait_s=1.5)
    yield solvers
    await solvers.close()


def outcome(pool: SolverPool, name: str) -> float:
    return pool.outcomes.labels(name)._value.get()


async def test_admission_counts_submitted_seconds_until_the_worker_is_done(
    pool: SolverPool,
) -> None:
    first = pool.submit(1.0, time.sleep, 1.0)  # waits 0 s
    second = pool.submit(1.0, time.sleep, 0.1)  # waits 1 s
    assert pool.queued_s == 2.0
    with pytest.raises(SolverBusyError) as busy:  # would wait 2 s
        pool.submit(1.0, time.sleep, 0.1)
    assert busy.value.retry_after_s == 1
    assert outcome(pool, "busy") == 1
    assert pool.queued_s == 2.0  # a refusal holds nothing
    await asyncio.gather(first, second)
    assert pool.queued_s == 0.0
    third = pool.submit(1.0, time.sleep, 0.1)  # everything finished: admitted again
    await third


async def test_a_solve_cancelled_while_waiting_never_runs_and_frees_its_seconds(
    tmp_path: Path,
) -> None:
    """The pool hands a solve or two to the worker's queue ahead of time; those run even if
    cancelled, and stay counted until done. The rest, cancelled while waiting, never run and
    free their seconds at once. Three behind a running one: the last is always waiting."""
    pool = SolverPool(processes=1, max_wait_s=10.0)
    try:
        running = pool.submit(1.0, time.sleep, 1.5)
        await asyncio.sleep(0.5)  # the worker has taken it
        marks = [tmp_path / f"solve{i}" for i in range(3)]
        behind = [pool.submit(1.0, mark.touch) for mark in marks]
        await asyncio.sleep(0.3)  # the pool has handed some to the worker's queue
        assert pool.queued_s == 4.0
        for f in behind:
            f.cancel()
        await asyncio.sleep(0.1)  # the pool's done callbacks reach the loop
        handed_over = pool.queued_s - 1.0  # still counted besides the running one
        assert handed_over in (1.0, 2.0)
        await running
        for _ in range(100):
            if pool.queued_s == 0.0:
                break
            await asyncio.sleep(0.05)
        assert pool.queued_s == 0.0
        ran = [mark.exists() for mark in marks]
        assert ran == [i < handed_over for i in range(3)]  # exactly the handed-over ones
    finally:
        await pool.close()


async def test_a_failed_solve_frees_its_seconds(pool: SolverPool) -> None:
    failing = pool.submit(5.0, int, "not a number")
    with pytest.raises(ValueError, match="invalid literal"):
        await failing
    assert pool.queued_s == 0.0
