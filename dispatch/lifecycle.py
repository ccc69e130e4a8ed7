"""Courier and order dispatch states, and when an order should enter the matching queue.

Pure: the Redis scripts in the adapter enforce these same transitions atomically; this module
is the specification they are tested against.
"""

from __future__ import annotations

from enum import StrEnum


class CourierState(StrEnum):
    OFFLINE = "offline"
    IDLE = "idle"
    OFFERED = "offered"
    TO_PICKUP = "to_pickup"
    AT_PICKUP = "at_pickup"
    DELIVERING = "delivering"


class OrderDispatchState(StrEnum):
    WAITING = "waiting"  # in its region's queue (or scheduled to enter it)
    OFFERED = "offered"  # one courier holds an open offer for it
    ASSIGNED = "assigned"  # a courier accepted; heading to the chef
    PICKED_UP = "picked_up"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


COURIER_TRANSITIONS: dict[CourierState, frozenset[CourierState]] = {
    CourierState.OFFLINE: frozenset({CourierState.IDLE}),
    CourierState.IDLE: frozenset({CourierState.OFFLINE, CourierState.OFFERED,
                                  CourierState.TO_PICKUP}),  # to_pickup: fleet force-assign
    CourierState.OFFERED: frozenset({CourierState.IDLE, CourierState.TO_PICKUP}),
    CourierState.TO_PICKUP: frozenset({CourierState.AT_PICKUP, CourierState.DELIVERING,
                                       CourierState.IDLE}),  # idle: unassigned / cancelled
    CourierState.AT_PICKUP: frozenset({CourierState.DELIVERING, CourierState.IDLE}),
    CourierState.DELIVERING: frozenset({CourierState.IDLE}),
}

# What a courier may report on an order it carries: order state -> allowed next states.
COURIER_REPORTS: dict[OrderDispatchState, frozenset[OrderDispatchState]] = {
    OrderDispatchState.ASSIGNED: frozenset({OrderDispatchState.PICKED_UP}),
    OrderDispatchState.PICKED_UP: frozenset({OrderDispatchState.DELIVERING,
                                             OrderDispatchState.DELIVERED}),
    OrderDispatchState.DELIVERING: frozenset({OrderDispatchState.DELIVERED}),
}

ACTIVE_ORDER_STATES = (
    OrderDispatchState.WAITING, OrderDispatchState.OFFERED, OrderDispatchState.ASSIGNED,
    OrderDispatchState.PICKED_UP, OrderDispatchState.DELIVERING,
)


def courier_may(current: CourierState, nxt: CourierState) -> bool:
    return nxt in COURIER_TRANSITIONS[current]


def queue_entry_ms(
    *, now_ms: int, ready_at_ms: int | None, expected_travel_s: float | None,
    lead_s: float = 60.0,
) -> int:
    """When an order should enter matching: when a courier should start heading to the chef.

    That is the ready time minus the expected ride of a nearby idle courier, minus a small
    lead; at once when supply is short (no idle courier near: ``expected_travel_s`` None) or
    the ready time is unknown or already close.
    """
    if ready_at_ms is None or expected_travel_s is None:
        return now_ms
    return max(now_ms, ready_at_ms - round((expected_travel_s + lead_s) * 1000))
