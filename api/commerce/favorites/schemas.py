"""Wire shapes of favourites: the public chef and menu-item shapes, with when they were saved."""

from __future__ import annotations

from datetime import datetime

import msgspec

from api.commerce.chefs.schemas import ChefProfile
from api.commerce.menus.schemas import MenuItem


class FavoriteChef(msgspec.Struct, frozen=True, kw_only=True):
    saved_at: datetime
    chef: ChefProfile


class FavoriteDish(msgspec.Struct, frozen=True, kw_only=True):
    saved_at: datetime
    chef_name: str
    """The business name of the dish's chef (to show without another call)."""
    dish: MenuItem


class Favorites(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's saved chefs and dishes, newest first; only those still on offer (approved
    chefs, dishes not deleted) are listed."""

    chefs: list[FavoriteChef]
    dishes: list[FavoriteDish]
