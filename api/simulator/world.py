"""What the simulator observed while it ran: order timelines, who held what, live counters."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

import msgspec

from dispatch.day_kpis import Holding, Kpis, OrderTimeline, compute_kpis


def now_s() -> float:
    return time.time()


def iso_to_s(value: str | None) -> float | None:
    """An ISO-8601 time from the APIs as epoch seconds (None for none)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class World:
    def __init__(self) -> None:
        self.timelines: dict[str, OrderTimeline] = {}
        self.holdings: list[Holding] = []
        self._open: dict[tuple[str, str], int] = {}
        self.ready: dict[str, asyncio.Event] = {}
        """Per order: set when the simulated chef's app failed to mark the food ready and
        the food is handed over anyway (core never heard of it)."""
        self.paid: set[str] = set()
        """Orders whose payment succeeded (each must end delivered or cancelled)."""
        self.marked_ready: set[str] = set()
        """Orders the simulated chefs marked ready through commerce."""
        self.ready_by_push = 0
        """Couriers at a chef who learnt the food was ready from ORDER_READY ..."""
        self.ready_by_poll = 0
        """... and from polling GET /delivery/orders (the push was lost)."""
        self.courier_state: dict[str, str] = {}
        self.fleet_conflicts = 0
        self.conflict_notes: list[str] = []
        """What each conflict in core's /fleet/orders snapshots was (for the report)."""
        self.conflicts_seen: set[str] = set()
        """Conflicts counted already (`fleet_check` counts each once)."""
        self.offered_stacked: set[str] = set()
        """Orders a courier app accepted from an offer marked stacked, from the moment it
        sent the accept (core may list the order as assigned before the answer arrives)."""
        self.reconciled = 0
        """Orders a courier app learnt it held only by asking core (its answer was lost)."""
        self.first_online: float | None = None
        """time.monotonic() when the first courier went online."""
        self.someone_online = asyncio.Event()
        self.first_riding: float | None = None
        """time.monotonic() when a courier first set off to a chef."""
        self.someone_riding = asyncio.Event()
        self.errors: list[str] = []
        self.day_started = asyncio.Event()
        self.day_started_wall = 0.0
        """Wall-clock (epoch s) start of the day, the origin of reported times."""
        """Set when the city is built and ordering begins."""
        self.watchers: dict[str, Callable[[], Awaitable[dict[str, str]]]] = {}
        """Per order, its customer's request headers (the customer may track it)."""
        self.eta_probe: Callable[[str, bool], Awaitable[float | None]] | None = None
        """Asks an order's tracking when it will arrive (epoch s; `True`: once the food is
        on board); None: ETAs are not recorded."""
        self._probes: set[asyncio.Task[None]] = set()

    # -- orders ----------------------------------------------------------------------------
    def placed(self, order_id: str) -> OrderTimeline:
        t = self.timelines[order_id] = OrderTimeline(order_id=order_id, placed_s=now_s())
        self.ready.setdefault(order_id, asyncio.Event())
        return t

    def timeline(self, order_id: str) -> OrderTimeline | None:
        return self.timelines.get(order_id)

    def ready_event(self, order_id: str) -> asyncio.Event | None:
        return self.ready.get(order_id)

    def open_orders(self) -> int:
        return sum(1 for t in self.timelines.values()
                   if t.delivered_s is None and t.cancelled_s is None)

    def probe_eta(self, order_id: str, phase: Literal["assign", "pickup"]) -> None:
        """Record, in the background, when the order's tracking says it will arrive (the
        customer's ETA now): the ETA-error KPIs compare it with the delivery."""
        probe = self.eta_probe
        if probe is None:
            return

        async def ask() -> None:
            with contextlib.suppress(Exception):  # a lost answer: this order has no ETA
                at_s = await probe(order_id, phase == "pickup")
                t = self.timeline(order_id)
                if at_s is not None and t is not None:
                    if phase == "assign":
                        t.eta_at_assign_s = at_s
                    else:
                        t.eta_at_pickup_s = at_s

        task = asyncio.create_task(ask())
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    # -- couriers --------------------------------------------------------------------------
    def hold(self, order_id: str, courier_id: str, stacked: bool = False,
             via: str = "offer") -> None:
        self._open[(order_id, courier_id)] = len(self.holdings)
        self.holdings.append(Holding(order_id=order_id, courier_id=courier_id,
                                     start_s=now_s(), stacked=stacked, via=via))

    def release(self, order_id: str, courier_id: str, ended: str = "",
                reported_s: float | None = None) -> None:
        """The courier no longer holds the order; `reported_s`: when its app sent the report
        that ended the holding (see `Holding.reported_s`)."""
        i = self._open.pop((order_id, courier_id), None)
        if i is not None:
            self.holdings[i] = msgspec.structs.replace(self.holdings[i], end_s=now_s(),
                                                       ended=ended, reported_s=reported_s)

    def error(self, message: str) -> None:
        if len(self.errors) < 2000:
            self.errors.append(message)

    # -- reports ---------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        ts = self.timelines.values()
        states = list(self.courier_state.values())
        return {
            "placed": len(self.timelines),
            "assigned": sum(1 for t in ts if t.assigned_s is not None),
            "picked_up": sum(1 for t in ts if t.picked_up_s is not None),
            "delivered": sum(1 for t in ts if t.delivered_s is not None),
            "busy": sum(1 for s in states if s == "busy"),
            "idle": sum(1 for s in states if s == "idle"),
        }

    def kpis(self) -> Kpis:
        return compute_kpis(self.timelines.values(), self.holdings, self.fleet_conflicts)
