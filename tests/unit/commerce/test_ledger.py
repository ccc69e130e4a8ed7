"""The ledger's rules (pure): every posting balances, the split follows pricing, a refund
is the exact reversal, payout weeks are ISO weeks ending Monday 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.commerce.orders.pricing import price_order
from api.commerce.payouts import ledger


def money(subtotal: int, fee: int, dist_m: float, discount: int, tip: int) -> ledger.OrderMoney:
    return price_order(subtotal_cents=subtotal, base_delivery_fee_cents=fee, distance_m=dist_m,
                       discount_cents=discount, tip_cents=tip)


def test_delivered_split_by_hand() -> None:
    """2,000 of dishes, 299 fee, 5 km (+100), 200 off, 300 tip, 15 % commission: the chef
    earns 1,700, the courier 399 + 300, the platform 300 commission and 100 + 0 fees."""
    m = money(2000, 299, 5_200, 200, 300)
    posting = dict(ledger.delivered_posting(m, chef_user_id="c", courier_id="d",
                                            commission_percent=15,
                                            courier_fee_share_percent=100))
    assert posting == {"in_flight": -m.total_cents, "chef:c": 1700, "courier:d": 699,
                       "platform:commission": 300, "platform:fees": 100, "tax": 160,
                       "platform:promotions": -200}


@given(st.integers(1, 10**7), st.integers(0, 10**5), st.floats(0, 60_000),
       st.integers(0, 10**5), st.integers(0, 10**5), st.integers(0, 100), st.integers(0, 100),
       st.booleans())
def test_postings_balance(subtotal: int, fee: int, dist: float, discount: int, tip: int,
                          commission: int, share: int, courier: bool) -> None:
    """Paid, delivered, refunded: each sums to zero, and paid + delivered + refund nets
    every account to zero."""
    m = money(subtotal, fee, dist, min(discount, subtotal), tip)
    paid = ledger.paid_posting(m)
    delivered = ledger.delivered_posting(m, chef_user_id="c", courier_id="d" if courier else None,
                                         commission_percent=commission,
                                         courier_fee_share_percent=share)
    refund = ledger.reversal(paid + delivered)
    for posting in (paid, delivered, refund):
        assert sum(a for _, a in posting) == 0
        assert all(a != 0 for _, a in posting)
    assert ledger.reversal(paid + delivered + refund) == []


def test_weeks() -> None:
    """An ISO week's Monday and the following Monday at midnight UTC; anything else raises."""
    assert ledger.week_bounds("2026-W49") == (date(2026, 11, 30),
                                             datetime(2026, 12, 7, tzinfo=UTC))
    for bad in ("2026-49", "2026-W54", "26-W01", "2026-W1"):
        with pytest.raises(ValueError, match="week"):
            ledger.week_bounds(bad)
