"""Wire shapes of admin operations (users, promo codes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec


class UserAdminUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    is_active: bool | None = None
    role: Literal["customer", "chef", "delivery", "admin", "fleet_manager"] | None = None
    first_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    last_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class PromoCode(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    code: str
    discount_type: Literal["percent", "fixed"]
    discount_value: int
    min_order_cents: int
    max_discount_cents: int | None
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    is_active: bool
    created_at: datetime


class PromoCodeCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{3,40}$")]
    discount_type: Literal["percent", "fixed"]
    discount_value: Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
    """Percent points (1-100) or cents."""
    min_order_cents: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
    max_discount_cents: Annotated[int, msgspec.Meta(gt=0, le=10_000_000)] | None = None
    max_uses: Annotated[int, msgspec.Meta(gt=0)] | None = None
    expires_at: datetime | None = None
    is_active: bool = True

    def __post_init__(self) -> None:
        if self.discount_type == "percent" and self.discount_value > 100:
            raise ValueError("a percent discount is at most 100")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone")


class PromoCodeUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    is_active: bool | None = None
    max_uses: Annotated[int, msgspec.Meta(gt=0)] | None = None
    expires_at: datetime | None = None
