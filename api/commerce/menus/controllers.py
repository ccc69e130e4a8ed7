"""/chef/menu: menu CRUD for chefs (their own) and admins (any chef's)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import MenuServiceDep
from api.commerce.menus import schemas as s
from api.commerce.paging import Page, PageQueryDep


class MenuController(Controller):
    path = "/chef/menu"
    tags = ["menu"]
    guards = [roles(Role.CHEF, Role.ADMIN)]

    @get("", guards=[roles(Role.CHEF)], summary="The chef's own menu (unavailable included)")
    async def own_menu(self, identity: IdentityDep, menus: MenuServiceDep,
                       paging: PageQueryDep) -> Page[s.MenuItem]:
        return await menus.own_menu(identity, paging)

    @post("", summary="Add a menu item")
    async def create(self, data: JSONBody[s.MenuItemCreate], identity: IdentityDep,
                     menus: MenuServiceDep) -> s.MenuItem:
        return await menus.create(identity, data)

    @put("/{item_id:uuid}", summary="Update a menu item")
    async def update(self, item_id: FromPath[UUID], data: JSONBody[s.MenuItemUpdate],
                     identity: IdentityDep,
                     menus: MenuServiceDep) -> s.MenuItem:
        return await menus.update(identity, item_id, data)

    @delete("/{item_id:uuid}", summary="Delete a menu item")
    async def remove(self, item_id: FromPath[UUID], identity: IdentityDep,
                     menus: MenuServiceDep) -> None:
        await menus.delete(identity, item_id)
