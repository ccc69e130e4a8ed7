"""Wire shapes of the delivery partner profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

VehicleType = Literal["bike", "scooter", "car"]


class DeliveryProfile(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    user_id: UUID
    vehicle_type: VehicleType
    license_number: str
    rating: float
    total_deliveries: int
    created_at: datetime
    updated_at: datetime


class DeliveryProfileUpdate(msgspec.Struct, frozen=True, kw_only=True,
                            forbid_unknown_fields=True):
    vehicle_type: VehicleType | None = None
    license_number: Annotated[str, msgspec.Meta(max_length=50)] | None = None
