"""The console's KPIs from live state: who counts as online and idle, which orders wait or
are late, and the median wait to assignment over orders carried now."""

from __future__ import annotations

import msgspec

from dispatch.kpis import fleet_kpis
from dispatch.lifecycle import OrderDispatchState

NOW = 1_704_110_400_000


class Order(msgspec.Struct, frozen=True, kw_only=True):
    state: OrderDispatchState
    promised_ms: int | None = None
    enter_ms: int | None = None
    created_ms: int | None = None
    assigned_ms: int | None = None


def order(state: str, *, promised: int | None = None, enter: int | None = None,
          assigned: int | None = None) -> Order:
    return Order(state=OrderDispatchState(state), promised_ms=promised, enter_ms=enter,
                 assigned_ms=assigned)


def test_couriers_online_exclude_offline_and_idle_is_a_subset() -> None:
    """Offline couriers are not online; a courier with no state yet (fixes only) is."""
    k = fleet_kpis([("idle", 1.0, 2.0), ("to_pickup", 1.5, 2.5), ("offline", 9.0, 9.0),
                    ("", 0.5, 3.0)], [], NOW)
    assert (k.couriers_online, k.couriers_idle) == (3, 1)
    assert k.bbox == (2.0, 0.5, 3.0, 1.5)  # offline couriers do not widen the view


def test_waiting_late_and_median_assign() -> None:
    """Waiting = waiting + offered; late = open and past the promise; the median wait is
    assigned_ms - enter_ms over assigned/picked-up/delivering orders, in seconds."""
    orders = [
        order("waiting", promised=NOW + 1),
        order("offered", promised=NOW - 1),                       # late, still waiting
        order("assigned", enter=NOW - 60_000, assigned=NOW - 50_000),   # 10 s
        order("picked_up", enter=NOW - 90_000, assigned=NOW - 60_000),  # 30 s
        order("delivering", enter=NOW - 9_000, assigned=NOW - 5_000, promised=NOW - 5),  # 4 s
        order("delivered", promised=NOW - 100, enter=NOW - 1, assigned=NOW),  # closed: ignored
        order("cancelled", promised=NOW - 100),
    ]
    k = fleet_kpis([], orders, NOW)
    assert (k.orders_waiting, k.orders_late) == (2, 2)
    assert k.median_assign_s == 10.0
    assert k.bbox is None


def test_no_carried_orders_means_no_median() -> None:
    """With nothing assigned the median is unknown (None), never a made-up zero."""
    k = fleet_kpis([("idle", 0.0, 0.0)], [order("waiting")], NOW)
    assert k.median_assign_s is None
    assert k.orders_waiting == 1
