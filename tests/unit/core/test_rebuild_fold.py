"""What the record says of an order (`fold_events`): the latest commerce status, the courier
holding it and in which state, and whether dispatch still has work for it."""

from __future__ import annotations

from api.core.dispatch.rebuild import OrderFold, fold_events
from dispatch.lifecycle import OrderDispatchState
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    DispatchEvent,
    LatLng,
    OrderDelivered,
    OrderEvent,
    OrderPickedUp,
    OrderStatus,
    OrderStatusChanged,
)

OID = "o-1"


def status(s: OrderStatus, at_ms: int) -> OrderStatusChanged:
    return OrderStatusChanged(order_id=OID, order_number="HC1", customer_id="u", chef_id="k",
                              status=s, at_ms=at_ms, pickup=LatLng(1.0, 2.0),
                              dropoff=LatLng(1.1, 2.0))


def fold(*events: OrderEvent | DispatchEvent) -> OrderFold:
    folds: dict[str, OrderFold] = {}
    for seq, e in enumerate(events, 1):
        fold_events(folds, e, "S", seq)
    return folds[OID]


def test_an_accepted_order_nobody_holds_waits() -> None:
    """Accepted, then ready: open, held by nobody, ready since the ready event."""
    f = fold(status("accepted", 1), status("ready", 5))
    assert f.open
    assert (f.held, f.courier_id, f.ready_ms) == (None, "", 5)


def test_the_latest_holder_and_state_win() -> None:
    """Assigned to A, taken back from A, assigned to B, picked up by B: B holds it picked up,
    with both milestones of B's assignment."""
    f = fold(status("accepted", 1),
             CourierAssigned(order_id=OID, courier_id="A", offer_id="f1", at_ms=2),
             CourierUnassigned(order_id=OID, courier_id="A", at_ms=3, reason="fleet"),
             CourierAssigned(order_id=OID, courier_id="B", offer_id="f2", at_ms=4),
             OrderPickedUp(order_id=OID, courier_id="B", at_ms=6))
    assert (f.courier_id, f.held) == ("B", OrderDispatchState.PICKED_UP)
    assert f.milestones == {"assigned_ms": 4, "picked_up_ms": 6}


def test_an_unassignment_leaves_it_waiting() -> None:
    """Assigned then unassigned: nobody holds it; it is still open."""
    f = fold(status("accepted", 1),
             CourierAssigned(order_id=OID, courier_id="A", offer_id="f1", at_ms=2),
             CourierUnassigned(order_id=OID, courier_id="A", at_ms=3, reason="fleet"))
    assert f.open
    assert (f.held, f.milestones) == (None, {})


def test_closed_orders_are_not_rebuilt() -> None:
    """Delivered (by dispatch), cancelled, refunded or never paid: dispatch has no work."""
    delivered = fold(status("accepted", 1),
                     CourierAssigned(order_id=OID, courier_id="A", offer_id="f1", at_ms=2),
                     OrderDelivered(order_id=OID, courier_id="A", at_ms=3))
    assert not delivered.open
    assert not fold(status("accepted", 1), status("cancelled", 2)).open
    assert not fold(status("accepted", 1), status("refunded", 2)).open
    assert not fold(status("pending", 1)).open


def test_couriers_the_watchdog_took_it_from_are_remembered() -> None:
    """Withdrawn for stalling from A (reason "stalled"), taken back from B by the fleet: A,
    and only A, is among the couriers never offered it again."""
    f = fold(status("accepted", 1),
             CourierAssigned(order_id=OID, courier_id="A", offer_id="f1", at_ms=2),
             CourierUnassigned(order_id=OID, courier_id="A", at_ms=3, reason="stalled"),
             CourierAssigned(order_id=OID, courier_id="B", offer_id="f2", at_ms=4),
             CourierUnassigned(order_id=OID, courier_id="B", at_ms=5, reason="fleet"))
    assert f.withdrawn_from == {"A"}
    assert (f.held, f.courier_id) == (None, "")
