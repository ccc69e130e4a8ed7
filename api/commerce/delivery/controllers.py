"""/delivery/profile and /delivery/earnings (core owns availability, locations, offers,
orders)."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.params import JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.delivery import schemas as s
from api.commerce.deps import DeliveryServiceDep, ReportServiceDep
from api.commerce.reports.schemas import DeliveryEarnings


class DeliveryController(Controller):
    path = "/delivery"
    tags = ["delivery"]
    guards = [roles(Role.DELIVERY)]

    @get("/profile", summary="The delivery partner's profile")
    async def profile(self, identity: IdentityDep,
                      delivery: DeliveryServiceDep) -> s.DeliveryProfile:
        return await delivery.profile(identity.user_id)

    @put("/profile", summary="Update vehicle and licence")
    async def update(self, data: JSONBody[s.DeliveryProfileUpdate], identity: IdentityDep,
                     delivery: DeliveryServiceDep) -> s.DeliveryProfile:
        return await delivery.update(identity.user_id, data)

    @get("/earnings", summary="Delivery fees and tips of delivered orders")
    async def earnings(self, identity: IdentityDep, reports: ReportServiceDep) -> DeliveryEarnings:
        return await reports.delivery_earnings(identity.user_id)
