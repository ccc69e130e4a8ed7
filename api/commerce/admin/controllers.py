"""/admin: dashboard, analytics, users, chefs (verify, edit), orders, promo codes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import Role, roles
from api.commerce.accounts.schemas import User
from api.commerce.admin import schemas as s
from api.commerce.chefs.schemas import ChefProfile, ChefProfileWrite, ChefStatus, VerifyRequest
from api.commerce.deps import (
    AdminServiceDep,
    ChefServiceDep,
    OrderServiceDep,
    PaymentServiceDep,
    ReportServiceDep,
)
from api.commerce.orders.schemas import Order
from api.commerce.orders.state import OrderStatus
from api.commerce.paging import Page, PageQueryDep
from api.commerce.payments.schemas import Payment, RefundRequest
from api.commerce.reports.schemas import AdminAnalytics, AdminDashboard

Search = Annotated[str | None, QueryParameter(max_length=100)]


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]
    guards = [roles(Role.ADMIN)]

    @get("/dashboard", summary="Orders, GMV, active chefs and couriers")
    async def dashboard(self, reports: ReportServiceDep) -> AdminDashboard:
        return await reports.admin_dashboard()

    @get("/analytics", summary="Orders by status, users by role, daily GMV")
    async def analytics(self, reports: ReportServiceDep) -> AdminAnalytics:
        return await reports.admin_analytics()

    # -- users -----------------------------------------------------------------------------
    @get("/users", summary="All users")
    async def users(self, admin: AdminServiceDep, paging: PageQueryDep,
                    role: FromQuery[Role | None] = None,
                    search: Search = None) -> Page[User]:
        return await admin.users(paging, role.value if role else None, search)

    @get("/users/{user_id:uuid}", summary="One user")
    async def user(self, user_id: FromPath[UUID], admin: AdminServiceDep) -> User:
        return await admin.user(user_id)

    @put("/users/{user_id:uuid}", summary="Activate/deactivate, change role or name")
    async def update_user(self, user_id: FromPath[UUID], data: JSONBody[s.UserAdminUpdate],
                          admin: AdminServiceDep) -> User:
        return await admin.update_user(user_id, data)

    @delete("/users/{user_id:uuid}", summary="Deactivate a user (rows are kept)")
    async def delete_user(self, user_id: FromPath[UUID], admin: AdminServiceDep) -> None:
        await admin.deactivate_user(user_id)

    # -- chefs -----------------------------------------------------------------------------
    @get("/chefs", summary="All chefs, any status")
    async def chefs(self, chefs: ChefServiceDep, paging: PageQueryDep,
                    status: FromQuery[ChefStatus | None] = None,
                    search: Search = None) -> Page[ChefProfile]:
        return await chefs.browse(paging, cuisine=None, search=search, min_rating=None,
                                  sort="newest", status=status)

    @put("/chefs/{chef_id:uuid}/verify", summary="Approve, reject or suspend a chef")
    async def verify(self, chef_id: FromPath[UUID], data: JSONBody[VerifyRequest],
                     chefs: ChefServiceDep) -> ChefProfile:
        return await chefs.verify(chef_id, data.status)

    @put("/chefs/{chef_id:uuid}", summary="Edit a chef's profile")
    async def update_chef(self, chef_id: FromPath[UUID], data: JSONBody[ChefProfileWrite],
                          chefs: ChefServiceDep) -> ChefProfile:
        return await chefs.update_by_admin(chef_id, data)

    # -- orders ----------------------------------------------------------------------------
    @get("/orders", summary="All orders")
    async def orders(self, orders: OrderServiceDep, paging: PageQueryDep,
                     status: FromQuery[OrderStatus | None] = None) -> Page[Order]:
        return await orders.all(paging, status)

    @get("/orders/{order_id:uuid}", summary="One order")
    async def order(self, order_id: FromPath[UUID], orders: OrderServiceDep) -> Order:
        return await orders.get_any(order_id)

    @post("/payments/{payment_id:uuid}/refund", status_code=200,
          summary="Refund a payment in full (cancels the order if still cancellable)")
    async def refund(self, payment_id: FromPath[UUID], payments: PaymentServiceDep,
                     data: JSONBody[RefundRequest | None] = None) -> Payment:
        return await payments.admin_refund(payment_id, data.reason if data else "")

    # -- promo codes (platform configuration) ----------------------------------------------
    @get("/promo-codes", summary="Promo codes")
    async def promos(self, admin: AdminServiceDep, paging: PageQueryDep) -> Page[s.PromoCode]:
        return await admin.promos(paging)

    @post("/promo-codes", summary="Create a promo code")
    async def create_promo(self, data: JSONBody[s.PromoCodeCreate],
                           admin: AdminServiceDep) -> s.PromoCode:
        return await admin.create_promo(data)

    @put("/promo-codes/{promo_id:uuid}", summary="Update a promo code")
    async def update_promo(self, promo_id: FromPath[UUID], data: JSONBody[s.PromoCodeUpdate],
                           admin: AdminServiceDep) -> s.PromoCode:
        return await admin.update_promo(promo_id, data)

    @delete("/promo-codes/{promo_id:uuid}", summary="Deactivate a promo code")
    async def delete_promo(self, promo_id: FromPath[UUID], admin: AdminServiceDep) -> None:
        await admin.delete_promo(promo_id)
