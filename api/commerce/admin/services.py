"""Admin: users, promo codes (platform configuration)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api.commerce.accounts.schemas import User
from api.commerce.accounts.services import _USER_COLS
from api.commerce.admin import schemas as s
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources

PROMO_COLS = (
    "id, code, discount_type, discount_value, min_order_cents, max_discount_cents, max_uses, "
    "uses, expires_at, is_active, created_at"
)


class AdminService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def users(self, q: PageQuery, role: str | None, search: str | None) -> Page[User]:
        rows = await self.db.fetch(
            f"""SELECT {_USER_COLS}, count(*) OVER () AS total FROM users
                WHERE ($1::text IS NULL OR role = $1)
                  AND ($2::text IS NULL OR strpos(lower(email), lower($2)) > 0)
                ORDER BY created_at DESC, id LIMIT $3 OFFSET $4""",
            role, search, q.limit, q.offset)
        return page_of(User, rows, q)

    async def user(self, user_id: uuid.UUID) -> User:
        row = await self.db.fetchrow(f"SELECT {_USER_COLS} FROM users WHERE id = $1", user_id)
        if row is None:
            raise Problem(404, "user not found", code="not_found")
        return one(User, row)

    async def update_user(self, user_id: uuid.UUID, req: s.UserAdminUpdate) -> User:
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE users SET is_active = coalesce($2, is_active),
                        role = coalesce($3, role), first_name = coalesce($4, first_name),
                        last_name = coalesce($5, last_name), updated_at = now()
                    WHERE id = $1 RETURNING {_USER_COLS}""",
                user_id, req.is_active, req.role, req.first_name, req.last_name)
            if row is None:
                raise Problem(404, "user not found", code="not_found")
            if req.is_active is False:
                await conn.execute("UPDATE refresh_tokens SET revoked_at = now() "
                                   "WHERE user_id = $1 AND revoked_at IS NULL", user_id)
            return one(User, row)

    async def deactivate_user(self, user_id: uuid.UUID) -> None:
        await self.update_user(user_id, s.UserAdminUpdate(is_active=False))

    # -- promo codes -----------------------------------------------------------------------
    async def promos(self, q: PageQuery) -> Page[s.PromoCode]:
        rows = await self.db.fetch(
            f"""SELECT {PROMO_COLS}, count(*) OVER () AS total FROM promo_codes
                ORDER BY created_at DESC, id LIMIT $1 OFFSET $2""", q.limit, q.offset)
        return page_of(s.PromoCode, rows, q)

    async def create_promo(self, req: s.PromoCodeCreate) -> s.PromoCode:
        try:
            row = await self.db.fetchrow(
                f"""INSERT INTO promo_codes (code, discount_type, discount_value,
                        min_order_cents, max_discount_cents, max_uses, expires_at, is_active)
                    VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {PROMO_COLS}""",
                req.code.upper(), req.discount_type, req.discount_value, req.min_order_cents,
                req.max_discount_cents, req.max_uses, req.expires_at, req.is_active)
        except asyncpg.UniqueViolationError:
            raise Problem(409, "a promo code with this code exists", code="promo_exists") from None
        assert row is not None
        return one(s.PromoCode, row)

    async def update_promo(self, promo_id: uuid.UUID, req: s.PromoCodeUpdate) -> s.PromoCode:
        fields: dict[str, Any] = {
            k: getattr(req, k) for k in req.__struct_fields__ if getattr(req, k) is not None
        }
        sets = "".join(f"{k} = ${i}, " for i, k in enumerate(fields, start=2))
        row = await self.db.fetchrow(
            f"UPDATE promo_codes SET {sets}code = code WHERE id = $1 RETURNING {PROMO_COLS}",
            promo_id, *fields.values())
        if row is None:
            raise Problem(404, "promo code not found", code="not_found")
        return one(s.PromoCode, row)

    async def delete_promo(self, promo_id: uuid.UUID) -> None:
        """Deactivate (redemptions keep referring to it)."""
        done = await self.db.execute("UPDATE promo_codes SET is_active = false WHERE id = $1",
                                     promo_id)
        if done == "UPDATE 0":
            raise Problem(404, "promo code not found", code="not_found")
