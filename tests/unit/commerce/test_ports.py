"""The sandbox card processor behaves like a test mode; argon2 hashes verify and differ."""

from __future__ import annotations

import pytest

from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.payments.provider import SandboxProvider


@pytest.mark.parametrize(("method", "first", "second"), [
    ("pm_card_visa", "succeeded", None),
    ("pm_card_chargeDeclined", "failed", None),
    ("pm_card_authenticationRequired", "requires_action", "succeeded"),
    ("pm_card_madeUp", "failed", None),
])
async def test_sandbox_test_mode(method: str, first: str, second: str | None) -> None:
    """visa succeeds, chargeDeclined fails, authenticationRequired needs a second confirm,
    unknown methods fail; intents start waiting for a method and carry a client secret."""
    sandbox = SandboxProvider()
    intent = await sandbox.create_intent(1234, "usd", idempotency_key="k")
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(intent.provider_ref)
    result = await sandbox.confirm(intent.provider_ref, intent.status, method)
    assert result.status == first
    if second is not None:
        again = await sandbox.confirm(intent.provider_ref, result.status, method)
        assert again.status == second
    refund = await sandbox.refund(intent.provider_ref, 1234, idempotency_key="r")
    assert refund.status == "succeeded"


async def test_passwords_hash_and_verify() -> None:
    """A hash verifies its password only; two hashes of one password differ (salted); an
    unknown account (None) never verifies."""
    pw = Passwords(Argon2Params(time_cost=1, memory_kib=8192, parallelism=1))
    h1, h2 = await pw.hash("correct horse"), await pw.hash("correct horse")
    assert h1 != h2
    assert h1.startswith("$argon2id$")
    assert await pw.verify(h1, "correct horse")
    assert not await pw.verify(h1, "wrong horse")
    assert not await pw.verify(None, "correct horse")
    assert not await pw.verify("!social:abc", "anything")
