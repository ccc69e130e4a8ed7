"""/payouts (a chef's or courier's bank account, statement, payouts) and /admin/payouts."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Response, get, post, put
from litestar.params import JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.deps import PayoutServiceDep
from api.commerce.paging import PageQueryDep
from api.commerce.payouts import schemas as s


class PayoutsController(Controller):
    """A payee's own money: every statement is keyed by the caller's id."""

    path = "/payouts"
    tags = ["payouts"]
    guards = [roles(Role.CHEF, Role.DELIVERY)]

    @put("/bank-account", summary="Register the bank account payouts go to (tokenised)")
    async def set_bank_account(self, data: JSONBody[s.BankAccountCreate],
                               identity: IdentityDep, payouts: PayoutServiceDep) -> s.BankAccount:
        return await payouts.set_bank_account(identity, data)

    @get("/bank-account", summary="The registered bank account (last 4 digits only)")
    async def bank_account(self, identity: IdentityDep,
                           payouts: PayoutServiceDep) -> s.BankAccount:
        return await payouts.bank_account(identity)

    @get("/statement", summary="Balance, earnings and ledger entries, newest first")
    async def statement(self, identity: IdentityDep, payouts: PayoutServiceDep,
                        paging: PageQueryDep) -> s.Statement:
        return await payouts.statement(identity, paging)

    @post("", summary="Pay out part of the balance now (409 above the balance)")
    async def request_payout(self, data: JSONBody[s.PayoutCreate], identity: IdentityDep,
                             payouts: PayoutServiceDep) -> s.Payout:
        return await payouts.request_payout(identity, data)


class AdminPayoutsController(Controller):
    path = "/admin/payouts"
    tags = ["payouts", "admin"]
    guards = [roles(Role.ADMIN)]

    @post("/runs", summary="Run a week's payouts (idempotent: 200 with the same run again)")
    async def run(self, data: JSONBody[s.PayoutRunCreate], identity: IdentityDep,
                  payouts: PayoutServiceDep) -> Response[s.PayoutRun]:
        run, created = await payouts.run_week(identity, data.week, datetime.now(UTC))
        return Response(run, status_code=201 if created else 200)

    @get("", summary="Every ledger account's balance and the newest payout runs")
    async def overview(self, payouts: PayoutServiceDep) -> s.LedgerOverview:
        return await payouts.overview()
