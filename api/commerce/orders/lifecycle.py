"""Order state changes with their side effects, all inside the caller's transaction:
timestamps, the outbox event, the in-app notification and, on cancellation, the refund."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from api.commerce.context import Commerce
from api.commerce.notifications.services import notify
from api.commerce.orders import state
from api.commerce.outbox.relay import enqueue
from api.commerce.payments.refunds import refund_order
from api.commerce.payouts import postings
from api.problems import Problem
from dispatch.promise import epoch_ms, ready_at
from streams.catalog import Names
from streams.events import (
    DeliveryDetails,
    LatLng,
    OrderCreated,
    OrderLine,
    OrderStatusChanged,
)

CUSTOMER_MESSAGES: dict[str, str] = {
    "accepted": "Your order has been accepted! Chef is preparing your food.",
    "preparing": "Your food is being prepared.",
    "ready": "Your order is ready for pickup!",
    "picked_up": "Your order has been picked up and is on the way!",
    "delivering": "Your order is on its way to you.",
    "delivered": "Your order has been delivered. Enjoy!",
    "cancelled": "Your order has been cancelled.",
}


async def lock_order(conn: asyncpg.Connection, order_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)


async def apply_transition(conn: asyncpg.Connection, commerce: Commerce, names: Names,
                           order: asyncpg.Record, target: state.OrderStatus, *,
                           reason: str = "", now: datetime | None = None) -> asyncpg.Record:
    """Move a locked order to ``target``; 409 (and no change) if the machine forbids it."""
    current = order["status"]
    if not state.is_valid_transition(current, target):
        raise Problem(409, f"an order cannot go from {current} to {target}",
                      code="invalid_transition", extra={"current_status": current})
    now = now or datetime.now(UTC)
    sets: dict[str, Any] = {"status": target, state.TIMESTAMP_OF[target]: now}
    if target == "accepted":
        ready = ready_at(now, order["prep_time_minutes"])
        slot = order["scheduled_for"]
        if slot is not None:  # cooked for its slot, unless accepted too late for that
            ready = max(ready, order["estimated_ready"])
        sets["estimated_ready"] = ready
        promise = commerce.promise(
            ready, (order["pickup_lat"], order["pickup_lng"]),
            (order["delivery_lat"], order["delivery_lng"]), order["distance_m"])
        sets["estimated_delivery"] = promise if slot is None else max(slot, promise)
    if target == "cancelled":
        sets["cancel_reason"] = reason
    assignments = ", ".join(f"{k} = ${i}" for i, k in enumerate(sets, start=2))
    row = await conn.fetchrow(
        f"UPDATE orders SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
        order["id"], *sets.values())
    assert row is not None
    if target == "delivered":
        await conn.execute(
            "UPDATE chef_profiles SET total_orders = total_orders + 1 WHERE id = $1",
            row["chef_id"])
        if row["payment_status"] == "paid":
            await postings.order_delivered(
                conn, row, commission_percent=commerce.config.commission_percent,
                courier_fee_share_percent=commerce.config.courier_fee_share_percent)
    if target == "cancelled" and row["payment_status"] == "paid":
        await refund_order(conn, commerce.payments, row["id"], reason or "order cancelled")
    if row["payment_status"] != "unpaid" or target != "cancelled":
        chef_user, details = await courier_details(conn, row)
        await enqueue(conn, names.order_event("status", str(row["id"])),
                      status_event(row, previous=current, now=now, chef_user_id=chef_user,
                                   item_count=details.items_count, details=details))
    text = CUSTOMER_MESSAGES.get(target, f"Your order is {target}.")
    if target == "accepted" and row["scheduled_for"] is not None:
        text = (f"Your order is confirmed for {_clock(row['estimated_delivery'])}. The chef "
                "starts cooking in time for it.")
    await notify(conn, row["customer_id"], "ORDER_STATUS_UPDATE", "Order update", text,
                 {"order_id": str(row["id"]), "status": target,
                  "timestamp": now.isoformat(),
                  "estimated_time": (row["estimated_delivery"].isoformat()
                                     if row["estimated_delivery"] else None),
                  "scheduled_for": _iso(row["scheduled_for"])})

    return row


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _clock(at: datetime) -> str:
    """A time for a message: UTC, to the minute (the apps show it in local time)."""
    return at.astimezone(UTC).strftime("%a %d %b %H:%M UTC")


_DETAILS = """
SELECT cp.user_id::text AS chef_user_id, cp.business_name, cp.address AS chef_address,
       u.first_name, u.phone,
       (SELECT coalesce(sum(quantity), 0)::int FROM order_items WHERE order_id = $1) AS items
FROM orders o JOIN chef_profiles cp ON cp.id = o.chef_id JOIN users u ON u.id = o.customer_id
WHERE o.id = $1
"""


def mask_phone(phone: str | None) -> str:
    """A phone number as a courier may see it: its last four digits only."""
    digits = [c for c in phone or "" if c.isdigit()]
    return f"•••• {''.join(digits[-4:])}" if len(digits) >= 4 else ""


async def courier_details(conn: asyncpg.Connection,
                          order: asyncpg.Record) -> tuple[str, DeliveryDetails]:
    """The chef's user id and what the courier of ``order`` needs (one query)."""
    r = await conn.fetchrow(_DETAILS, order["id"])
    assert r is not None  # the order's row is locked or just written by the caller
    return r["chef_user_id"], DeliveryDetails(
        pickup_address=r["chef_address"], dropoff_address=order["delivery_address"],
        chef_name=r["business_name"], customer_name=r["first_name"],
        customer_phone_masked=mask_phone(r["phone"]), instructions=order["instructions"],
        items_count=r["items"],
        payout_cents=order["delivery_fee_cents"] + order["tip_cents"])


def status_event(row: asyncpg.Record, *, previous: str | None, now: datetime,
                 chef_user_id: str = "", item_count: int = 0,
                 details: DeliveryDetails | None = None) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=str(row["id"]), order_number=row["order_number"],
        customer_id=str(row["customer_id"]), chef_id=str(row["chef_id"]),
        status=row["status"], previous_status=previous,  # type: ignore[arg-type]
        at_ms=epoch_ms(now),
        pickup=LatLng(row["pickup_lat"], row["pickup_lng"]),
        dropoff=LatLng(row["delivery_lat"], row["delivery_lng"]),
        ready_at_ms=epoch_ms(row["estimated_ready"]) if row["estimated_ready"] else None,
        promised_at_ms=(epoch_ms(row["estimated_delivery"])
                        if row["estimated_delivery"] else None),
        total_cents=row["total_cents"], item_count=item_count, chef_user_id=chef_user_id,
        details=details,
        scheduled_for_ms=epoch_ms(row["scheduled_for"]) if row["scheduled_for"] else None,
    )


async def on_paid(conn: asyncpg.Connection, commerce: Commerce, names: Names,
                  order: asyncpg.Record, payment_id: uuid.UUID) -> None:
    """The order is paid: it now reaches the chef (NEW_ORDER) and dispatch (order.created)."""
    now = datetime.now(UTC)
    row = await conn.fetchrow(
        """UPDATE orders SET payment_status = 'paid', payment_id = $2, updated_at = now()
           WHERE id = $1 AND payment_status = 'unpaid' RETURNING *""", order["id"], payment_id)
    if row is None:
        return  # already paid: nothing to announce twice
    await postings.order_paid(conn, row)
    chef_user, details = await courier_details(conn, row)
    lines = await conn.fetch(
        """SELECT menu_item_id::text AS menu_item_id, name, quantity, price_cents, notes
           FROM order_items WHERE order_id = $1 ORDER BY created_at, id""", row["id"])
    await enqueue(conn, names.order_event("created", str(row["id"])), OrderCreated(
        order_id=str(row["id"]), order_number=row["order_number"],
        customer_id=str(row["customer_id"]), chef_id=str(row["chef_id"]),
        pickup=LatLng(row["pickup_lat"], row["pickup_lng"]),
        dropoff=LatLng(row["delivery_lat"], row["delivery_lng"]),
        total_cents=row["total_cents"], created_at_ms=epoch_ms(row["created_at"]),
        chef_user_id=chef_user, items=tuple(OrderLine(**dict(r)) for r in lines),
        details=details,
        scheduled_for_ms=epoch_ms(row["scheduled_for"]) if row["scheduled_for"] else None,
        start_cooking_at_ms=(epoch_ms(row["start_cooking_at"])
                             if row["start_cooking_at"] else None)))
    items = [{"name": r["name"], "quantity": r["quantity"], "notes": r["notes"]} for r in lines]
    body = f"You have a new order #{row['order_number']}"
    if row["scheduled_for"] is not None:  # the kitchen is told when to start
        body += (f", scheduled for {_clock(row['scheduled_for'])}: start cooking at "
                 f"{_clock(row['start_cooking_at'])}")
    await notify(conn, uuid.UUID(chef_user), "NEW_ORDER", "New Order!", body,
                 {"order_id": str(row["id"]), "order_number": row["order_number"],
                  "items": items, "total_cents": row["total_cents"],
                  "timestamp": now.isoformat(), "scheduled_for": _iso(row["scheduled_for"]),
                  "start_cooking_at": _iso(row["start_cooking_at"])})

