"""Scheduled orders: a delivery slot becomes a kitchen start and a ready time, or a clear
refusal. Pure: the caller passes the clock, the chef's hours and the ride to the door."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from api.commerce.chefs.hours import OperatingHours, is_open, local_time


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    """When the kitchen starts, when the food is ready for the courier, when it arrives."""

    start_cooking: datetime
    ready: datetime
    deliver: datetime


class SlotRefused(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    detail: str
    earliest: datetime | None = None
    """For ``schedule_too_soon``: the earliest slot that could be met."""


def plan_slot(*, slot: datetime, now: datetime, prep_min: int, to_door: timedelta,
              hours: OperatingHours, timezone: str, max_ahead: timedelta) -> Slot | SlotRefused:
    """The plan for delivering at ``slot``: the food must be ready ``to_door`` (ride and
    hand-off) before it, and cooking starts ``prep_min`` before that. Refused when the slot
    is past, beyond ``max_ahead``, too close to be met, or when the kitchen is closed at the
    start of cooking or at the ready time (the chef need not be online now)."""
    if slot <= now:
        return SlotRefused(code="schedule_in_past", detail="scheduled_for is in the past")
    if slot > now + max_ahead:
        return SlotRefused(code="schedule_too_far",
                           detail=f"orders can be scheduled up to {max_ahead.days} days ahead")
    ready = slot - to_door
    start = ready - timedelta(minutes=prep_min)
    if start < now:
        earliest = now + timedelta(minutes=prep_min) + to_door
        return SlotRefused(code="schedule_too_soon",
                           detail="the kitchen cannot have it there by then; order now or "
                                  "pick a later slot", earliest=earliest)
    last_cooking_minute = max(start, ready - timedelta(minutes=1))
    if not (is_open(hours, local_time(start, timezone))
            and is_open(hours, local_time(last_cooking_minute, timezone))):
        return SlotRefused(code="chef_closed",
                           detail="the chef's kitchen is closed when this order would be "
                                  "cooked")
    return Slot(start_cooking=start, ready=ready, deliver=slot)
