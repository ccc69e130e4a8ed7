"""Wire shapes of reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec


class Review(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    order_id: UUID
    customer_id: UUID
    chef_id: UUID
    rating: int
    comment: str
    created_at: datetime


class ReviewCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""
