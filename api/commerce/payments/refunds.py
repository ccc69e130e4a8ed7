"""Refunding an order's successful payment (used by cancellations), inside a transaction."""

from __future__ import annotations

import uuid

import asyncpg

from api.commerce.payments.provider import PaymentProvider
from api.commerce.payouts import postings


async def refund_order(conn: asyncpg.Connection, provider: PaymentProvider,
                       order_id: uuid.UUID, reason: str) -> bool:
    """Refund the order's succeeded payment in full; True when a refund was made.

    Idempotent: a payment already refunded is not refunded again. The sandbox answers at
    once; a networked provider would take the refund's idempotency key (the payment id) so
    a retried transaction never refunds twice.
    """
    pay = await conn.fetchrow(
        """SELECT id, provider_ref, amount_cents FROM payments
           WHERE order_id = $1 AND status = 'succeeded' FOR UPDATE""", order_id)
    if pay is None:
        return False
    result = await provider.refund(pay["provider_ref"], pay["amount_cents"],
                                   idempotency_key=f"refund-{pay['id']}")
    await conn.execute(
        "INSERT INTO refunds (payment_id, amount_cents, status, provider_ref, reason) "
        "VALUES ($1, $2, $3, $4, $5)",
        pay["id"], pay["amount_cents"], result.status, result.provider_ref, reason)
    if result.status != "succeeded":
        return False
    await conn.execute(
        "UPDATE payments SET status = 'refunded', refunded_cents = amount_cents, "
        "updated_at = now() WHERE id = $1", pay["id"])
    await conn.execute(
        "UPDATE orders SET payment_status = 'refunded', updated_at = now() WHERE id = $1",
        order_id)
    await postings.order_refunded(conn, order_id)  # the ledger reverses the order's entries
    return True
