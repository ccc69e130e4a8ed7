"""/orders (customers) and /chef/orders (chefs): thin handlers over OrderService."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import OrderServiceDep
from api.commerce.orders import schemas as s
from api.commerce.orders.state import OrderStatus
from api.commerce.paging import Page, PageQueryDep

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)]


class OrdersController(Controller):
    path = "/orders"
    tags = ["orders"]
    guards = [roles(Role.CUSTOMER)]

    @post("", summary="Create an order (Idempotency-Key honoured: a retry returns the same one)")
    async def create(self, data: JSONBody[s.OrderCreate], identity: IdentityDep,
                     orders: OrderServiceDep,
                     idempotency_key: IdempotencyKey = None) -> Response[s.Order]:
        order, created = await orders.create(identity.user_id, data, idempotency_key)
        return Response(order, status_code=201 if created else 200,
                        headers={} if created else {"Idempotent-Replayed": "true"})

    @get("", summary="The customer's orders")
    async def list_orders(self, identity: IdentityDep, orders: OrderServiceDep,
                          paging: PageQueryDep,
                          status: FromQuery[OrderStatus | None] = None) -> Page[s.Order]:
        return await orders.of_customer(identity.user_id, paging, status)

    @get("/{order_id:uuid}", summary="One of the customer's orders")
    async def get_order(self, order_id: FromPath[UUID], identity: IdentityDep,
                        orders: OrderServiceDep) -> s.Order:
        return await orders.get_for_customer(identity.user_id, order_id)

    @put("/{order_id:uuid}/cancel", summary="Cancel (refunded automatically when paid)")
    async def cancel(self, order_id: FromPath[UUID], identity: IdentityDep, orders: OrderServiceDep,
                     data: JSONBody[s.CancelRequest | None] = None) -> s.Order:
        return await orders.customer_cancel(identity.user_id, order_id,
                                            data.reason if data else "")


class ChefOrdersController(Controller):
    path = "/chef/orders"
    tags = ["chef"]
    guards = [roles(Role.CHEF)]

    @get("", summary="The chef's paid orders")
    async def list_orders(self, identity: IdentityDep, orders: OrderServiceDep,
                          paging: PageQueryDep,
                          status: FromQuery[OrderStatus | None] = None) -> Page[s.Order]:
        return await orders.of_chef(identity.user_id, paging, status)

    @get("/{order_id:uuid}", summary="One of the chef's orders")
    async def get_order(self, order_id: FromPath[UUID], identity: IdentityDep,
                        orders: OrderServiceDep) -> s.Order:
        return await orders.get_for_chef(identity.user_id, order_id)

    @put("/{order_id:uuid}/status", summary="accepted → preparing → ready, or cancelled")
    async def set_status(self, order_id: FromPath[UUID], data: JSONBody[s.StatusUpdate],
                         identity: IdentityDep,
                         orders: OrderServiceDep) -> s.Order:
        return await orders.chef_set_status(identity.user_id, order_id, data)
