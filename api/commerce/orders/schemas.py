"""Wire shapes of orders (seed CreateOrderRequest in snake_case, money in cents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from api.commerce.orders.state import OrderStatus

Quantity = Annotated[int, msgspec.Meta(ge=1, le=100)]
Notes = Annotated[str, msgspec.Meta(max_length=500)]


class OrderItemRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    menu_item_id: UUID
    quantity: Quantity = 1
    notes: Notes = ""


class OrderCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Items given here, or (when ``items`` is empty) taken from the customer's cart."""

    chef_id: UUID | None = None
    items: Annotated[list[OrderItemRequest], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list)
    delivery_address_id: UUID
    promo_code: Annotated[str, msgspec.Meta(max_length=40)] = ""
    instructions: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    scheduled_for: datetime | None = None
    """Deliver at this time (with a time zone) instead of as soon as possible: up to
    ``schedule_max_ahead_days`` ahead, the kitchen open while it cooks."""
    payment_method: Annotated[str, msgspec.Meta(max_length=60)] = ""
    tip_cents: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class OrderItem(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    menu_item_id: UUID
    name: str
    price_cents: int
    quantity: int
    subtotal_cents: int
    notes: str


class Order(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    order_number: str
    customer_id: UUID
    chef_id: UUID
    delivery_id: str | None
    status: OrderStatus
    delivery_address_id: UUID
    delivery_lat: float
    delivery_lng: float
    delivery_address: str
    distance_m: int
    subtotal_cents: int
    delivery_fee_cents: int
    service_fee_cents: int
    tax_cents: int
    discount_cents: int
    tip_cents: int
    total_cents: int
    promo_code: str
    instructions: str
    scheduled_for: datetime | None
    """The delivery slot of a scheduled order ("scheduled for"); None: as soon as possible."""
    start_cooking_at: datetime | None
    """When the kitchen starts a scheduled order."""
    estimated_ready: datetime | None
    estimated_delivery: datetime | None
    accepted_at: datetime | None
    preparing_at: datetime | None
    prepared_at: datetime | None
    picked_up_at: datetime | None
    delivering_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str
    payment_id: UUID | None
    payment_status: str
    payment_method: str
    created_at: datetime
    updated_at: datetime
    items: list[OrderItem] = msgspec.field(default_factory=list)


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: OrderStatus
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
