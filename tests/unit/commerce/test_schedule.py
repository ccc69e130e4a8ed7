"""A delivery slot becomes a kitchen start and a ready time (slot - ride - prep), or a
refusal that says why: past, too far ahead, too soon to meet, kitchen closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.commerce.chefs.hours import DayHours, OperatingHours
from api.commerce.orders.schedule import Slot, SlotRefused, plan_slot

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
EVENINGS: OperatingHours = {d: DayHours(open="17:00", close="22:00") for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
TO_DOOR = timedelta(minutes=25)
WEEK = timedelta(days=7)


def plan(slot: datetime, hours: OperatingHours = EVENINGS, tz: str = "UTC",
         prep_min: int = 30) -> Slot | SlotRefused:
    return plan_slot(slot=slot, now=NOW, prep_min=prep_min, to_door=TO_DOOR, hours=hours,
                     timezone=tz, max_ahead=WEEK)


def test_the_kitchen_starts_so_the_food_arrives_at_the_slot() -> None:
    """Deliver at 19:30: ready at 19:05 (25 min to the door), start at 18:35 (30 min prep),
    though the chef is not open at the moment of ordering (09:00)."""
    slot = NOW.replace(hour=19, minute=30)
    assert plan(slot) == Slot(start_cooking=NOW.replace(hour=18, minute=35),
                              ready=NOW.replace(hour=19, minute=5), deliver=slot)


def test_refusals_say_why() -> None:
    """Past, beyond the week, sooner than the kitchen can make it (with the earliest slot),
    and cooking outside the hours (before opening, or the last minute after closing)."""
    cases = [
        (NOW - timedelta(minutes=1), "schedule_in_past"),
        (NOW + WEEK + timedelta(minutes=1), "schedule_too_far"),
        (NOW + timedelta(minutes=40), "schedule_too_soon"),
        (NOW.replace(hour=17, minute=50), "chef_closed"),   # start 16:55, before 17:00
        (NOW.replace(hour=22, minute=30), "chef_closed"),   # ready 22:05, after 22:00
    ]
    for slot, code in cases:
        refused = plan(slot)
        assert isinstance(refused, SlotRefused), slot
        assert refused.code == code, slot
    soon = plan(NOW + timedelta(minutes=40))
    assert isinstance(soon, SlotRefused)
    assert soon.earliest == NOW + timedelta(minutes=55)


def test_hours_are_the_chefs_local_time() -> None:
    """17:00-22:00 in Kolkata (UTC+5:30) is 11:30-16:30 UTC: a 13:00 UTC slot is open
    there and closed for a UTC kitchen."""
    slot = NOW.replace(hour=13)
    assert isinstance(plan(slot, tz="Asia/Kolkata"), Slot)
    assert isinstance(plan(slot), SlotRefused)
