"""/users/me/favorites: a customer's saved chefs and dishes."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, put
from litestar.params import FromPath

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import FavoriteServiceDep
from api.commerce.favorites.schemas import Favorites


class FavoritesController(Controller):
    """Customers only (seed §3.4: customers save chefs and dishes); each call reads or
    changes the caller's own list."""

    path = "/users/me/favorites"
    tags = ["favorites"]
    guards = [roles(Role.CUSTOMER)]

    @get("", summary="The caller's saved chefs and dishes, newest first")
    async def list_favorites(self, identity: IdentityDep,
                             favorites: FavoriteServiceDep) -> Favorites:
        return await favorites.list(identity.user_id)

    @put("/chefs/{chef_id:uuid}", status_code=204, summary="Save an approved chef (idempotent)")
    async def save_chef(self, chef_id: FromPath[UUID], identity: IdentityDep,
                        favorites: FavoriteServiceDep) -> None:
        await favorites.save_chef(identity.user_id, chef_id)

    @delete("/chefs/{chef_id:uuid}", status_code=204, summary="Forget a saved chef")
    async def remove_chef(self, chef_id: FromPath[UUID], identity: IdentityDep,
                          favorites: FavoriteServiceDep) -> None:
        await favorites.remove_chef(identity.user_id, chef_id)

    @put("/dishes/{item_id:uuid}", status_code=204, summary="Save a dish on offer (idempotent)")
    async def save_dish(self, item_id: FromPath[UUID], identity: IdentityDep,
                        favorites: FavoriteServiceDep) -> None:
        await favorites.save_dish(identity.user_id, item_id)

    @delete("/dishes/{item_id:uuid}", status_code=204, summary="Forget a saved dish")
    async def remove_dish(self, item_id: FromPath[UUID], identity: IdentityDep,
                          favorites: FavoriteServiceDep) -> None:
        await favorites.remove_dish(identity.user_id, item_id)
