"""Payments: one row per attempt; an order reaches the chef and dispatch once paid."""

from __future__ import annotations

import uuid

from api.commerce.context import Commerce
from api.commerce.ids import user_uuid
from api.commerce.orders import lifecycle
from api.commerce.paging import Page, PageQuery
from api.commerce.payments import schemas as s
from api.commerce.payments.provider import OPEN_STATUSES
from api.commerce.payments.refunds import refund_order
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources
from streams.catalog import Names

PAYMENT_COLS = (
    "id, order_id, status, amount_cents, currency, client_secret, method, provider, "
    "failure_reason, refunded_cents, created_at, updated_at"
)


class PaymentService:
    def __init__(self, resources: Resources, commerce: Commerce) -> None:
        self.db = resources.db
        self.commerce = commerce
        self.provider = commerce.payments
        self.names = Names(resources.settings.server.namespace)

    async def intent(self, customer_id: str, order_id: uuid.UUID) -> tuple[s.Payment, bool]:
        """An open intent for the order: the existing one (idempotent) or a new attempt."""
        cid = user_uuid(customer_id)
        async with self.db.acquire() as conn, conn.transaction():
            order = await conn.fetchrow(
                "SELECT id, total_cents, status, payment_status FROM orders "
                "WHERE id = $1 AND customer_id = $2 FOR UPDATE", order_id, cid)
            if order is None:
                raise Problem(404, "order not found", code="not_found")
            if order["payment_status"] != "unpaid":
                raise Problem(409, "the order is already paid", code="already_paid")
            if order["status"] != "pending":
                raise Problem(409, f"an order that is {order['status']} cannot be paid",
                              code="not_payable")
            open_row = await conn.fetchrow(
                f"""SELECT {PAYMENT_COLS} FROM payments
                    WHERE order_id = $1 AND status = ANY($2::text[])
                    ORDER BY created_at DESC LIMIT 1""", order_id, list(OPEN_STATUSES))
            if open_row is not None:
                return one(s.Payment, open_row), False
            attempt = await conn.fetchval("SELECT count(*) FROM payments WHERE order_id = $1",
                                          order_id)
            created = await self.provider.create_intent(
                order["total_cents"], self.commerce.config.currency,
                idempotency_key=f"{order_id}:{attempt}")
            row = await conn.fetchrow(
                f"""INSERT INTO payments (order_id, customer_id, amount_cents, currency, status,
                        provider, provider_ref, client_secret)
                    VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {PAYMENT_COLS}""",
                order_id, cid, order["total_cents"], self.commerce.config.currency,
                created.status, self.provider.name, created.provider_ref, created.client_secret)
            assert row is not None
            return one(s.Payment, row), True

    async def confirm(self, customer_id: str, req: s.ConfirmRequest) -> s.Payment:
        """Charge with a payment method; confirming a finished payment returns it unchanged."""
        cid = user_uuid(customer_id)
        async with self.db.acquire() as conn, conn.transaction():
            pay = await conn.fetchrow(
                "SELECT * FROM payments WHERE id = $1 AND customer_id = $2 FOR UPDATE",
                req.payment_id, cid)
            if pay is None:
                raise Problem(404, "payment not found", code="not_found")
            if pay["status"] not in OPEN_STATUSES:
                row = await conn.fetchrow(f"SELECT {PAYMENT_COLS} FROM payments WHERE id = $1",
                                          pay["id"])
                assert row is not None
                return one(s.Payment, row)
            order = await lifecycle.lock_order(conn, pay["order_id"])
            assert order is not None
            if order["status"] != "pending" or order["payment_status"] != "unpaid":
                raise Problem(409, "the order can no longer be paid", code="not_payable")
            result = await self.provider.confirm(pay["provider_ref"], pay["status"],
                                                 req.payment_method)
            row = await conn.fetchrow(
                f"""UPDATE payments SET status = $2, method = $3, failure_reason = $4,
                        updated_at = now()
                    WHERE id = $1 RETURNING {PAYMENT_COLS}""",
                pay["id"], result.status, req.payment_method, result.failure_reason)
            assert row is not None
            if result.status == "succeeded":
                await conn.execute("UPDATE orders SET payment_method = $2 WHERE id = $1",
                                   order["id"], req.payment_method)
                await lifecycle.on_paid(conn, self.commerce, self.names, order, pay["id"])
        self.commerce.committed()
        return one(s.Payment, row)

    async def admin_refund(self, payment_id: uuid.UUID, reason: str) -> s.Payment:
        """Refund a succeeded payment in full. An order still cancellable is cancelled (and
        refunded by the cancellation); a delivered one is refunded as is; food in flight
        (ready, picked up, delivering) is 409."""
        async with self.db.acquire() as conn, conn.transaction():
            pay = await conn.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE",
                                      payment_id)
            if pay is None:
                raise Problem(404, "payment not found", code="not_found")
            if pay["status"] != "succeeded":
                raise Problem(409, f"a payment that is {pay['status']} cannot be refunded",
                              code="not_refundable")
            order = await lifecycle.lock_order(conn, pay["order_id"])
            assert order is not None
            reason = reason or "refunded by an admin"
            if order["status"] in ("pending", "accepted", "preparing"):
                await lifecycle.apply_transition(conn, self.commerce, self.names, order,
                                                 "cancelled", reason=reason)
            elif order["status"] in ("delivered", "cancelled"):
                await refund_order(conn, self.provider, order["id"], reason)
            else:
                raise Problem(409, f"the order is {order['status']}: cancel or deliver it "
                              "before refunding", code="not_refundable")
            row = await conn.fetchrow(f"SELECT {PAYMENT_COLS} FROM payments WHERE id = $1",
                                      payment_id)
        self.commerce.committed()
        assert row is not None
        return one(s.Payment, row)

    async def get(self, customer_id: str, payment_id: uuid.UUID) -> s.Payment:
        row = await self.db.fetchrow(
            f"SELECT {PAYMENT_COLS} FROM payments WHERE id = $1 AND customer_id = $2",
            payment_id, user_uuid(customer_id))
        if row is None:
            raise Problem(404, "payment not found", code="not_found")
        return one(s.Payment, row)

    async def of_order(self, customer_id: str, order_id: uuid.UUID,
                       q: PageQuery) -> Page[s.Payment]:
        rows = await self.db.fetch(
            f"""SELECT {PAYMENT_COLS}, count(*) OVER () AS total FROM payments
                WHERE order_id = $1 AND customer_id = $2
                ORDER BY created_at DESC LIMIT $3 OFFSET $4""",
            order_id, user_uuid(customer_id), q.limit, q.offset)
        return page_of(s.Payment, rows, q)
