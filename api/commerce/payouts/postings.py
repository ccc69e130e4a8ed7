"""Writing the ledger inside the caller's transaction (the order change that causes it).

Each posting is one ``ledger_transactions`` row, unique per (kind, ref): applying the
same order event twice writes it once. A deferred trigger in PostgreSQL refuses any
transaction whose entries do not sum to zero.
"""

from __future__ import annotations

import uuid

import asyncpg

from api.commerce.payouts import ledger


async def post(conn: asyncpg.Connection, kind: str, ref: str, posting: ledger.Posting, *,
               order_id: uuid.UUID | None = None,
               payout_id: uuid.UUID | None = None) -> bool:
    """Write ``posting`` once; False when (kind, ref) was already written."""
    txn = await conn.fetchval(
        """INSERT INTO ledger_transactions (kind, ref, order_id, payout_id)
           VALUES ($1, $2, $3, $4) ON CONFLICT (kind, ref) DO NOTHING RETURNING id""",
        kind, ref, order_id, payout_id)
    if txn is None:
        return False
    await conn.executemany(
        "INSERT INTO ledger_entries (transaction_id, account, amount_cents) VALUES ($1, $2, $3)",
        [(txn, account, amount) for account, amount in posting])
    return True


def _money(order: asyncpg.Record) -> ledger.OrderMoney:
    return ledger.OrderMoney(**{f: order[f] for f in ledger.OrderMoney.__struct_fields__})


async def order_paid(conn: asyncpg.Connection, order: asyncpg.Record) -> None:
    await post(conn, "order_paid", str(order["id"]), ledger.paid_posting(_money(order)),
               order_id=order["id"])


async def order_delivered(conn: asyncpg.Connection, order: asyncpg.Record, *,
                          commission_percent: int, courier_fee_share_percent: int) -> None:
    chef_user = await conn.fetchval("SELECT user_id::text FROM chef_profiles WHERE id = $1",
                                    order["chef_id"])
    posting = ledger.delivered_posting(
        _money(order), chef_user_id=chef_user, courier_id=order["delivery_id"],
        commission_percent=commission_percent,
        courier_fee_share_percent=courier_fee_share_percent)
    await post(conn, "order_delivered", str(order["id"]), posting, order_id=order["id"])


async def order_refunded(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    """Reverse everything the order has posted (paid, and delivered if it was)."""
    rows = await conn.fetch(
        """SELECT e.account, e.amount_cents FROM ledger_entries e
           JOIN ledger_transactions t ON t.id = e.transaction_id
           WHERE t.order_id = $1 AND t.kind <> 'order_refunded'""", order_id)
    posting = ledger.reversal([(r["account"], r["amount_cents"]) for r in rows])
    await post(conn, "order_refunded", str(order_id), posting, order_id=order_id)
