"""Order pricing in integer cents: pure functions, rounding half up, no floats in money.

    delivery_fee = chef's fee + 50 per full km of straight-line distance beyond 3 km
    service_fee  = 5 % of subtotal        tax = 8 % of subtotal      (each rounded half up)
    total        = subtotal + delivery + service + tax - discount + tip
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

SERVICE_FEE_PERCENT = 5
TAX_PERCENT = 8
FREE_DISTANCE_KM = 3
SURCHARGE_PER_KM_CENTS = 50


class Price(msgspec.Struct, frozen=True, kw_only=True):
    subtotal_cents: int
    delivery_fee_cents: int
    service_fee_cents: int
    tax_cents: int
    discount_cents: int
    tip_cents: int
    total_cents: int


def percent_half_up(amount_cents: int, percent: int) -> int:
    """``amount * percent / 100`` rounded half up, in integers (amount, percent >= 0)."""
    return (amount_cents * percent + 50) // 100


def delivery_fee_cents(base_fee_cents: int, distance_m: float) -> int:
    """The chef's fee plus 50 cents per *full* km beyond the first 3 km."""
    full_km_beyond = max(0, int(distance_m // 1000) - FREE_DISTANCE_KM)
    return base_fee_cents + SURCHARGE_PER_KM_CENTS * full_km_beyond


def price_order(*, subtotal_cents: int, base_delivery_fee_cents: int, distance_m: float,
                discount_cents: int = 0, tip_cents: int = 0) -> Price:
    delivery = delivery_fee_cents(base_delivery_fee_cents, distance_m)
    service = percent_half_up(subtotal_cents, SERVICE_FEE_PERCENT)
    tax = percent_half_up(subtotal_cents, TAX_PERCENT)
    return Price(
        subtotal_cents=subtotal_cents, delivery_fee_cents=delivery, service_fee_cents=service,
        tax_cents=tax, discount_cents=discount_cents, tip_cents=tip_cents,
        total_cents=subtotal_cents + delivery + service + tax - discount_cents + tip_cents,
    )


# -- promo codes -------------------------------------------------------------------------


class PromoRule(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    discount_type: Literal["percent", "fixed"]
    discount_value: int
    """Percent points (1-100) or cents."""
    min_order_cents: int = 0
    max_discount_cents: int | None = None
    max_uses: int | None = None
    uses: int = 0
    expires_at: datetime | None = None
    is_active: bool = True


class PromoRejected(msgspec.Struct, frozen=True):
    reason: str


def promo_discount(rule: PromoRule, *, subtotal_cents: int, now: datetime,
                   used_by_customer: bool) -> int | PromoRejected:
    """The discount in cents, or why the code does not apply. Never more than the subtotal."""
    if not rule.is_active:
        return PromoRejected("promo code is not active")
    if rule.expires_at is not None and now >= rule.expires_at:
        return PromoRejected("promo code has expired")
    if rule.max_uses is not None and rule.uses >= rule.max_uses:
        return PromoRejected("promo code has been used up")
    if used_by_customer:
        return PromoRejected("promo code already used by this customer")
    if subtotal_cents < rule.min_order_cents:
        return PromoRejected(f"promo code needs a subtotal of at least {rule.min_order_cents}"
                             " cents")
    if rule.discount_type == "percent":
        discount = percent_half_up(subtotal_cents, min(100, rule.discount_value))
    else:
        discount = rule.discount_value
    if rule.max_discount_cents is not None:
        discount = min(discount, rule.max_discount_cents)
    return max(0, min(discount, subtotal_cents))
