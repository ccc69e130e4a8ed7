"""POST /orders/{id}/review and GET /reviews (the customer's own)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post

from api.auth import Identity, Role, roles
from api.commerce.paging import Page, PageQuery
from api.commerce.reviews import schemas as s
from api.commerce.reviews.services import ReviewService


class ReviewsController(Controller):
    path = "/"
    tags = ["reviews"]
    guards = [roles(Role.CUSTOMER)]

    @post("/orders/{order_id:uuid}/review", summary="Review a delivered order (once, 1-5)")
    async def create(self, order_id: UUID, data: s.ReviewCreate, identity: Identity,
                     reviews: ReviewService) -> s.Review:
        return await reviews.create(identity.user_id, order_id, data)

    @get("/reviews", summary="The customer's reviews")
    async def mine(self, identity: Identity, reviews: ReviewService,
                   paging: PageQuery) -> Page[s.Review]:
        return await reviews.of_customer(identity.user_id, paging)
