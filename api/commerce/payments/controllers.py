"""/payments: intent, confirm, read (customers, their own payments only)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import PaymentServiceDep
from api.commerce.payments import schemas as s


class PaymentsController(Controller):
    path = "/payments"
    tags = ["payments"]
    guards = [roles(Role.CUSTOMER)]

    @post("/intent", summary="Create (or return the open) payment intent of an order")
    async def intent(self, data: JSONBody[s.IntentRequest], identity: IdentityDep,
                     payments: PaymentServiceDep) -> Response[s.Payment]:
        payment, created = await payments.intent(identity.user_id, data.order_id)
        return Response(payment, status_code=201 if created else 200)

    @post("/confirm", status_code=200, summary="Confirm with a payment method")
    async def confirm(self, data: JSONBody[s.ConfirmRequest], identity: IdentityDep,
                      payments: PaymentServiceDep) -> s.Payment:
        return await payments.confirm(identity.user_id, data)

    @get("/{payment_id:uuid}", summary="One of the customer's payments")
    async def get_payment(self, payment_id: FromPath[UUID], identity: IdentityDep,
                          payments: PaymentServiceDep) -> s.Payment:
        return await payments.get(identity.user_id, payment_id)
