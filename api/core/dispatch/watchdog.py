"""The watchdog for stalled work: every DISPATCH_WATCHDOG_S, one core process (the holder of
the lease ``<ns>:{d}:watchdog:lease``) judges every active order with
`dispatch.stall.judge` and acts.

- `StallAction.WITHDRAW` (assigned, not picked up, the courier silent or not coming): the
  assignment is taken back (`Dispatcher.withdraw_stalled`): the order waits again and is
  offered to another courier by the next round, the courier hears UNASSIGNED and is free
  again (idle, or to_pickup with its other orders); dispatch.unassigned says "stalled".
- `StallAction.SURFACE` (picked up and silent, or any state too long): nothing is changed
  (the food may be with the courier); the order is counted in ``dispatch_stuck_orders``,
  listed by ``GET /api/v1/fleet/orders?status=stuck`` and logged once when it is first seen.

Every action is counted in ``dispatch_stalled_total{action,reason}`` and logged once (a
surfaced order stays surfaced, sweep after sweep, without a line each time). Its time is the
dispatcher's clock. Once an hour the holder also deletes recorded declines older than
`DECLINES_KEPT_MS` (api/core/dispatch/records.py); PostgreSQL down, it tries next hour.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.core.dispatch.service import Dispatcher
from api.core.dispatch.store import TransitionResult
from api.problems import outage_store
from dispatch.stall import StallAction, StallReason
from streams.jetstream import raise_if_cancelling

__all__ = ["Watchdog"]

log = logging.getLogger("homechef.dispatch.watchdog")

DECLINES_KEPT_MS = 7 * 24 * 3600 * 1000
"""As long as the ORDERS and DISPATCH streams: an older order is never rebuilt."""
PRUNE_EVERY_MS = 3600 * 1000

class Watchdog:
    """Sweeps for stalled orders under its own lease (`run`, or one `sweep` at a time)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        d = dispatcher.settings.dispatch
        self.interval_s = d.watchdog_s
        self.lease_ttl_ms = round(max(d.lease_ttl_s, 3 * d.watchdog_s) * 1000)
        """Outlives a missed sweep or two; a dead holder's sweeps resume elsewhere after it."""
        self.surfaced: set[tuple[str, StallReason]] = set()
        """Orders surfaced (and logged) already, with why: logged again only if that
        changes."""
        self.generation: str | None = None
        """The dispatch state generation last seen (`DispatchStore.generation`)."""
        self.quiet_until_ms = 0
        """After Redis lost its data, couriers' last fixes are being replayed into the index:
        nobody is withdrawn for silence until one `no_fix_s` has passed since the rebuild."""
        self.next_prune_ms = 0

    async def run(self) -> None:
        while True:
            raise_if_cancelling()
            started = time.monotonic()
            await self.sweep()
            await asyncio.sleep(max(0.05, self.interval_s - (time.monotonic() - started)))

    async def sweep(self) -> tuple[int, int]:
        """One sweep (if this process holds the lease): withdraw what may be withdrawn,
        surface the rest. Returns (withdrawn, surfaced now)."""
        d = self.dispatcher
        metrics = d.metrics
        if not await d.store.hold_watchdog_lease(d.worker_id, self.lease_ttl_ms):
            metrics.stuck.set(0)  # the holder reports them: a sum over processes is right
            self.surfaced.clear()
            return 0, 0
        now_ms = d.clock()
        generation = await d.store.generation()
        if generation is None:  # Redis lost its data: the dispatcher rebuilds it first
            return 0, 0
        if self.generation is not None and generation != self.generation:
            self.quiet_until_ms = now_ms + round(d.settings.dispatch.stall_no_fix_s * 1000)
        self.generation = generation
        if d.records is not None and now_ms >= self.next_prune_ms:
            self.next_prune_ms = now_ms + PRUNE_EVERY_MS
            try:
                await d.records.prune_declines(now_ms - DECLINES_KEPT_MS)
            except Exception as exc:
                if outage_store(exc) is None:
                    raise
                log.warning("old declines not pruned (%s unavailable): %r",
                            outage_store(exc), exc)
        withdrawn = 0
        surfaced: set[tuple[str, StallReason]] = set()
        for order, stall in await d.stalled(now_ms):
            key = (order.order_id, stall.reason)
            if stall.reason is StallReason.NO_FIX and now_ms < self.quiet_until_ms:
                continue  # fixes lost with Redis are still being replayed: not silence
            if stall.action is StallAction.WITHDRAW:
                t = await d.withdraw_stalled(order, now_ms)
                if t.result is TransitionResult.UNASSIGNED:
                    withdrawn += 1
                    metrics.stalled.labels(stall.action.value, stall.reason.value).inc()
                    log.warning("stalled order %s withdrawn from courier %s (%s since %d ms "
                                "ago); it is dispatched again", order.order_id,
                                order.courier_id, stall.reason.value, now_ms - stall.since_ms)
                continue  # refused: it moved on since it was read; the next sweep sees it
            surfaced.add(key)
            if key not in self.surfaced:
                metrics.stalled.labels(stall.action.value, stall.reason.value).inc()
                log.warning("stuck order %s %s with courier %s (%s for %d s); left as it is",
                            order.order_id, order.state.value, order.courier_id or "-",
                            stall.reason.value, (now_ms - stall.since_ms) // 1000)
        self.surfaced = surfaced
        metrics.stuck.set(len(surfaced))
        return withdrawn, len(surfaced)
