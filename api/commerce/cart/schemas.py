"""Wire shapes of the cart (one chef per cart)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from api.commerce.orders.schemas import Notes, Quantity


class CartItem(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    menu_item_id: UUID
    name: str
    price_cents: int
    quantity: int
    subtotal_cents: int
    notes: str
    is_available: bool


class Cart(msgspec.Struct, frozen=True, kw_only=True):
    chef_id: UUID | None
    items: list[CartItem]
    subtotal_cents: int


class CartItemAdd(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    menu_item_id: UUID
    quantity: Quantity = 1
    notes: Notes = ""


class CartItemUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    quantity: Quantity | None = None
    notes: Notes | None = None
