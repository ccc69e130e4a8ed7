"""/delivery/profile and /delivery/earnings (core owns availability, locations, offers,
orders)."""

from __future__ import annotations

from litestar import Controller, get, put

from api.auth import Identity, Role, roles
from api.commerce.delivery import schemas as s
from api.commerce.delivery.services import DeliveryService
from api.commerce.reports.schemas import DeliveryEarnings
from api.commerce.reports.services import ReportService


class DeliveryController(Controller):
    path = "/delivery"
    tags = ["delivery"]
    guards = [roles(Role.DELIVERY)]

    @get("/profile", summary="The delivery partner's profile")
    async def profile(self, identity: Identity, delivery: DeliveryService) -> s.DeliveryProfile:
        return await delivery.profile(identity.user_id)

    @put("/profile", summary="Update vehicle and licence")
    async def update(self, data: s.DeliveryProfileUpdate, identity: Identity,
                     delivery: DeliveryService) -> s.DeliveryProfile:
        return await delivery.update(identity.user_id, data)

    @get("/earnings", summary="Delivery fees and tips of delivered orders")
    async def earnings(self, identity: Identity, reports: ReportService) -> DeliveryEarnings:
        return await reports.delivery_earnings(identity.user_id)
