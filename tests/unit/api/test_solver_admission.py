"""The solver pool admits a solve only if it would start within `max_wait_s`: the submitted
solves' time limits, shared over the processes, say how long that is. Their seconds count
until the worker is done with them, or until they are cancelled before starting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from api.core.routing.pool import SolverBusyError, SolverPool


@pytest.fixture
async def pool() -> AsyncIterator[SolverPool]:
    solvers = SolverPool(processes=1, max_wait_s=1.5)
    yield solvers
    await solvers.close()


async def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll ``condition`` (a fact about the pool) until it holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def mark_then_sleep(mark: Path, seconds: float) -> None:
    """A solve that says when a worker started it."""
    mark.touch()
    time.sleep(seconds)


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
    free their seconds at once. Three behind a running one: one at least is always waiting."""
    pool = SolverPool(processes=1, max_wait_s=10.0)
    try:
        started = tmp_path / "started"
        running = pool.submit(1.0, mark_then_sleep, started, 1.5)
        await until(started.exists)  # the worker has taken it
        marks = [tmp_path / f"solve{i}" for i in range(3)]
        behind = [pool.submit(1.0, mark.touch) for mark in marks]
        assert pool.queued_s == 4.0
        await until(lambda: pool.handed_over() >= 2)  # one at least is in the worker's queue
        for f in behind:
            f.cancel()
        # Settled when each is either held by the worker or cancelled with its seconds freed
        # (the cancels and the pool's done callbacks take a few turns of the loop).
        await until(lambda: pool.queued_s == float(pool.handed_over()))
        handed_over = pool.handed_over() - 1  # besides the running one
        assert handed_over in (1, 2)
        await running
        await until(lambda: pool.queued_s == 0.0)
        ran = [mark.exists() for mark in marks]
        # Exactly as many ran as were handed over, and never all three. Which ones is a race
        # with the pool's feeder thread: it may skip a cancelled solve and hand over the next
        # one before that one's cancel arrives, so the handed-over ones need not come first.
        assert sum(ran) == handed_over < len(marks)
    finally:
        await pool.close()


async def test_a_failed_solve_frees_its_seconds(pool: SolverPool) -> None:
    failing = pool.submit(5.0, int, "not a number")
    with pytest.raises(ValueError, match="invalid literal"):
        await failing
    assert pool.queued_s == 0.0
