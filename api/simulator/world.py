"""What the simulator observed while it ran: order timelines, who held what, live counters."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

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
        """Set when the city is built and ordering begins."""

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

    # -- couriers --------------------------------------------------------------------------
    def hold(self, order_id: str, courier_id: str, stacked: bool = False) -> None:
        self._open[(order_id, courier_id)] = len(self.holdings)
        self.holdings.append(Holding(order_id=order_id, courier_id=courier_id,
                                     start_s=now_s(), stacked=stacked))

    def release(self, order_id: str, courier_id: str) -> None:
        i = self._open.pop((order_id, courier_id), None)
        if i is not None:
            h = self.holdings[i]
            self.holdings[i] = Holding(order_id=h.order_id, courier_id=h.courier_id,
                                       start_s=h.start_s, end_s=now_s(), stacked=h.stacked)

    def error(self, message: str) -> None:
        if len(self.errors) < 200:
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
