"""Menu items: a chef's CRUD (admins may act on any chef's menu), public menus."""

from __future__ import annotations

import uuid
from typing import Any

from api.auth import Identity, Role
from api.commerce.ids import user_uuid
from api.commerce.menus import schemas as s
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources

ITEM_COLS = (
    "id, chef_id, name, description, price_cents, image_url, category, dietary_tags, "
    "is_available, prep_time, created_at, updated_at"
)


class MenuService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def _chef_of(self, who: Identity) -> uuid.UUID:
        chef_id = await self.db.fetchval("SELECT id FROM chef_profiles WHERE user_id = $1",
                                         user_uuid(who.user_id))
        if chef_id is None:
            raise Problem(409, "no chef profile yet: PUT /chef/profile to onboard",
                          code="chef_profile_missing")
        return uuid.UUID(str(chef_id))

    async def menu_of(self, chef_id: uuid.UUID, q: PageQuery, *,
                      include_unavailable: bool) -> Page[s.MenuItem]:
        rows = await self.db.fetch(
            f"""SELECT {ITEM_COLS}, count(*) OVER () AS total FROM menu_items
                WHERE chef_id = $1 AND deleted_at IS NULL AND ($2 OR is_available)
                ORDER BY category, name, id LIMIT $3 OFFSET $4""",
            chef_id, include_unavailable, q.limit, q.offset)
        return page_of(s.MenuItem, rows, q)

    async def own_menu(self, who: Identity, q: PageQuery) -> Page[s.MenuItem]:
        return await self.menu_of(await self._chef_of(who), q, include_unavailable=True)

    async def create(self, who: Identity, req: s.MenuItemCreate) -> s.MenuItem:
        if who.role == Role.ADMIN:
            if req.chef_id is None:
                raise Problem(422, "admins must name the chef_id", code="chef_id_required")
            chef_id = req.chef_id
            if not await self.db.fetchval("SELECT 1 FROM chef_profiles WHERE id = $1", chef_id):
                raise Problem(404, "chef not found", code="not_found")
        else:
            chef_id = await self._chef_of(who)
        row = await self.db.fetchrow(
            f"""INSERT INTO menu_items (chef_id, name, description, price_cents, image_url,
                    category, dietary_tags, is_available, prep_time)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING {ITEM_COLS}""",
            chef_id, req.name, req.description, req.price_cents, req.image_url, req.category,
            req.dietary_tags, req.is_available, req.prep_time)
        assert row is not None
        return one(s.MenuItem, row)

    async def _owner_filter(self, who: Identity) -> uuid.UUID | None:
        """The chef whose items ``who`` may change (None: any, for admins)."""
        return None if who.role == Role.ADMIN else await self._chef_of(who)

    async def update(self, who: Identity, item_id: uuid.UUID,
                     req: s.MenuItemUpdate) -> s.MenuItem:
        owner = await self._owner_filter(who)
        fields: dict[str, Any] = {
            k: getattr(req, k) for k in req.__struct_fields__ if getattr(req, k) is not None
        }
        sets = "".join(f"{k} = ${i}, " for i, k in enumerate(fields, start=3))
        row = await self.db.fetchrow(
            f"""UPDATE menu_items SET {sets}updated_at = now()
                WHERE id = $1 AND ($2::uuid IS NULL OR chef_id = $2) AND deleted_at IS NULL
                RETURNING {ITEM_COLS}""", item_id, owner, *fields.values())
        if row is None:
            raise Problem(404, "menu item not found", code="not_found")
        return one(s.MenuItem, row)

    async def delete(self, who: Identity, item_id: uuid.UUID) -> None:
        owner = await self._owner_filter(who)
        done = await self.db.execute(
            """UPDATE menu_items SET deleted_at = now(), is_available = false
               WHERE id = $1 AND ($2::uuid IS NULL OR chef_id = $2) AND deleted_at IS NULL""",
            item_id, owner)
        if done == "UPDATE 0":
            raise Problem(404, "menu item not found", code="not_found")
        await self.db.execute("DELETE FROM cart_items WHERE menu_item_id = $1", item_id)
