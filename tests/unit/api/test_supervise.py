"""A crashing worker is restarted with backoff, and a repeating crash does not flood the log."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from api.parts import supervise
from api.resources import Resources


async def test_a_repeating_crash_logs_one_traceback_then_one_line_each(
        caplog: pytest.LogCaptureFixture) -> None:
    """The first crash of an error is logged with its traceback; each identical repeat (the
    same store still down) is one line without a traceback, with its count; a different
    error gets a traceback again. The worker is restarted until it returns."""
    errors = [ConnectionError("refused")] * 4 + [TimeoutError("slow")] * 2
    runs = 0

    async def worker(_: Resources) -> None:
        nonlocal runs
        runs += 1
        if errors:
            raise errors.pop(0)

    with caplog.at_level(logging.INFO, logger="homechef.parts"):
        await supervise("flaky", worker, cast(Resources, None), max_backoff_s=0.01)

    assert runs == 7
    crashes = [r for r in caplog.records if "worker flaky crashed" in r.getMessage()]
    assert len(crashes) == 6
    with_traceback = [r.getMessage() for r in crashes if r.exc_info]
    assert len(with_traceback) == 2  # the first ConnectionError, the first TimeoutError
    repeats = [r.getMessage() for r in crashes if not r.exc_info]
    assert [m.split("(")[1].split(" ")[0] for m in repeats] == ["2", "3", "4", "2"]
    assert all(r.levelno == logging.WARNING for r in crashes if not r.exc_info)


async def test_a_task_group_failure_restarts_the_worker_and_shutdown_still_stops_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """A worker running two consumers in a task group, one of which fails (a store error):
    the group leaves the task "cancelling" (Python 3.11/3.12), which must not be taken for a
    shutdown: the worker is restarted. Setting `stopping` and cancelling does stop it."""
    runs = 0
    started = asyncio.Event()

    async def fails() -> None:
        await asyncio.sleep(0.001)
        raise ConnectionError("redis refused")

    async def waits() -> None:
        await asyncio.sleep(3600)

    async def worker(_: Resources) -> None:
        nonlocal runs
        runs += 1
        if runs >= 3:
            started.set()
            await asyncio.sleep(3600)
        async with asyncio.TaskGroup() as group:
            group.create_task(fails())
            group.create_task(waits())

    stopping = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="homechef.parts"):
        task = asyncio.create_task(supervise("grouped", worker, cast(Resources, None),
                                             max_backoff_s=0.01, stopping=stopping))
        await asyncio.wait_for(started.wait(), 5)
        assert runs == 3
        assert not task.done()
        stopping.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sum("worker grouped crashed" in r.getMessage() for r in caplog.records) == 2
