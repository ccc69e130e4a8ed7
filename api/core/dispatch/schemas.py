"""Request and response bodies of the dispatch endpoints (courier and fleet side)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from streams.wire import CourierJob

__all__ = [
    "AssignRequest",
    "Availability",
    "CourierStatus",
    "DispatchConfig",
    "DispatchOrder",
    "DispatchOrderList",
    "Offer",
    "OfferDecision",
    "OfferList",
    "ProgressUpdate",
]


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    online: bool
    vehicle: Literal["bike", "scooter", "car"] | None = None


class CourierStatus(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    state: str
    vehicle: str | None = None


class Offer(CourierJob, frozen=True, kw_only=True):
    """An open offer, with what the courier needs to decide (`CourierJob`)."""

    offer_id: str
    order_id: str
    pickup: dict[str, float]
    dropoff: dict[str, float]
    ready_at: int | None
    expires_at: int


class OfferList(msgspec.Struct, frozen=True):
    offers: list[Offer]


class OfferDecision(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: str
    order_id: str
    status: str


class DispatchOrder(CourierJob, frozen=True, kw_only=True):
    """An order in dispatch. The courier's own orders carry the `CourierJob` fields; the
    fleet's lists leave them empty."""

    order_id: str
    order_number: str
    status: str
    courier_id: str | None
    pickup: dict[str, float]
    dropoff: dict[str, float]
    ready_at: int | None
    promised_at: int | None
    late: bool
    food_ready: bool = False
    """The chef has marked the food ready (couriers also get ORDER_READY on their socket)."""
    created_at: int | None = None
    """Epoch ms UTC when it entered dispatch (the console shows its age)."""


class DispatchOrderList(msgspec.Struct, frozen=True):
    orders: list[DispatchOrder]


class ProgressUpdate(msgspec.Struct, frozen=True):
    status: Literal["picked_up", "delivering", "delivered"]


class AssignRequest(msgspec.Struct, frozen=True):
    courier_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class DispatchConfig(msgspec.Struct, frozen=True, kw_only=True):
    policy: str
    """``optimal`` or ``greedy`` (DISPATCH_POLICY)."""
    round_s: float
    offer_ttl_s: float
    radius_m: float
