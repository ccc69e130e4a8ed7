"""Wire shapes of menu items (price in cents, prep_time in minutes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from api.commerce.chefs.schemas import Tags, Url

Price = Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
PrepMinutes = Annotated[int, msgspec.Meta(ge=0, le=24 * 60)]
ItemName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Category = Annotated[str, msgspec.Meta(max_length=50)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]


class MenuItem(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    chef_id: UUID
    name: str
    description: str
    price_cents: int
    image_url: str
    category: str
    dietary_tags: list[str]
    is_available: bool
    prep_time: int
    created_at: datetime
    updated_at: datetime


class MenuItemCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName
    description: Description = ""
    price_cents: Price
    image_url: Url = ""
    category: Category = ""
    dietary_tags: Tags = msgspec.field(default_factory=list)
    is_available: bool = True
    prep_time: PrepMinutes = 0
    chef_id: UUID | None = None
    """Admins only: whose menu the item joins (chefs always add to their own)."""


class MenuItemUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName | None = None
    description: Description | None = None
    price_cents: Price | None = None
    image_url: Url | None = None
    category: Category | None = None
    dietary_tags: Tags | None = None
    is_available: bool | None = None
    prep_time: PrepMinutes | None = None
