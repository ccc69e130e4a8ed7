"""Who takes part in an order's chat, and until when (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.auth import Identity, Role
from api.commerce.chat.rules import OPEN_AFTER_END, OrderParties, is_open, party_of

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ORDER = OrderParties(customer_id="cust", chef_user_id="chef", courier_id="cour", paid=True,
                     ended_at=None)


@pytest.mark.parametrize(("who", "order", "party"), [
    (Identity("cust", Role.CUSTOMER), ORDER, "customer"),
    (Identity("chef", Role.CHEF), ORDER, "chef"),
    (Identity("cour", Role.DELIVERY), ORDER, "courier"),
    (Identity("anyone", Role.ADMIN), ORDER, "staff"),
    (Identity("anyone", Role.FLEET_MANAGER), ORDER, "staff"),
    (Identity("other", Role.CUSTOMER), ORDER, None),
    (Identity("chef", Role.CUSTOMER), ORDER, None),  # the right id in the wrong role
    (Identity("chef", Role.CHEF), OrderParties(customer_id="cust", chef_user_id="chef",
                                               courier_id=None, paid=False, ended_at=None),
     None),  # an unpaid order's chef does not see it yet
    (Identity("cour", Role.DELIVERY), OrderParties(customer_id="cust", chef_user_id="chef",
                                                   courier_id=None, paid=True,
                                                   ended_at=None), None),
])
def test_parties(who: Identity, order: OrderParties, party: str | None) -> None:
    """Only the order's own customer, its paid chef, its assigned courier, and staff."""
    assert party_of(who, order) == party


def test_open_until_a_day_after_the_end() -> None:
    """Open while running; after delivery or cancellation, for exactly OPEN_AFTER_END."""
    ended = OrderParties(customer_id="c", chef_user_id="h", courier_id=None, paid=True,
                         ended_at=T0)
    assert is_open(ORDER, T0 + timedelta(days=30))
    assert is_open(ended, T0 + OPEN_AFTER_END - timedelta(seconds=1))
    assert not is_open(ended, T0 + OPEN_AFTER_END)
