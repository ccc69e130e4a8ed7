"""The order state machine (seed §4.3 ``isValidTransition``): pure data and functions."""

from __future__ import annotations

from typing import Literal, get_args

OrderStatus = Literal[
    "pending", "accepted", "preparing", "ready", "picked_up", "delivering", "delivered",
    "cancelled", "refunded",
]
STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    "pending": frozenset({"accepted", "cancelled"}),
    "accepted": frozenset({"preparing", "cancelled"}),
    "preparing": frozenset({"ready", "cancelled"}),
    "ready": frozenset({"picked_up"}),
    "picked_up": frozenset({"delivering"}),
    "delivering": frozenset({"delivered"}),
}

TIMESTAMP_OF: dict[OrderStatus, str] = {
    "accepted": "accepted_at",
    "preparing": "preparing_at",
    "ready": "prepared_at",
    "picked_up": "picked_up_at",
    "delivering": "delivering_at",
    "delivered": "delivered_at",
    "cancelled": "cancelled_at",
}
"""The column stamped when an order enters a status."""

CHEF_TARGETS: frozenset[OrderStatus] = frozenset({"accepted", "preparing", "ready", "cancelled"})
"""Statuses a chef may set through PUT /chef/orders/{id}/status."""
CUSTOMER_CANCELLABLE: frozenset[OrderStatus] = frozenset({"pending", "accepted"})
"""A customer may cancel until the chef starts preparing."""

DISPATCH_CHAIN: tuple[OrderStatus, ...] = (
    "accepted", "preparing", "ready", "picked_up", "delivering", "delivered",
)


def is_valid_transition(current: str, new: str) -> bool:
    allowed: frozenset[str] = TRANSITIONS.get(current, frozenset())  # type: ignore[call-overload]
    return new in allowed


def dispatch_path(current: str, target: str) -> list[OrderStatus]:
    """Valid steps that move ``current`` to ``target`` along accepted → delivered.

    Dispatch events may arrive late or skip one (delivered before delivering was seen, or a
    pick-up the chef did not mark ready first: the courier holding the food proves it was
    ready). Each returned step is a valid transition. Empty when already there or past it,
    or when the order is not on that chain (pending, cancelled).
    """
    if current not in DISPATCH_CHAIN or target not in DISPATCH_CHAIN:
        return []
    chain: tuple[str, ...] = DISPATCH_CHAIN
    i, j = chain.index(current), chain.index(target)
    return list(DISPATCH_CHAIN[i + 1: j + 1])
