"""Wire shapes of search results (money in cents, distances in metres)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

SearchKind = Literal["all", "dishes", "chefs"]


class DishHit(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    chef_id: UUID
    chef_name: str
    name: str
    description: str
    price_cents: int
    image_url: str
    category: str
    dietary_tags: list[str]
    score: float
    """Relevance: full-text rank (name > cuisine > description) plus name similarity."""
    distance_m: int | None
    """From the customer to the chef (when lat/lng were given)."""


class ChefHit(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    business_name: str
    description: str
    cuisines: list[str]
    profile_image: str
    rating: float
    total_reviews: int
    is_online: bool
    accepting_orders: bool
    delivery_fee_cents: int
    score: float
    distance_m: int | None


class SearchResults(msgspec.Struct, frozen=True, kw_only=True):
    """One page of each list (the same ``page`` and ``limit``), best match first."""

    dishes: list[DishHit]
    dish_total: int
    chefs: list[ChefHit]
    chef_total: int
    page: int
    limit: int
