"""The process pool OR-Tools solves run in, with bounded admission (OR-Tools holds the GIL
for a whole search, so a thread would stall the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from api.observability import Metrics

SOLVER_PROCESSES = 1
MAX_WAIT_S = 30.0

T = TypeVar("T")


class SolverBusyError(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"solver busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class SolverPool:
    """A process pool for OR-Tools solves, started lazily and shut down with the app.

    Admission is bounded: a solve runs for its whole time limit, so the seconds of the solves
    submitted and not finished say how long a new one would wait. One that would wait over
    `max_wait_s` is refused at once (with when to retry) rather than queued behind work its
    client will likely have given up on.
    """

    def __init__(self, processes: int = SOLVER_PROCESSES, max_wait_s: float = MAX_WAIT_S,
                 metrics: Metrics | None = None) -> None:
        self.processes = processes
        self.max_wait_s = max_wait_s
        self.queued_s = 0.0  # time limits of the solves submitted and not finished
        registry = (metrics or Metrics("core")).registry
        self.outcomes = Counter(
            "routing_solves_total", "Route optimisation requests, by outcome", ["outcome"],
            registry=registry)
        self.queued = Gauge(
            "routing_solver_queued_seconds",
            "Time limits of the solves admitted and not finished (a new solve waits this "
            "long, shared over the solver processes)", registry=registry)
        self._pool: ProcessPoolExecutor | None = None
        self._work: set[Future[Any]] = set()

    def submit(self, time_limit_s: float, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` (a solve of `time_limit_s`) in a worker. Its seconds count as
        queued until the worker is done with it, or until it is cancelled while still
        waiting in the pool: cancelling the returned future does that when it can (the
        pool hands the next solve or two to the worker ahead of time; those run anyway).

        Raises:
            SolverBusyError: it would wait more than `max_wait_s` to start.
        """
        wait_s = self.queued_s / self.processes
        if wait_s > self.max_wait_s:
            self.outcomes.labels("busy").inc()
            raise SolverBusyError(max(1, math.ceil(wait_s - self.max_wait_s)))
        loop = asyncio.get_running_loop()
        work = self.get().submit(fn, *args)
        self.queued_s += time_limit_s
        self.queued.set(self.queued_s)
        self._work.add(work)

        def release() -> None:
            self.queued_s -= time_limit_s
            self.queued.set(self.queued_s)
            self._work.discard(work)

        def on_done(_: object) -> None:
            # The pool's own future: done when the worker is, or when a cancel took effect.
            # This runs in the pool's thread (or here, if it is done already); the count is
            # the loop's. After shutdown, the loop may be closed and nothing is counted.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(release)

        work.add_done_callback(on_done)
        return asyncio.wrap_future(work, loop=loop)

    def handed_over(self) -> int:
        """Solves a worker holds: running, or handed to the workers' queue (which the pool
        fills a call or two ahead); those run even if cancelled."""
        return sum(work.running() for work in list(self._work))

    def get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that runs an event loop and client threads is unsafe.
            self._pool = ProcessPoolExecutor(self.processes,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=exit_with_parent,
                                             initargs=(os.getpid(),))
        return self._pool

    async def close(self, _: object = None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Pool worker initializer: exit once the process that started the pool is gone.

    A worker waits for tasks on a pipe whose write end it holds itself, so it never sees EOF:
    when its server dies without shutting the pool down (killed, or a crash), the worker
    would otherwise idle on forever, holding ~200 MB.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
