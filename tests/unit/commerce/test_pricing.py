"""Pricing is integer cents with half-up rounding; the total always adds up (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.commerce.orders.pricing import (
    PromoRejected,
    PromoRule,
    delivery_fee_cents,
    percent_half_up,
    price_order,
    promo_discount,
)
from geo.distance import haversine_m

cents = st.integers(min_value=0, max_value=10_000_000)
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _half_up(amount: int, percent: int) -> int:
    return int((Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(cents, st.integers(min_value=0, max_value=100))
def test_percent_rounds_half_up_like_decimal(amount: int, percent: int) -> None:
    """Integer percent equals Decimal ROUND_HALF_UP for every amount and percent."""
    assert percent_half_up(amount, percent) == _half_up(amount, percent)


def test_percent_half_up_examples() -> None:
    """Hand-checked: 5% of 10 = 0.5 → 1; 5% of 9 = 0.45 → 0; 8% of 1250 = 100."""
    assert percent_half_up(10, 5) == 1
    assert percent_half_up(9, 5) == 0
    assert percent_half_up(1250, 8) == 100


@given(cents, st.floats(min_value=0, max_value=100_000, allow_nan=False))
def test_delivery_fee_adds_50_per_full_km_beyond_3(base: int, distance_m: float) -> None:
    """Fee = base + 50 × max(0, floor(km) − 3): nothing within 3 km, +50 per whole km after."""
    fee = delivery_fee_cents(base, distance_m)
    assert fee == base + 50 * max(0, int(distance_m // 1000) - 3)
    assert fee >= base


def test_delivery_fee_examples() -> None:
    """2.9 km and 3.99 km cost the base fee; 4.0 km adds 50; 10.5 km adds 350."""
    assert delivery_fee_cents(299, 2900) == 299
    assert delivery_fee_cents(299, 3990) == 299
    assert delivery_fee_cents(299, 4000) == 349
    assert delivery_fee_cents(299, 10_500) == 649


@given(cents, cents, st.floats(min_value=0, max_value=50_000, allow_nan=False), cents)
def test_total_is_the_sum_of_its_parts(subtotal: int, base: int, dist: float, tip: int) -> None:
    """total = subtotal + delivery + service(5%) + tax(8%) − discount + tip, all integers."""
    discount = subtotal // 3
    p = price_order(subtotal_cents=subtotal, base_delivery_fee_cents=base, distance_m=dist,
                    discount_cents=discount, tip_cents=tip)
    assert p.service_fee_cents == _half_up(subtotal, 5)
    assert p.tax_cents == _half_up(subtotal, 8)
    assert p.total_cents == (p.subtotal_cents + p.delivery_fee_cents + p.service_fee_cents
                             + p.tax_cents - p.discount_cents + p.tip_cents)
    assert all(isinstance(v, int) for v in (p.total_cents, p.service_fee_cents, p.tax_cents))


def test_haversine_one_degree_of_latitude() -> None:
    """One degree of latitude is ~111.2 km."""
    assert abs(haversine_m(0, 0, 1, 0) - 111_195) < 50


rules = st.builds(
    PromoRule, code=st.just("X"), discount_type=st.sampled_from(["percent", "fixed"]),
    discount_value=st.integers(min_value=1, max_value=5000),
    min_order_cents=st.integers(min_value=0, max_value=5000),
    max_discount_cents=st.none() | st.integers(min_value=1, max_value=5000),
    max_uses=st.none() | st.integers(min_value=1, max_value=5),
    uses=st.integers(min_value=0, max_value=6),
    expires_at=st.none() | st.sampled_from([NOW - timedelta(seconds=1),
                                            NOW + timedelta(days=1)]),
    is_active=st.booleans(),
)


@given(rules, cents, st.booleans())
def test_promo_discount_is_bounded_and_rules_hold(rule: PromoRule, subtotal: int,
                                                  used: bool) -> None:
    """A discount never exceeds the subtotal or its cap; an inactive, expired, used-up,
    already-redeemed or below-minimum code never applies."""
    result = promo_discount(rule, subtotal_cents=subtotal, now=NOW, used_by_customer=used)
    blocked = (not rule.is_active or (rule.expires_at is not None and rule.expires_at <= NOW)
               or (rule.max_uses is not None and rule.uses >= rule.max_uses) or used
               or subtotal < rule.min_order_cents)
    if blocked:
        assert isinstance(result, PromoRejected)
        return
    assert isinstance(result, int)
    assert 0 <= result <= subtotal
    if rule.max_discount_cents is not None:
        assert result <= rule.max_discount_cents
    if rule.discount_type == "percent":
        assert result == min(_half_up(subtotal, min(100, rule.discount_value)),
                             rule.max_discount_cents or 10**12, subtotal)


def test_promo_examples() -> None:
    """10% of 2550 = 255; a 500-cent fixed code on a 300-cent subtotal gives 300."""
    pct = PromoRule(code="TEN", discount_type="percent", discount_value=10)
    assert promo_discount(pct, subtotal_cents=2550, now=NOW, used_by_customer=False) == 255
    fixed = PromoRule(code="FIVE", discount_type="fixed", discount_value=500)
    assert promo_discount(fixed, subtotal_cents=300, now=NOW, used_by_customer=False) == 300
