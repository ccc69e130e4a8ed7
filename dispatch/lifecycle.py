"""Courier, order and offer dispatch states, the moves allowed between them, and when an order
should enter the matching queue.

Pure, and the one source of the dispatch state machine: the Redis scripts of
`api.core.dispatch.store` get the tables below rendered into their prelude when they are
loaded (`api.core.dispatch.lua`), so the checks they make atomically are these tables; a
test drives every script and asserts that each order move it makes is in
`ORDER_TRANSITIONS`, and each move there is made by some script.

A courier's state is not moved by itself: it is derived, after every change, from what the
courier holds (orders accepted and not delivered) and whether it has an open offer —
nothing and no offer: idle; nothing and an offer: offered; any held order in
`CARRIED_STATES`: delivering; else to_pickup. Offline and idle are the only states a courier
sets itself (`MAY_GO_OFFLINE`).
"""

from __future__ import annotations

from enum import StrEnum


class CourierState(StrEnum):
    OFFLINE = "offline"
    IDLE = "idle"
    OFFERED = "offered"  # holds an open offer and no order
    TO_PICKUP = "to_pickup"  # holds orders, none collected yet
    DELIVERING = "delivering"  # holds an order it has collected


class OrderDispatchState(StrEnum):
    WAITING = "waiting"  # in its region's queue (or scheduled to enter it)
    OFFERED = "offered"  # one courier holds an open offer for it
    ASSIGNED = "assigned"  # a courier accepted; heading to the chef
    PICKED_UP = "picked_up"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OfferState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REVOKED = "revoked"  # the fleet took the order elsewhere, or it was cancelled


_O = OrderDispatchState

ORDER_TRANSITIONS: dict[OrderDispatchState, frozenset[OrderDispatchState]] = {
    _O.WAITING: frozenset({_O.OFFERED,  # a round's offer
                           _O.ASSIGNED,  # fleet force-assign
                           _O.CANCELLED}),
    _O.OFFERED: frozenset({_O.ASSIGNED,  # accepted, or fleet force-assign elsewhere
                           _O.WAITING,  # declined, expired, or taken back by the fleet
                           _O.CANCELLED}),
    _O.ASSIGNED: frozenset({_O.PICKED_UP, _O.WAITING,  # unassigned by the fleet
                            _O.CANCELLED}),
    _O.PICKED_UP: frozenset({_O.DELIVERING, _O.DELIVERED, _O.CANCELLED}),
    _O.DELIVERING: frozenset({_O.DELIVERED, _O.CANCELLED}),
    _O.DELIVERED: frozenset(),
    _O.CANCELLED: frozenset(),
}
"""Every order move a dispatch script makes: state -> states it may move to."""

COURIER_REPORTS: dict[OrderDispatchState, frozenset[OrderDispatchState]] = {
    _O.ASSIGNED: frozenset({_O.PICKED_UP}),
    _O.PICKED_UP: frozenset({_O.DELIVERING, _O.DELIVERED}),
    _O.DELIVERING: frozenset({_O.DELIVERED}),
}
"""What a courier (or the fleet on its behalf) may report on an order it carries."""

FLEET_ASSIGNABLE = frozenset({_O.WAITING, _O.OFFERED})
"""Orders a fleet manager may force-assign (an open offer of it is revoked)."""

UNASSIGNABLE = frozenset({_O.OFFERED, _O.ASSIGNED})
"""Orders a fleet manager may take back (before pickup); they wait again."""

FINAL_ORDER_STATES = frozenset({_O.DELIVERED, _O.CANCELLED})
"""Nothing moves an order out of these; a cancellation of one changes nothing."""

CARRIED_STATES = frozenset({_O.PICKED_UP, _O.DELIVERING})
"""Held orders that make their courier `CourierState.DELIVERING`."""

MAY_GO_OFFLINE = frozenset({CourierState.IDLE, CourierState.OFFLINE})
"""Courier states from which a courier may go offline (it holds nothing, no offer)."""

ACTIVE_ORDER_STATES = (
    _O.WAITING, _O.OFFERED, _O.ASSIGNED, _O.PICKED_UP, _O.DELIVERING,
)


def queue_entry_ms(
    *, now_ms: int, ready_at_ms: int | None, expected_travel_s: float | None,
    lead_s: float = 60.0, scheduled_lead_s: float | None = None,
) -> int:
    """When an order should enter matching: when a courier should start heading to the chef.

    That is the ready time minus the expected ride of a nearby idle courier, minus a small
    lead; at once when supply is short (no idle courier near: ``expected_travel_s`` None) or
    the ready time is unknown or already close. A scheduled order (``scheduled_lead_s``
    given) never enters earlier than ``scheduled_lead_s`` before its ready time: short
    supply now says nothing about supply at the slot, hours away.
    """
    if ready_at_ms is None:
        return now_ms
    if expected_travel_s is None:
        if scheduled_lead_s is None:
            return now_ms
        return max(now_ms, ready_at_ms - round(scheduled_lead_s * 1000))
    return max(now_ms, ready_at_ms - round((expected_travel_s + lead_s) * 1000))


def entry_when_food_ready_ms(*, enter_ms: int, now_ms: int) -> int:
    """A waiting order's queue entry once the chef says the food is ready (at ``now_ms``).

    The entry computed at acceptance (`queue_entry_ms`) trusted the kitchen's estimate; food
    ready early makes the order due now (a courier should head there at once), and an entry
    already past stays (the order is due already; it never becomes later). A late kitchen
    changes no entry: its order went due on the estimate, and only the round's costs learn
    the real ready time.
    """
    return min(enter_ms, now_ms)
