"""Bank accounts, statements, payouts and weekly payout runs over the ledger.

A payout is written in two steps so a crash between them loses nothing: first, in one
transaction under the payee's lock, the payout row (pending) and its ledger posting (the
payee's balance goes down, ``payouts_in_transit`` up); then the processor is called with
the payout id as idempotency key, and a second transaction records the answer (sent or
failed: a failed payout returns the money to the payee's balance). A pending payout is
simply settled again by the next call, and the processor pays a key once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from api.auth import Identity, Role
from api.commerce.context import Commerce
from api.commerce.paging import PageQuery
from api.commerce.payouts import ledger, postings
from api.commerce.payouts import schemas as s
from api.commerce.rows import many, one
from api.parts import Worker
from api.problems import Problem
from api.resources import Resources

log = logging.getLogger("homechef.payouts")

_PAYOUT_COLS = ("id::text AS id, run_id::text AS run_id, account, amount_cents, status, "
                "last4, provider_ref, failure_reason, created_at")
_RUN_COLS = "id::text AS id, week, cutoff, status, created_at, completed_at"
_BALANCES = """
SELECT coalesce(sum(e.amount_cents) FILTER (WHERE t.kind LIKE 'order%%'
                                             AND t.created_at < $2), 0)
     + coalesce(sum(e.amount_cents) FILTER (WHERE t.kind LIKE 'payout%%'), 0) AS payable,
       coalesce(sum(e.amount_cents), 0) AS balance
FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE e.account = $1
""".replace("%%", "%")


def account_of(who: Identity) -> str:
    if who.role == Role.CHEF:
        return ledger.chef_account(who.user_id)
    return ledger.courier_account(who.user_id)


async def _lock(conn: asyncpg.Connection, account: str) -> None:
    """Serialise payouts of one account (a run and an on-demand payout never race)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", account)


class PayoutService:
    def __init__(self, resources: Resources, commerce: Commerce) -> None:
        self.db = resources.db
        self.commerce = commerce
        self.provider = commerce.payments

    # -- bank account ------------------------------------------------------------------------

    async def set_bank_account(self, who: Identity, req: s.BankAccountCreate) -> s.BankAccount:
        token = await self.provider.tokenize_bank_account(
            req.account_number, req.routing_number, req.holder_name)
        row = await self.db.fetchrow(
            """INSERT INTO bank_accounts (user_id, account, token, last4, holder_name)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (user_id) DO UPDATE SET token = EXCLUDED.token,
                 last4 = EXCLUDED.last4, holder_name = EXCLUDED.holder_name,
                 updated_at = now()
               RETURNING last4, holder_name, updated_at""",
            who.user_id, account_of(who), token.token, token.last4, req.holder_name)
        assert row is not None
        return one(s.BankAccount, row)

    async def bank_account(self, who: Identity) -> s.BankAccount:
        row = await self.db.fetchrow(
            "SELECT last4, holder_name, updated_at FROM bank_accounts WHERE user_id = $1",
            who.user_id)
        if row is None:
            raise Problem(404, "no bank account registered", code="not_found")
        return one(s.BankAccount, row)

    # -- statements --------------------------------------------------------------------------

    async def statement(self, who: Identity, q: PageQuery) -> s.Statement:
        account = account_of(who)
        async with self.db.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
            sums = await conn.fetchrow(
                """SELECT coalesce(sum(e.amount_cents), 0) AS balance,
                          coalesce(sum(e.amount_cents) FILTER (WHERE t.kind LIKE 'order%'), 0)
                            AS earned,
                          -coalesce(sum(e.amount_cents) FILTER (WHERE t.kind LIKE 'payout%'), 0)
                            AS paid_out
                   FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                   WHERE e.account = $1""", account)
            rows = await conn.fetch(
                """SELECT e.created_at AS at, t.kind, t.order_id::text AS order_id,
                          t.payout_id::text AS payout_id, e.amount_cents,
                          count(*) OVER () AS total
                   FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                   WHERE e.account = $1 ORDER BY e.id DESC LIMIT $2 OFFSET $3""",
                account, q.limit, q.offset)
            payouts = await conn.fetch(
                f"SELECT {_PAYOUT_COLS} FROM payouts WHERE account = $1 "
                "ORDER BY created_at DESC, id LIMIT 20", account)
        assert sums is not None
        return s.Statement(
            account=account, balance_cents=int(sums["balance"]),
            earned_cents=int(sums["earned"]), paid_out_cents=int(sums["paid_out"]),
            entries=many(s.StatementEntry, rows),
            total=int(rows[0]["total"]) if rows else 0, page=q.page, limit=q.limit,
            payouts=many(s.Payout, payouts))

    # -- payouts -----------------------------------------------------------------------------

    async def _create(self, conn: asyncpg.Connection, account: str, user_id: str,
                      amount_cents: int, bank: asyncpg.Record,
                      run_id: uuid.UUID | None) -> asyncpg.Record:
        row = await conn.fetchrow(
            """INSERT INTO payouts (run_id, account, user_id, amount_cents, bank_token, last4)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
            run_id, account, user_id, amount_cents, bank["token"], bank["last4"])
        assert row is not None
        await postings.post(conn, "payout", str(row["id"]),
                            ledger.payout_posting(account, amount_cents), payout_id=row["id"])
        return row

    async def _settle(self, payout: asyncpg.Record) -> asyncpg.Record:
        """Send a pending payout through the processor and record its answer (once)."""
        result = await self.provider.payout(payout["bank_token"], payout["amount_cents"],
                                            self.commerce.config.payout_currency,
                                            idempotency_key=f"payout-{payout['id']}")
        sent = result.status == "paid"
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE payouts SET status = $2, provider_ref = $3, failure_reason = $4,
                      updated_at = now() WHERE id = $1 AND status = 'pending'
                    RETURNING {_PAYOUT_COLS}""",
                payout["id"], result.status, result.provider_ref, result.failure_reason)
            if row is None:  # another process settled it first
                row = await conn.fetchrow(f"SELECT {_PAYOUT_COLS} FROM payouts WHERE id = $1",
                                          payout["id"])
            else:
                await postings.post(
                    conn, "payout_sent" if sent else "payout_failed", str(payout["id"]),
                    ledger.payout_settled_posting(payout["account"], payout["amount_cents"],
                                                  sent=sent), payout_id=payout["id"])
        assert row is not None
        return row

    async def request_payout(self, who: Identity, req: s.PayoutCreate) -> s.Payout:
        """Pay out part of the balance now; more than the balance is refused (409)."""
        account = account_of(who)
        async with self.db.acquire() as conn, conn.transaction():
            await _lock(conn, account)
            bank = await conn.fetchrow("SELECT * FROM bank_accounts WHERE user_id = $1",
                                       who.user_id)
            if bank is None:
                raise Problem(409, "register a bank account before asking for a payout",
                              code="no_bank_account")
            balance = int(await conn.fetchval(
                "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries WHERE account = $1",
                account))
            if req.amount_cents > balance:
                raise Problem(409, f"a payout of {req.amount_cents} cents is more than the "
                              f"balance of {balance} cents", code="insufficient_balance",
                              extra={"balance_cents": balance,
                                     "requested_cents": req.amount_cents})
            payout = await self._create(conn, account, who.user_id, req.amount_cents, bank,
                                        None)
        return one(s.Payout, await self._settle(payout))

    async def settle_stale(self, older_than_s: float = 60.0) -> int:
        """Send the payouts a crash left pending (written, never sent); how many."""
        stale = await self.db.fetch(
            """SELECT * FROM payouts WHERE status = 'pending'
               AND created_at < now() - make_interval(secs => $1) ORDER BY created_at""",
            older_than_s)
        for payout in stale:
            await self._settle(payout)
        return len(stale)

    # -- weekly runs -------------------------------------------------------------------------

    async def run_week(self, who: Identity, week: str,
                       now: datetime) -> tuple[s.PayoutRun, bool]:
        """Pay every payee with a bank account what it earned before the week's cut-off
        (less what was already paid out). One run per week: running it again finishes the
        first run's pending payouts and pays nothing twice. True when the run is new."""
        try:
            monday, cutoff = ledger.week_bounds(week)
        except ValueError as exc:
            raise Problem(422, str(exc), code="bad_week") from None
        if datetime.combine(monday, datetime.min.time(), tzinfo=UTC) > now:
            raise Problem(422, f"week {week} has not started", code="week_not_started")
        cutoff = min(cutoff, now)
        async with self.db.acquire() as conn, conn.transaction():
            run_id = await conn.fetchval(
                """INSERT INTO payout_runs (week, cutoff, created_by) VALUES ($1, $2, $3)
                   ON CONFLICT (week) DO NOTHING RETURNING id""", monday, cutoff, who.user_id)
            created = run_id is not None
            if created:
                for bank in await conn.fetch("SELECT * FROM bank_accounts ORDER BY account"):
                    await _lock(conn, bank["account"])
                    sums = await conn.fetchrow(_BALANCES, bank["account"], cutoff)
                    assert sums is not None
                    amount = min(int(sums["payable"]), int(sums["balance"]))
                    if amount > 0:
                        await self._create(conn, bank["account"], bank["user_id"], amount,
                                           bank, run_id)
            else:
                run_id = await conn.fetchval("SELECT id FROM payout_runs WHERE week = $1",
                                             monday)
        for payout in await self.db.fetch(
                "SELECT * FROM payouts WHERE run_id = $1 AND status = 'pending' ORDER BY id",
                run_id):
            await self._settle(payout)
        await self.db.execute(
            """UPDATE payout_runs SET status = 'completed', completed_at = now()
               WHERE id = $1 AND status = 'running'""", run_id)
        return await self._run(self.db, run_id), created

    async def _run(self, conn: asyncpg.Connection | asyncpg.Pool,
                   run_id: uuid.UUID) -> s.PayoutRun:
        run = await conn.fetchrow(f"SELECT {_RUN_COLS} FROM payout_runs WHERE id = $1", run_id)
        assert run is not None
        payouts = many(s.Payout, await conn.fetch(
            f"SELECT {_PAYOUT_COLS} FROM payouts WHERE run_id = $1 ORDER BY account", run_id))
        return s.PayoutRun(
            **dict(run), payouts=payouts,
            paid_cents=sum(p.amount_cents for p in payouts if p.status == "paid"),
            failed_cents=sum(p.amount_cents for p in payouts if p.status == "failed"))

    async def overview(self) -> s.LedgerOverview:
        """Every account's balance and the newest runs (the admin's view)."""
        async with self.db.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
            rows = await conn.fetch(
                """SELECT account, sum(amount_cents)::bigint AS balance_cents
                   FROM ledger_entries GROUP BY account ORDER BY account""")
            run_ids = await conn.fetch(
                "SELECT id FROM payout_runs ORDER BY week DESC LIMIT 10")
            runs = [await self._run(conn, r["id"]) for r in run_ids]
        accounts = many(s.AccountBalance, rows)
        return s.LedgerOverview(accounts=accounts,
                                total_cents=sum(a.balance_cents for a in accounts),
                                payout_runs=runs)


def weekly_payouts(commerce: Commerce) -> Worker:
    """Run last week's payouts once it is over (every process may try: the run is unique
    per week, so the first one runs it and the others find it done), and send payouts a
    crash left pending."""

    async def run(resources: Resources) -> None:
        service = PayoutService(resources, commerce)
        system = Identity("system", Role.ADMIN)
        while True:
            now = datetime.now(UTC)
            year, week, _ = (now - timedelta(days=7)).isocalendar()
            monday, _ = ledger.week_bounds(f"{year}-W{week:02d}")
            done = await resources.db.fetchval(
                "SELECT status = 'completed' FROM payout_runs WHERE week = $1", monday)
            if not done:
                payout_run, _ = await service.run_week(system, f"{year}-W{week:02d}", now)
                log.info("weekly payouts %s: %d paid, %d failed cents", payout_run.week,
                         payout_run.paid_cents, payout_run.failed_cents)
            if settled := await service.settle_stale():
                log.warning("sent %d payouts a crash had left pending", settled)
            await asyncio.sleep(commerce.config.payout_check_s)

    return run
