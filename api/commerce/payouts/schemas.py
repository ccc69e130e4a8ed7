"""Wire shapes of bank accounts, statements, payouts and payout runs (money in cents)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec


class BankAccountCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The account is sent to the processor's vault; only its token and last 4 digits stay."""

    account_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4,17}$")]
    routing_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9}$")]
    holder_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class BankAccount(msgspec.Struct, frozen=True, kw_only=True):
    last4: str
    holder_name: str
    updated_at: datetime


class PayoutCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount_cents: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]


class Payout(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    run_id: str | None
    account: str
    amount_cents: int
    status: Literal["pending", "paid", "failed"]
    last4: str
    provider_ref: str | None
    failure_reason: str
    created_at: datetime


class StatementEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    kind: str
    """order_delivered, order_refunded, payout, payout_failed (what caused the entry)."""
    order_id: str | None
    payout_id: str | None
    amount_cents: int


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    balance_cents: int
    """What the platform owes now (a payout may take up to this)."""
    earned_cents: int
    """Earned from orders, less refunds, all time."""
    paid_out_cents: int
    """Paid out (or on its way), all time."""
    entries: list[StatementEntry]
    """Newest first, paged."""
    total: int
    page: int
    limit: int
    payouts: list[Payout]
    """The 20 newest payouts."""


class PayoutRunCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    week: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-W[0-9]{2}$")]
    """ISO week, e.g. ``2026-W49``."""


class PayoutRun(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    week: date
    """The week's Monday."""
    cutoff: datetime
    """Earnings posted before this are paid by the run (the week's end, or the run's start
    for a week not over yet)."""
    status: Literal["running", "completed"]
    created_at: datetime
    completed_at: datetime | None
    paid_cents: int
    failed_cents: int
    payouts: list[Payout]


class AccountBalance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    balance_cents: int


class LedgerOverview(msgspec.Struct, frozen=True, kw_only=True):
    accounts: list[AccountBalance]
    total_cents: int
    """Sum of every balance: always 0 (double entry)."""
    payout_runs: list[PayoutRun]
    """The 10 newest runs."""
