"""POST /orders/{id}/review and GET /reviews (the customer's own)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import ReviewServiceDep
from api.commerce.paging import Page, PageQueryDep
from api.commerce.reviews import schemas as s


class ReviewsController(Controller):
    path = "/"
    tags = ["reviews"]
    guards = [roles(Role.CUSTOMER)]

    @post("/orders/{order_id:uuid}/review", summary="Review a delivered order (once, 1-5)")
    async def create(self, order_id: FromPath[UUID], data: JSONBody[s.ReviewCreate],
                     identity: IdentityDep,
                     reviews: ReviewServiceDep) -> s.Review:
        return await reviews.create(identity.user_id, order_id, data)

    @get("/reviews", summary="The customer's reviews")
    async def mine(self, identity: IdentityDep, reviews: ReviewServiceDep,
                   paging: PageQueryDep) -> Page[s.Review]:
        return await reviews.of_customer(identity.user_id, paging)
