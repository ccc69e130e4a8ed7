"""The ledger's rules as pure functions: how an order's money splits, and payout weeks.

Amounts are signed integer cents and every transaction sums to zero. A party's balance is
the sum of its entries: positive means the platform owes it that much. ``cash`` is the
platform's money at the payment processor and carries the opposite sign: it goes down by
what customers pay and back up by what is refunded or paid out.

    order paid       cash -total, in_flight +total
    order delivered  in_flight -total; chef:<user> +(subtotal - commission);
                     courier:<user> +(delivery fee share + tip); platform:commission;
                     platform:fees (service fee + the rest of the delivery fee); tax;
                     platform:promotions -discount
    order refunded   the negation of every entry the order has so far
    payout           <payee> -amount, payouts_in_transit +amount
    payout sent      payouts_in_transit -amount, cash +amount
    payout failed    payouts_in_transit -amount, <payee> +amount
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from api.commerce.orders.pricing import Price, percent_half_up

CASH = "cash"
IN_FLIGHT = "in_flight"
IN_TRANSIT = "payouts_in_transit"
COMMISSION = "platform:commission"
FEES = "platform:fees"
TAX = "tax"
PROMOTIONS = "platform:promotions"
UNASSIGNED_COURIER = "courier:unassigned"
"""Where a delivered order's courier share goes when no courier was recorded on it."""


def chef_account(user_id: str) -> str:
    return f"chef:{user_id}"


def courier_account(user_id: str) -> str:
    return f"courier:{user_id}"


OrderMoney = Price
"""An order's priced amounts (orders/pricing.py), all integer cents."""


Posting = list[tuple[str, int]]


def paid_posting(money: OrderMoney) -> Posting:
    return _nonzero([(CASH, -money.total_cents), (IN_FLIGHT, money.total_cents)])


def delivered_posting(money: OrderMoney, *, chef_user_id: str, courier_id: str | None,
                      commission_percent: int, courier_fee_share_percent: int) -> Posting:
    """Who earns what of a delivered order: the chef the menu revenue less commission, the
    courier a share of the delivery fee and the whole tip, the platform the rest."""
    commission = percent_half_up(money.subtotal_cents, commission_percent)
    courier_fee = percent_half_up(money.delivery_fee_cents, courier_fee_share_percent)
    courier = courier_account(courier_id) if courier_id else UNASSIGNED_COURIER
    posting = [
        (IN_FLIGHT, -money.total_cents),
        (chef_account(chef_user_id), money.subtotal_cents - commission),
        (courier, courier_fee + money.tip_cents),
        (COMMISSION, commission),
        (FEES, money.service_fee_cents + money.delivery_fee_cents - courier_fee),
        (TAX, money.tax_cents),
        (PROMOTIONS, -money.discount_cents),
    ]
    assert sum(a for _, a in posting) == 0, "pricing's total is the sum of its parts"
    return _nonzero(posting)


def reversal(entries: Posting) -> Posting:
    """What undoes ``entries`` (a refund): each account's net, negated."""
    net: dict[str, int] = {}
    for account, amount in entries:
        net[account] = net.get(account, 0) + amount
    return _nonzero([(a, -v) for a, v in sorted(net.items())])


def payout_posting(account: str, amount_cents: int) -> Posting:
    return [(account, -amount_cents), (IN_TRANSIT, amount_cents)]


def payout_settled_posting(account: str, amount_cents: int, *, sent: bool) -> Posting:
    return [(IN_TRANSIT, -amount_cents), (CASH if sent else account, amount_cents)]


def _nonzero(posting: Posting) -> Posting:
    return [(a, v) for a, v in posting if v != 0]


def week_bounds(iso_week: str) -> tuple[date, datetime]:
    """``2026-W49`` → its Monday and the cut-off (the next Monday, 00:00 UTC).

    Raises ValueError for anything that is not an ISO week."""
    year_s, sep, week_s = iso_week.partition("-W")
    if not sep or len(year_s) != 4 or len(week_s) != 2:
        raise ValueError(f"not an ISO week like 2026-W49: {iso_week!r}")
    monday = date.fromisocalendar(int(year_s), int(week_s), 1)
    cutoff = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=UTC)
    return monday, cutoff
