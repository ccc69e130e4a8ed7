"""Who may chat about an order, and until when. Pure: no I/O, the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from api.auth import Identity, Role

OPEN_AFTER_END = timedelta(hours=24)
"""A chat stays open this long after its order was delivered or cancelled."""

Party = Literal["customer", "chef", "courier", "staff"]


@dataclass(frozen=True, slots=True)
class OrderParties:
    customer_id: str
    chef_user_id: str
    courier_id: str | None
    paid: bool
    """The chef takes part once the order is paid (before, it does not see the order)."""
    ended_at: datetime | None
    """When it was delivered or cancelled."""


def party_of(who: Identity, order: OrderParties) -> Party | None:
    """The caller's part in the order's chat, or None for a stranger."""
    if who.role in (Role.ADMIN, Role.FLEET_MANAGER):
        return "staff"
    if who.role == Role.CUSTOMER and who.user_id == order.customer_id:
        return "customer"
    if who.role == Role.CHEF and who.user_id == order.chef_user_id and order.paid:
        return "chef"
    if who.role == Role.DELIVERY and order.courier_id is not None \
            and who.user_id == order.courier_id:
        return "courier"
    return None


def is_open(order: OrderParties, now: datetime) -> bool:
    """Messages may be sent until OPEN_AFTER_END past the order's end."""
    return order.ended_at is None or now < order.ended_at + OPEN_AFTER_END


__all__ = ["OPEN_AFTER_END", "OrderParties", "Party", "is_open", "party_of"]
