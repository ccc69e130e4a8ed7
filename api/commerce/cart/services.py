"""The customer's cart: one chef at a time; adding another chef's item is a 409."""

from __future__ import annotations

import uuid

import asyncpg

from api.commerce.cart import schemas as s
from api.commerce.ids import user_uuid
from api.commerce.rows import many
from api.problems import Problem
from api.resources import Resources


class CartService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def _read(self, conn: asyncpg.Connection | asyncpg.Pool, uid: uuid.UUID) -> s.Cart:
        chef_id = await conn.fetchval("SELECT chef_id FROM carts WHERE user_id = $1", uid)
        rows = await conn.fetch(
            """SELECT ci.id, ci.menu_item_id, m.name, m.price_cents, ci.quantity,
                      m.price_cents * ci.quantity AS subtotal_cents, ci.notes,
                      (m.is_available AND m.deleted_at IS NULL) AS is_available
               FROM cart_items ci JOIN menu_items m ON m.id = ci.menu_item_id
               WHERE ci.user_id = $1 ORDER BY ci.created_at, ci.id""", uid)
        items = many(s.CartItem, rows)
        return s.Cart(chef_id=chef_id if items else None, items=items,
                      subtotal_cents=sum(i.subtotal_cents for i in items))

    async def get(self, user_id: str) -> s.Cart:
        return await self._read(self.db, user_uuid(user_id))

    async def add(self, user_id: str, req: s.CartItemAdd) -> s.Cart:
        uid = user_uuid(user_id)
        async with self.db.acquire() as conn, conn.transaction():
            item = await conn.fetchrow(
                """SELECT m.id, m.chef_id, m.is_available FROM menu_items m
                   JOIN chef_profiles c ON c.id = m.chef_id
                   WHERE m.id = $1 AND m.deleted_at IS NULL AND c.status = 'approved'""",
                req.menu_item_id)
            if item is None:
                raise Problem(404, "menu item not found", code="not_found")
            if not item["is_available"]:
                raise Problem(422, "this item is not available", code="item_unavailable")
            await conn.execute(
                "INSERT INTO carts (user_id) VALUES ($1) ON CONFLICT DO NOTHING", uid)
            cart = await conn.fetchrow(
                "SELECT chef_id, EXISTS (SELECT 1 FROM cart_items WHERE user_id = $1) AS busy "
                "FROM carts WHERE user_id = $1 FOR UPDATE", uid)
            assert cart is not None
            if cart["busy"] and cart["chef_id"] != item["chef_id"]:
                raise Problem(409, "the cart holds another chef's items; clear it first",
                              code="cart_other_chef",
                              extra={"cart_chef_id": str(cart["chef_id"])})
            await conn.execute("UPDATE carts SET chef_id = $2, updated_at = now() "
                               "WHERE user_id = $1", uid, item["chef_id"])
            await conn.execute(
                """INSERT INTO cart_items (user_id, menu_item_id, quantity, notes)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (user_id, menu_item_id) DO UPDATE
                   SET quantity = least(cart_items.quantity + EXCLUDED.quantity, 100),
                       notes = CASE WHEN EXCLUDED.notes = '' THEN cart_items.notes
                                    ELSE EXCLUDED.notes END""",
                uid, req.menu_item_id, req.quantity, req.notes)
            return await self._read(conn, uid)

    async def update(self, user_id: str, cart_item_id: uuid.UUID,
                     req: s.CartItemUpdate) -> s.Cart:
        uid = user_uuid(user_id)
        done = await self.db.execute(
            """UPDATE cart_items SET quantity = coalesce($3, quantity),
                   notes = coalesce($4, notes)
               WHERE id = $1 AND user_id = $2""", cart_item_id, uid, req.quantity, req.notes)
        if done == "UPDATE 0":
            raise Problem(404, "cart item not found", code="not_found")
        return await self._read(self.db, uid)

    async def remove(self, user_id: str, cart_item_id: uuid.UUID) -> s.Cart:
        uid = user_uuid(user_id)
        done = await self.db.execute("DELETE FROM cart_items WHERE id = $1 AND user_id = $2",
                                     cart_item_id, uid)
        if done == "DELETE 0":
            raise Problem(404, "cart item not found", code="not_found")
        return await self._read(self.db, uid)

    async def clear(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM carts WHERE user_id = $1", user_uuid(user_id))
