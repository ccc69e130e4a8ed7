"""Wire shapes of chef profiles (seed §4.2 ChefProfile JSON tags; money in cents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from api.commerce.accounts.schemas import Latitude, Longitude
from api.commerce.chefs.hours import OperatingHours

Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
Cents = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
Url = Annotated[str, msgspec.Meta(max_length=500)]
ChefStatus = Literal["pending", "approved", "rejected", "suspended"]


class ChefProfile(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    business_name: str
    description: str
    cuisines: list[str]
    specialties: list[str]
    profile_image: str
    banner_image: str
    status: ChefStatus
    rating: float
    total_reviews: int
    total_orders: int
    is_online: bool
    accepting_orders: bool
    service_radius: float
    """Kilometres."""
    latitude: float
    longitude: float
    address: str
    """The kitchen's street address (where couriers pick up)."""
    operating_hours: OperatingHours
    timezone: str
    delivery_fee_cents: int
    minimum_order_cents: int
    prep_time_minutes: int
    price_range: str
    verified: bool
    verified_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ChefProfileWrite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PUT /chef/profile: onboarding and later edits (the whole profile)."""

    business_name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    cuisines: Tags = msgspec.field(default_factory=list)
    specialties: Tags = msgspec.field(default_factory=list)
    profile_image: Url = ""
    banner_image: Url = ""
    latitude: Latitude
    longitude: Longitude
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""
    """The kitchen's street address, shown to the courier sent there."""
    service_radius: Annotated[float, msgspec.Meta(gt=0, le=100)] = 10.0
    delivery_fee_cents: Cents = 0
    minimum_order_cents: Cents = 0
    prep_time_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 30
    operating_hours: OperatingHours
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    price_range: Annotated[str, msgspec.Meta(max_length=8)] = ""


class AvailabilityUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    is_online: bool | None = None
    accepting_orders: bool | None = None


class VerifyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: Literal["approved", "rejected", "suspended"]


ChefSort = Literal["rating", "orders", "newest"]
