"""The payment port and a sandbox provider that behaves like a card processor's test mode.

Test payment methods (as a processor's test mode names them):
- ``pm_card_visa``: the charge succeeds;
- ``pm_card_chargeDeclined``: the card is declined (the attempt fails);
- ``pm_card_authenticationRequired``: the first confirm answers ``requires_action``
  (3-D Secure); confirming again completes the authentication and the charge succeeds.
Anything else is an invalid payment method.

Payouts to bank accounts (test account numbers as a processor's test mode names them):
- ``000123456789``: payouts succeed;
- ``000111111116``: the account does not exist, so payouts to it fail (``no_account``);
anything else of 4 to 17 digits is tokenised and paid like the first. A payout's reference
is derived from its idempotency key, so a payout sent twice is one payout.

The sandbox keeps no state of its own: the caller passes the intent's current status, so
several processes can share it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal, Protocol

import msgspec

PaymentStatus = Literal[
    "requires_payment_method", "requires_action", "succeeded", "failed", "refunded",
]
OPEN_STATUSES: frozenset[str] = frozenset({"requires_payment_method", "requires_action"})


class IntentCreated(msgspec.Struct, frozen=True, kw_only=True):
    provider_ref: str
    client_secret: str
    status: PaymentStatus


class ChargeResult(msgspec.Struct, frozen=True, kw_only=True):
    status: PaymentStatus
    failure_reason: str = ""


class RefundResult(msgspec.Struct, frozen=True, kw_only=True):
    provider_ref: str
    status: Literal["succeeded", "failed"]


class BankToken(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    last4: str


class PayoutResult(msgspec.Struct, frozen=True, kw_only=True):
    provider_ref: str
    status: Literal["paid", "failed"]
    failure_reason: str = ""


class PaymentProvider(Protocol):
    """A card processor: create an intent, confirm it with a method, refund it."""

    name: str

    async def create_intent(self, amount_cents: int, currency: str,
                            idempotency_key: str) -> IntentCreated: ...

    async def confirm(self, provider_ref: str, current: PaymentStatus,
                      payment_method: str) -> ChargeResult: ...

    async def refund(self, provider_ref: str, amount_cents: int,
                     idempotency_key: str) -> RefundResult: ...

    async def tokenize_bank_account(self, account_number: str, routing_number: str,
                                    holder_name: str) -> BankToken:
        """Hand the account to the processor's vault; only the token comes back."""
        ...

    async def payout(self, token: str, amount_cents: int, currency: str,
                     idempotency_key: str) -> PayoutResult:
        """Send money to a tokenised bank account (once per idempotency key)."""
        ...


class SandboxProvider:
    """In-process test-mode processor (no network)."""

    name = "sandbox"

    async def create_intent(self, amount_cents: int, currency: str,
                            idempotency_key: str) -> IntentCreated:
        ref = "pi_sb_" + secrets.token_hex(12)
        return IntentCreated(provider_ref=ref, client_secret=f"{ref}_secret_"
                             + secrets.token_hex(12), status="requires_payment_method")

    async def confirm(self, provider_ref: str, current: PaymentStatus,
                      payment_method: str) -> ChargeResult:
        if current == "requires_action":
            # The customer completed the authentication step (3-D Secure).
            return ChargeResult(status="succeeded")
        if payment_method == "pm_card_visa":
            return ChargeResult(status="succeeded")
        if payment_method == "pm_card_chargeDeclined":
            return ChargeResult(status="failed", failure_reason="card_declined")
        if payment_method == "pm_card_authenticationRequired":
            return ChargeResult(status="requires_action")
        return ChargeResult(status="failed", failure_reason="invalid_payment_method")

    async def refund(self, provider_ref: str, amount_cents: int,
                     idempotency_key: str) -> RefundResult:
        return RefundResult(provider_ref="re_sb_" + secrets.token_hex(12), status="succeeded")

    async def tokenize_bank_account(self, account_number: str, routing_number: str,
                                    holder_name: str) -> BankToken:
        failing = account_number == SANDBOX_FAILING_ACCOUNT
        token = "ba_sb_" + ("noacct_" if failing else "") + secrets.token_hex(12)
        return BankToken(token=token, last4=account_number[-4:])

    async def payout(self, token: str, amount_cents: int, currency: str,
                     idempotency_key: str) -> PayoutResult:
        ref = "po_sb_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if token.startswith("ba_sb_noacct_"):
            return PayoutResult(provider_ref=ref, status="failed", failure_reason="no_account")
        return PayoutResult(provider_ref=ref, status="paid")


SANDBOX_FAILING_ACCOUNT = "000111111116"
