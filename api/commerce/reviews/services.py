"""Reviews: the customer of a delivered order reviews it once; the chef's rating follows."""

from __future__ import annotations

import uuid

import asyncpg

from api.commerce.ids import user_uuid
from api.commerce.paging import Page, PageQuery
from api.commerce.reviews import schemas as s
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources

REVIEW_COLS = "id, order_id, customer_id, chef_id, rating, comment, created_at"


class ReviewService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def create(self, customer_id: str, order_id: uuid.UUID,
                     req: s.ReviewCreate) -> s.Review:
        cid = user_uuid(customer_id)
        async with self.db.acquire() as conn, conn.transaction():
            order = await conn.fetchrow(
                "SELECT id, chef_id, status FROM orders WHERE id = $1 AND customer_id = $2",
                order_id, cid)
            if order is None:
                raise Problem(404, "order not found", code="not_found")
            if order["status"] != "delivered":
                raise Problem(409, "only a delivered order can be reviewed",
                              code="not_delivered")
            try:
                row = await conn.fetchrow(
                    f"""INSERT INTO reviews (order_id, customer_id, chef_id, rating, comment)
                        VALUES ($1, $2, $3, $4, $5) RETURNING {REVIEW_COLS}""",
                    order_id, cid, order["chef_id"], req.rating, req.comment)
            except asyncpg.UniqueViolationError:
                raise Problem(409, "this order was already reviewed",
                              code="already_reviewed") from None
            await conn.execute(
                """UPDATE chef_profiles SET
                       total_reviews = (SELECT count(*) FROM reviews WHERE chef_id = $1),
                       rating = (SELECT round(avg(rating)::numeric, 2)::float8
                                 FROM reviews WHERE chef_id = $1),
                       updated_at = now()
                   WHERE id = $1""", order["chef_id"])
            assert row is not None
            return one(s.Review, row)

    async def of_customer(self, customer_id: str, q: PageQuery) -> Page[s.Review]:
        rows = await self.db.fetch(
            f"""SELECT {REVIEW_COLS}, count(*) OVER () AS total FROM reviews
                WHERE customer_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3""",
            user_uuid(customer_id), q.limit, q.offset)
        return page_of(s.Review, rows, q)

    async def of_chef(self, chef_id: uuid.UUID, q: PageQuery) -> Page[s.Review]:
        rows = await self.db.fetch(
            f"""SELECT {REVIEW_COLS}, count(*) OVER () AS total FROM reviews
                WHERE chef_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3""",
            chef_id, q.limit, q.offset)
        return page_of(s.Review, rows, q)
