"""Payouts through the API: the ledger posts with the order changes that cause it, a
refund reverses what the order posted, the ledger reconciles with the orders to the cent,
a payout above the balance is refused and changes nothing, and a weekly run pays each payee
once (running it again pays nothing more)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from api.commerce.orders.pricing import percent_half_up
from api.commerce.payments.provider import SANDBOX_FAILING_ACCOUNT
from tests.integration.commerce.conftest import FAST, Api, deliver

V1 = "/api/v1"
BANK = {"account_number": "000123456789", "routing_number": "110000000",
        "holder_name": "Meena R"}


async def _ledger(api: Api, sql: str, *args: Any) -> list[asyncpg.Record]:
    assert api.settings.stores.database_url
    conn = await asyncpg.connect(api.settings.stores.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_ledger_reconciles_and_payouts(api: Api) -> None:
    """Four orders of one chef: two delivered (one later refunded by an admin), one
    cancelled and refunded, one in flight. Each order's ledger entries equal what pricing
    says each party earns; the statement, the refusals and two weekly runs follow."""
    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 2000, name="Biryani")
    customer = await api.register()
    courier, courier2 = await api.register("delivery"), await api.register("delivery")
    address = await api.address(customer)
    world = {"chef": chef, "customer": customer}
    orders = []
    for tip in (300, 0, 150, 0):
        order = await api.order(customer, chef, [{"item": item, "quantity": 2}], address,
                                tip_cents=tip)
        payment = await api.pay(customer, order["id"])
        orders.append((order, payment))
    (kept, _), (refunded, refunded_pay), (cancelled, _), _ = orders
    await deliver(api, world, kept["id"], courier["user"]["id"])
    await deliver(api, world, refunded["id"], courier2["user"]["id"])
    r = await api.client.post(f"{V1}/admin/payments/{refunded_pay['id']}/refund",
                              json={"reason": "cold food"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.put(f"{V1}/orders/{cancelled['id']}/cancel", json={},
                             headers=customer["headers"])
    assert r.status_code == 200, r.text

    # Reconciliation: the ledger against the orders table, order by order, to the cent.
    chef_acct, c1 = f"chef:{chef['user']['id']}", f"courier:{courier['user']['id']}"
    ids = [o["id"] for o, _ in orders]
    rows = await _ledger(api, """
        SELECT o.id::text AS id, o.status, o.payment_status, o.subtotal_cents,
               o.delivery_fee_cents, o.tip_cents, o.total_cents,
               coalesce(sum(e.amount_cents) FILTER (WHERE e.account = $2), 0) AS chef,
               coalesce(sum(e.amount_cents) FILTER (WHERE e.account LIKE 'courier:%'), 0)
                 AS courier,
               coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'in_flight'), 0)
                 AS in_flight,
               coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'cash'), 0) AS cash,
               coalesce(sum(e.amount_cents), 0) AS net
        FROM orders o LEFT JOIN ledger_transactions t ON t.order_id = o.id
        LEFT JOIN ledger_entries e ON e.transaction_id = t.id
        WHERE o.id = ANY($1::uuid[]) GROUP BY o.id""", ids, chef_acct)
    by_id = {r["id"]: r for r in rows}
    expected_chef = expected_courier = 0
    for order_id in ids:
        o = by_id[order_id]
        delivered = o["status"] == "delivered" and o["payment_status"] == "paid"
        chef_earns = o["subtotal_cents"] - percent_half_up(o["subtotal_cents"],
                                                           FAST.commission_percent)
        courier_earns = o["delivery_fee_cents"] + o["tip_cents"]  # the whole fee by default
        assert o["net"] == 0
        assert o["chef"] == (chef_earns if delivered else 0), dict(o)
        assert o["courier"] == (courier_earns if delivered else 0), dict(o)
        refunded_now = o["payment_status"] == "refunded"
        assert o["cash"] == (0 if refunded_now else -o["total_cents"]), dict(o)
        in_flight_now = not refunded_now and o["status"] != "delivered"
        assert o["in_flight"] == (o["total_cents"] if in_flight_now else 0), dict(o)
        if delivered:
            expected_chef += chef_earns
            expected_courier += courier_earns
    assert [by_id[i]["payment_status"] for i in ids] == ["paid", "refunded", "refunded", "paid"]
    unbalanced = await _ledger(api, """SELECT transaction_id FROM ledger_entries
                                       GROUP BY transaction_id HAVING sum(amount_cents) <> 0""")
    assert unbalanced == []

    # Statements: the chef's balance is what the kept order earned; the refund shows.
    r = await api.client.get(f"{V1}/payouts/statement", headers=chef["headers"])
    statement = r.json()
    assert statement["balance_cents"] == expected_chef == by_id[kept["id"]]["chef"]
    assert [e["kind"] for e in statement["entries"]] == [
        "order_refunded", "order_delivered", "order_delivered"]
    r = await api.client.get(f"{V1}/payouts/statement", headers=courier2["headers"])
    assert r.json()["balance_cents"] == 0

    # Refusals change nothing.
    r = await api.client.post(f"{V1}/payouts", json={"amount_cents": 100},
                              headers=chef["headers"])
    assert (r.status_code, r.json()["type"]) == (409, "urn:homechef:problem:no_bank_account")
    r = await api.client.put(f"{V1}/payouts/bank-account", json=BANK, headers=chef["headers"])
    assert (r.status_code, r.json()["last4"]) == (200, "6789")
    r = await api.client.put(f"{V1}/payouts/bank-account", json={**BANK, "account_number": "12"},
                             headers=chef["headers"])
    assert r.status_code == 400
    stored = await _ledger(api, "SELECT * FROM bank_accounts WHERE user_id = $1",
                           chef["user"]["id"])
    assert BANK["account_number"] not in str(dict(stored[0]))
    r = await api.client.post(f"{V1}/payouts", json={"amount_cents": expected_chef + 1},
                              headers=chef["headers"])
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"] == "urn:homechef:problem:insufficient_balance"
    assert (problem["balance_cents"], problem["requested_cents"]) == (expected_chef,
                                                                      expected_chef + 1)
    r = await api.client.get(f"{V1}/payouts/statement", headers=chef["headers"])
    assert (r.json()["balance_cents"], r.json()["payouts"]) == (expected_chef, [])

    # An on-demand payout within the balance.
    r = await api.client.post(f"{V1}/payouts", json={"amount_cents": 500},
                              headers=chef["headers"])
    assert (r.status_code, r.json()["status"]) == (201, "paid"), r.text

    # The week's run pays the rest to the chef once; the courier's account does not exist
    # at the bank, so its payout fails and the money stays on its balance.
    r = await api.client.put(f"{V1}/payouts/bank-account", headers=courier["headers"],
                             json={**BANK, "account_number": SANDBOX_FAILING_ACCOUNT})
    assert r.status_code == 200
    year, week, _ = datetime.now(UTC).isocalendar()
    body = {"week": f"{year}-W{week:02d}"}
    r = await api.client.post(f"{V1}/admin/payouts/runs", json=body, headers=admin["headers"])
    assert r.status_code == 201, r.text
    run = r.json()
    mine = {p["account"]: p for p in run["payouts"]}
    assert mine[chef_acct]["amount_cents"] == expected_chef - 500
    assert mine[chef_acct]["status"] == "paid"
    assert (mine[c1]["amount_cents"], mine[c1]["status"]) == (expected_courier, "failed")
    r = await api.client.post(f"{V1}/admin/payouts/runs", json=body, headers=admin["headers"])
    assert r.status_code == 200
    assert r.json()["id"] == run["id"]
    assert r.json()["payouts"] == run["payouts"]
    r = await api.client.get(f"{V1}/payouts/statement", headers=chef["headers"])
    assert (r.json()["balance_cents"], r.json()["paid_out_cents"]) == (0, expected_chef)
    r = await api.client.get(f"{V1}/payouts/statement", headers=courier["headers"])
    assert r.json()["balance_cents"] == expected_courier
    r = await api.client.post(f"{V1}/admin/payouts/runs", json={"week": f"{year + 1}-W01"},
                              headers=admin["headers"])
    assert (r.status_code, r.json()["type"]) == (422, "urn:homechef:problem:week_not_started")

    r = await api.client.get(f"{V1}/admin/payouts", headers=admin["headers"])
    overview = r.json()
    assert overview["total_cents"] == 0
    balances = {a["account"]: a["balance_cents"] for a in overview["accounts"]}
    assert chef_acct not in balances or balances[chef_acct] == 0
    assert balances[c1] == expected_courier


async def test_ledger_refuses_unbalanced_edited_or_repeated_postings(api: Api) -> None:
    """PostgreSQL itself keeps the ledger double-entry and append-only, and a posting
    written twice for the same (kind, ref) is written once."""
    from api.commerce.payouts import postings

    assert api.settings.stores.database_url
    conn = await asyncpg.connect(api.settings.stores.database_url)
    try:
        ref = f"test-{datetime.now(UTC).timestamp()}"
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                await postings.post(conn, "payout", ref, [("a", 5), ("b", -4)])
        async with conn.transaction():
            assert await postings.post(conn, "payout", ref, [("a", 5), ("b", -5)])
            assert not await postings.post(conn, "payout", ref, [("a", 7), ("b", -7)])
        n = await conn.fetchval(
            """SELECT count(*) FROM ledger_entries e JOIN ledger_transactions t
               ON t.id = e.transaction_id WHERE t.ref = $1""", ref)
        assert n == 2
        for sql in ("UPDATE ledger_entries SET amount_cents = 1 WHERE account = 'a'",
                    "DELETE FROM ledger_entries WHERE account = 'a'"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
    finally:
        await conn.close()


async def test_concurrent_payouts_never_overdraw(api: Api) -> None:
    """Two payouts of the whole balance at once: one is paid, the other is refused with
    insufficient_balance, and the balance ends at zero, not below."""
    import asyncio

    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 1000, name="Dal")
    customer, courier = await api.register(), await api.register("delivery")
    address = await api.address(customer)
    order = await api.order(customer, chef, [{"item": item, "quantity": 2}], address)
    await api.pay(customer, order["id"])
    await deliver(api, {"chef": chef, "customer": customer}, order["id"], courier["user"]["id"])
    r = await api.client.put(f"{V1}/payouts/bank-account", json=BANK, headers=courier["headers"])
    assert r.status_code == 200
    r = await api.client.get(f"{V1}/payouts/statement", headers=courier["headers"])
    balance = r.json()["balance_cents"]
    assert balance > 0
    answers = await asyncio.gather(*(
        api.client.post(f"{V1}/payouts", json={"amount_cents": balance},
                        headers=courier["headers"]) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [201, 409]
    r = await api.client.get(f"{V1}/payouts/statement", headers=courier["headers"])
    assert (r.json()["balance_cents"], r.json()["paid_out_cents"]) == (0, balance)


async def test_a_payout_left_pending_by_a_crash_is_sent_once(api: Api) -> None:
    """A payout written (balance debited) but never sent, as when commerce dies between the
    two steps, is sent by settle_stale with its own idempotency key, and only once."""
    from types import SimpleNamespace
    from typing import cast

    from api.commerce.context import default_commerce
    from api.commerce.payouts import ledger
    from api.commerce.payouts.services import PayoutService
    from api.resources import Resources

    courier = await api.register("delivery")
    r = await api.client.put(f"{V1}/payouts/bank-account", json=BANK, headers=courier["headers"])
    assert r.status_code == 200
    account = ledger.courier_account(courier["user"]["id"])
    assert api.settings.stores.database_url
    pool = await asyncpg.create_pool(api.settings.stores.database_url, min_size=1, max_size=2)
    try:
        service = PayoutService(cast(Resources, SimpleNamespace(db=pool)),
                                default_commerce(config=FAST))
        async with pool.acquire() as conn, conn.transaction():
            bank = await conn.fetchrow("SELECT * FROM bank_accounts WHERE user_id = $1",
                                       courier["user"]["id"])
            # Earnings to pay out, then the first step of a payout only (the "crash").
            from api.commerce.payouts import postings

            await postings.post(conn, "order_delivered", f"test-{account}",
                                [(account, 700), ("in_flight", -700)])
            await service._create(conn, account, courier["user"]["id"], 700, bank, None)
        r = await api.client.get(f"{V1}/payouts/statement", headers=courier["headers"])
        assert (r.json()["balance_cents"], r.json()["payouts"][0]["status"]) == (0, "pending")
        assert await service.settle_stale(older_than_s=0) >= 1
        assert await service.settle_stale(older_than_s=0) == 0
        r = await api.client.get(f"{V1}/payouts/statement", headers=courier["headers"])
        statement = r.json()
        assert statement["payouts"][0]["status"] == "paid"
        assert (statement["balance_cents"], statement["paid_out_cents"]) == (0, 700)
        sent = await pool.fetchval(
            """SELECT count(*) FROM ledger_transactions WHERE kind = 'payout_sent'
               AND payout_id = $1::uuid""", statement["payouts"][0]["id"])
        assert sent == 1
    finally:
        await pool.close()
