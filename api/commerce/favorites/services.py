"""Saving, listing and removing a customer's favourite chefs and dishes.

Every statement is keyed by the caller's own user id, so nobody reads or changes another
user's favourites. Saving is idempotent (a second PUT keeps the first ``saved_at``).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api.commerce.chefs.services import CHEF_COLS, chef_from_row
from api.commerce.favorites import schemas as s
from api.commerce.ids import user_uuid
from api.commerce.menus.schemas import MenuItem
from api.commerce.menus.services import ITEM_COLS
from api.commerce.rows import one
from api.problems import Problem
from api.resources import Resources

_ITEM_COLS = ", ".join(f"m.{c.strip()}" for c in ITEM_COLS.split(","))


class FavoriteService:
    def __init__(self, resources: Resources, max_per_kind: int) -> None:
        self.db = resources.db
        self.max_per_kind = max_per_kind

    async def list(self, user_id: str) -> s.Favorites:
        uid = user_uuid(user_id)
        chef_rows = await self.db.fetch(
            f"""SELECT p.*, f.created_at AS saved_at FROM favorite_chefs f
                JOIN LATERAL (SELECT {CHEF_COLS} FROM chef_profiles
                              WHERE id = f.chef_id AND status = 'approved') p ON true
                WHERE f.user_id = $1 ORDER BY f.created_at DESC, f.chef_id LIMIT $2""",
            uid, self.max_per_kind)
        dish_rows = await self.db.fetch(
            f"""SELECT {_ITEM_COLS}, c.business_name AS chef_name, f.created_at AS saved_at
                FROM favorite_dishes f JOIN menu_items m ON m.id = f.menu_item_id
                JOIN chef_profiles c ON c.id = m.chef_id
                WHERE f.user_id = $1 AND m.deleted_at IS NULL AND c.status = 'approved'
                ORDER BY f.created_at DESC, f.menu_item_id LIMIT $2""",
            uid, self.max_per_kind)
        chefs = [s.FavoriteChef(saved_at=r["saved_at"],
                                chef=chef_from_row(_without(r, "saved_at"))) for r in chef_rows]
        dishes = [s.FavoriteDish(saved_at=r["saved_at"], chef_name=r["chef_name"],
                                 dish=one(MenuItem, _without(r, "saved_at", "chef_name")))
                  for r in dish_rows]
        return s.Favorites(chefs=chefs, dishes=dishes)

    async def save_chef(self, user_id: str, chef_id: uuid.UUID) -> None:
        uid = user_uuid(user_id)
        async with self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                    "SELECT 1 FROM chef_profiles WHERE id = $1 AND status = 'approved'",
                    chef_id):
                raise Problem(404, "chef not found", code="not_found")
            await self._room_for_one(conn, "favorite_chefs", "chef_id", uid, chef_id)
            await conn.execute(
                "INSERT INTO favorite_chefs (user_id, chef_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING", uid, chef_id)

    async def save_dish(self, user_id: str, item_id: uuid.UUID) -> None:
        uid = user_uuid(user_id)
        async with self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                    """SELECT 1 FROM menu_items m JOIN chef_profiles c ON c.id = m.chef_id
                       WHERE m.id = $1 AND m.deleted_at IS NULL AND c.status = 'approved'""",
                    item_id):
                raise Problem(404, "dish not found", code="not_found")
            await self._room_for_one(conn, "favorite_dishes", "menu_item_id", uid, item_id)
            await conn.execute(
                "INSERT INTO favorite_dishes (user_id, menu_item_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING", uid, item_id)

    async def _room_for_one(self, conn: asyncpg.Connection, table: str, column: str,
                            uid: uuid.UUID, target: uuid.UUID) -> None:
        """Refuse a new favourite beyond the cap (the user's row lock serialises two saves)."""
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", uid)
        count = await conn.fetchval(
            f"SELECT count(*) FILTER (WHERE {column} <> $2) FROM {table} WHERE user_id = $1",
            uid, target)
        if count >= self.max_per_kind:
            raise Problem(409, f"at most {self.max_per_kind} favourites of a kind; remove one "
                          "first", code="too_many_favorites")

    async def remove_chef(self, user_id: str, chef_id: uuid.UUID) -> None:
        done = await self.db.execute(
            "DELETE FROM favorite_chefs WHERE user_id = $1 AND chef_id = $2",
            user_uuid(user_id), chef_id)
        if done == "DELETE 0":
            raise Problem(404, "this chef is not among your favourites", code="not_found")

    async def remove_dish(self, user_id: str, item_id: uuid.UUID) -> None:
        done = await self.db.execute(
            "DELETE FROM favorite_dishes WHERE user_id = $1 AND menu_item_id = $2",
            user_uuid(user_id), item_id)
        if done == "DELETE 0":
            raise Problem(404, "this dish is not among your favourites", code="not_found")


def _without(row: asyncpg.Record, *keys: str) -> dict[str, Any]:
    d = dict(row)
    for k in keys:
        d.pop(k)
    return d
