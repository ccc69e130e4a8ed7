"""/chefs (public browse) and /chef (the chef's own dashboard)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import IdentityDep, Role, roles
from api.commerce.chefs import schemas as s
from api.commerce.deps import ChefServiceDep, MenuServiceDep, ReportServiceDep, ReviewServiceDep
from api.commerce.menus.schemas import MenuItem
from api.commerce.paging import Page, PageQueryDep
from api.commerce.reports.schemas import ChefAnalytics, ChefEarnings
from api.commerce.reviews.schemas import Review
from api.problems import Problem

PUBLIC = {"public": True}


class BrowseController(Controller):
    """Public by design (the lead's decision; seed §7.3 lists no delivery access)."""

    path = "/chefs"
    tags = ["chefs"]

    @get("", opt=PUBLIC, summary="Approved chefs, filtered and sorted (seed mock filters)")
    async def list_chefs(
        self, chefs: ChefServiceDep, paging: PageQueryDep,
        cuisine: Annotated[str | None, QueryParameter(max_length=50)] = None,
        search: Annotated[str | None, QueryParameter(max_length=100)] = None,
        rating: Annotated[float | None, QueryParameter(ge=0, le=5)] = None,
        sort: FromQuery[s.ChefSort | None] = None,
    ) -> Page[s.ChefProfile]:
        return await chefs.browse(paging, cuisine=cuisine, search=search, min_rating=rating,
                                  sort=sort)

    @get("/nearby", opt=PUBLIC,
         summary="Approved, online chefs open now whose service radius covers the point")
    async def nearby(
        self, chefs: ChefServiceDep, paging: PageQueryDep, state: State,
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lng: Annotated[float, QueryParameter(ge=-180, le=180)],
        radius_km: Annotated[float, QueryParameter(gt=0, le=50)] = 10.0,
    ) -> Page[s.ChefProfile]:
        if not (math.isfinite(lat) and math.isfinite(lng)):
            raise Problem(400, "lat and lng must be finite numbers", code="bad_coordinates")
        members = await state.chef_geo.near(lat, lng, radius_km * 1000.0)
        return await chefs.nearby(lat, lng, [(m.member_id, m.dist_m) for m in members],
                                  paging, now=datetime.now(UTC))

    @get("/{chef_id:uuid}", opt=PUBLIC, summary="One approved chef")
    async def get_chef(self, chef_id: FromPath[UUID], chefs: ChefServiceDep) -> s.ChefProfile:
        return await chefs.public(chef_id)

    @get("/{chef_id:uuid}/menu", opt=PUBLIC, summary="An approved chef's menu")
    async def menu(self, chef_id: FromPath[UUID], chefs: ChefServiceDep, menus: MenuServiceDep,
                   paging: PageQueryDep) -> Page[MenuItem]:
        await chefs.public(chef_id)
        return await menus.menu_of(chef_id, paging, include_unavailable=True)

    @get("/{chef_id:uuid}/reviews", opt=PUBLIC, summary="An approved chef's reviews")
    async def reviews(self, chef_id: FromPath[UUID], chefs: ChefServiceDep,
                      reviews: ReviewServiceDep,
                      paging: PageQueryDep) -> Page[Review]:
        await chefs.public(chef_id)
        return await reviews.of_chef(chef_id, paging)


class ChefDashboardController(Controller):
    path = "/chef"
    tags = ["chef"]
    guards = [roles(Role.CHEF)]

    @get("/profile", summary="The chef's own profile")
    async def profile(self, identity: IdentityDep, chefs: ChefServiceDep) -> s.ChefProfile:
        return await chefs.own(identity.user_id)

    @put("/profile", summary="Onboard or update the chef profile (pending until verified)")
    async def put_profile(self, data: JSONBody[s.ChefProfileWrite], identity: IdentityDep,
                          chefs: ChefServiceDep) -> s.ChefProfile:
        return await chefs.upsert(identity.user_id, data)

    @put("/availability", summary="Go online/offline, accept orders or pause")
    async def availability(self, data: JSONBody[s.AvailabilityUpdate], identity: IdentityDep,
                           chefs: ChefServiceDep) -> s.ChefProfile:
        return await chefs.set_availability(identity.user_id, data)

    @get("/earnings", summary="Earnings of delivered orders by period")
    async def earnings(self, identity: IdentityDep, reports: ReportServiceDep) -> ChefEarnings:
        return await reports.chef_earnings(identity.user_id)

    @get("/analytics", summary="The chef's order, item and rating figures (limited view)")
    async def analytics(self, identity: IdentityDep, reports: ReportServiceDep) -> ChefAnalytics:
        return await reports.chef_analytics(identity.user_id)
