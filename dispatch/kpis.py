"""The fleet console's headline figures, from live courier states and dispatch orders (pure).

Inputs are what the stores hold: couriers' dispatch states (``idle``, ``offered``,
``to_pickup``, ``delivering``, ``offline``; empty when a courier sends fixes but never went
online) and dispatch orders (their state and ``promised_ms``, ``enter_ms``, ``created_ms``,
``assigned_ms``: epoch ms, None when unset). No clock: pass ``now_ms``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Protocol

import msgspec

from dispatch.lifecycle import ACTIVE_ORDER_STATES, CourierState, OrderDispatchState

__all__ = ["FleetKpis", "OrderTimes", "fleet_kpis"]

_ACTIVE = frozenset(ACTIVE_ORDER_STATES)
_WAITING = frozenset({OrderDispatchState.WAITING, OrderDispatchState.OFFERED})
_CARRIED = frozenset({OrderDispatchState.ASSIGNED, OrderDispatchState.PICKED_UP,
                      OrderDispatchState.DELIVERING})


class OrderTimes(Protocol):
    """What the KPIs read of a dispatch order (e.g. the dispatch store's order record)."""

    @property
    def state(self) -> OrderDispatchState: ...
    @property
    def promised_ms(self) -> int | None: ...
    @property
    def enter_ms(self) -> int | None: ...
    @property
    def created_ms(self) -> int | None: ...
    @property
    def assigned_ms(self) -> int | None: ...


class FleetKpis(msgspec.Struct, frozen=True, kw_only=True):
    couriers_online: int
    """Couriers with a fresh fix that are not offline."""
    couriers_idle: int
    """Of those, the ones free for an offer."""
    orders_waiting: int
    """Orders without an accepted courier (waiting or offered)."""
    orders_late: int
    """Open orders past the delivery time promised to the customer."""
    median_assign_s: float | None
    """Median wait from entering dispatch to assignment over orders carried now (None: none)."""
    at_ms: int
    bbox: tuple[float, float, float, float] | None = None
    """``[min_lng, min_lat, max_lng, max_lat]`` of the online couriers (where to look)."""


def fleet_kpis(couriers: Iterable[tuple[str, float, float]],
               orders: Iterable[OrderTimes], now_ms: int) -> FleetKpis:
    """``couriers``: (dispatch state, lat, lng) of every courier with a fresh fix."""
    online = idle = 0
    lats: list[float] = []
    lngs: list[float] = []
    for state, lat, lng in couriers:
        if state == CourierState.OFFLINE.value:
            continue
        online += 1
        idle += state == CourierState.IDLE.value
        lats.append(lat)
        lngs.append(lng)
    waiting = late = 0
    waits_s: list[float] = []
    for o in orders:
        if o.state not in _ACTIVE:
            continue
        waiting += o.state in _WAITING
        late += o.promised_ms is not None and now_ms > o.promised_ms
        assigned = o.assigned_ms
        entered = o.enter_ms or o.created_ms
        if o.state in _CARRIED and assigned is not None and entered is not None:
            waits_s.append(max(0, assigned - entered) / 1000)
    median = round(statistics.median(waits_s), 1) if waits_s else None
    bbox = (min(lngs), min(lats), max(lngs), max(lats)) if lats else None
    return FleetKpis(couriers_online=online, couriers_idle=idle, orders_waiting=waiting,
                     orders_late=late, median_assign_s=median, at_ms=now_ms, bbox=bbox)
