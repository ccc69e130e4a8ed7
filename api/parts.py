"""What a domain contributes to an app: routes, start-up steps and background workers.

The app factories compose these; domains never build a Litestar app themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.resources import Resources
from streams.jetstream import raise_if_cancelling

log = logging.getLogger("homechef.parts")

STOP_TIMEOUT_S = 5.0

Step = Callable[[Resources], Awaitable[None]]
Worker = Callable[[Resources], Awaitable[None]]


@dataclass(frozen=True)
class Parts:
    handlers: Sequence[Any] = ()
    """Litestar route handlers, controllers or routers."""
    startup: Sequence[Step] = ()
    """Run once, in order, after the stores are connected (e.g. declare JetStream streams)."""
    workers: Sequence[tuple[str, Worker]] = field(default_factory=tuple)
    """Named long-running tasks (consumers, relays, rounds), restarted if they crash."""
    state: dict[str, Any] = field(default_factory=dict)
    """Extra objects for app.state (e.g. hubs shared by handlers and workers)."""
    shutdown: Sequence[Step] = ()
    """Run once, in order, after the workers stopped and before the stores close."""
    dependencies: dict[str, Any] = field(default_factory=dict)
    """Litestar providers by parameter name (the services handlers are given)."""


def merge(*parts: Parts) -> Parts:
    return Parts(
        handlers=[h for p in parts for h in p.handlers],
        startup=[s for p in parts for s in p.startup],
        workers=[w for p in parts for w in p.workers],
        state={k: v for p in parts for k, v in p.state.items()},
        shutdown=[s for p in parts for s in p.shutdown],
        dependencies={k: v for p in parts for k, v in p.dependencies.items()},
    )


INITIAL_BACKOFF_S = 0.1
HEALTHY_RUN_S = 60.0
"""A worker that ran this long before crashing was healthy: its crash starts a new incident."""


async def supervise(name: str, worker: Worker, resources: Resources,
                    max_backoff_s: float = 10.0, stopping: asyncio.Event | None = None) -> None:
    """Run ``worker`` until cancelled; on a crash, log it and restart with backoff.

    One outage crashes a worker again on every restart: the first crash is logged with its
    traceback, each repeat of the same error (type and message) as one line with its count,
    so a store down for minutes does not flood the log. A worker that ran for longer than
    ``max_backoff_s`` before crashing restarts quickly again; one that ran for
    `HEALTHY_RUN_S` logs its next crash with a traceback again.

    ``stopping`` (set by `running_workers` before it cancels) tells a shutdown from a stray
    cancellation: a task group whose child failed leaves its parent task "cancelling" on
    Python 3.11 and 3.12 (it cancels the parent and never uncancels it when the failure came
    while the parent waited at the group's end), and a library time-out can leave a request
    behind too. Without it the worker would read that leftover as a shutdown and stop for
    good (seen: the orders projection and the GPS indexer gone after a Redis restart, no
    order dispatched again). Here a cancellation or error while not stopping is a crash: the
    leftover requests are withdrawn and the worker restarts. Without ``stopping``, the
    task's cancelling() count is all there is to go by.
    """
    backoff_s = INITIAL_BACKOFF_S
    last_error: str | None = None
    repeats = 0
    while True:
        started = time.monotonic()
        try:
            await worker(resources)
            return
        except asyncio.CancelledError as exc:
            if stopping is None or stopping.is_set():
                raise
            error_exc: BaseException = exc
        except Exception as exc:
            if stopping is None:
                # Cancellation surfaced as another error (a client library converted it):
                # we are shutting down, not crashing.
                raise_if_cancelling()
            elif stopping.is_set():
                raise asyncio.CancelledError from exc
            error_exc = exc
        _withdraw_stray_cancellations()
        ran_s = time.monotonic() - started
        if ran_s > max_backoff_s:
            backoff_s = INITIAL_BACKOFF_S
        if ran_s > HEALTHY_RUN_S:
            last_error = None
        error = f"{type(error_exc).__name__}: {error_exc}"
        if error != last_error:
            log.error("worker %s crashed; restarting in %.1f s", name, backoff_s,
                      exc_info=error_exc)
            last_error, repeats = error, 1
        else:
            repeats += 1
            log.warning("worker %s crashed again (%d times in a row): %s; restarting in "
                        "%.1f s", name, repeats, error[:200], backoff_s)
        await asyncio.sleep(backoff_s)
        backoff_s = min(max_backoff_s, backoff_s * 2)


def _withdraw_stray_cancellations() -> None:
    task = asyncio.current_task()
    while task is not None and task.cancelling():
        task.uncancel()


@contextlib.asynccontextmanager
async def running_workers(parts: Parts, resources: Resources) -> Any:
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(supervise(n, w, resources, stopping=stopping), name=n)
             for n, w in parts.workers]
    try:
        yield tasks
    finally:
        stopping.set()
        for t in tasks:
            t.cancel()
        if tasks:
            # Bounded: a worker stuck in a library call must not hang shutdown forever.
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for t in pending:
                log.error("worker %s did not stop within %.0f s of cancellation",
                          t.get_name(), STOP_TIMEOUT_S)
