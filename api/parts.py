"""What a domain contributes to an app: routes, start-up steps and background workers.

The app factories compose these; domains never build a Litestar app themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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


async def supervise(name: str, worker: Worker, resources: Resources,
                    max_backoff_s: float = 10.0) -> None:
    """Run ``worker`` until cancelled; on a crash, log it and restart with backoff."""
    backoff_s = 0.1
    while True:
        try:
            await worker(resources)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # Cancellation surfaced as another error (a client library converted it): we
            # are shutting down, not crashing.
            raise_if_cancelling()
            log.exception("worker %s crashed; restarting in %.1f s", name, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(max_backoff_s, backoff_s * 2)


@contextlib.asynccontextmanager
async def running_workers(parts: Parts, resources: Resources) -> Any:
    tasks = [asyncio.create_task(supervise(n, w, resources), name=n) for n, w in parts.workers]
    try:
        yield tasks
    finally:
        for t in tasks:
            t.cancel()
        if tasks:
            # Bounded: a worker stuck in a library call must not hang shutdown forever.
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for t in pending:
                log.error("worker %s did not stop within %.0f s of cancellation",
                          t.get_name(), STOP_TIMEOUT_S)
