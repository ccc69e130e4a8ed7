"""When an order becomes due for matching: at acceptance from the kitchen's estimate and the
ride of a nearby courier, and again when the food turns out ready early (or late)."""

from __future__ import annotations

from dispatch.lifecycle import entry_when_food_ready_ms, queue_entry_ms

NOW = 1_900_000_000_000
MIN = 60_000


def test_an_order_enters_when_a_courier_should_set_off_for_the_estimate() -> None:
    """Entry = estimated ready - the courier's ride - the lead, and never before now."""
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=NOW + 20 * MIN, expected_travel_s=180,
                          lead_s=60) == NOW + 16 * MIN
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=NOW + 2 * MIN, expected_travel_s=300) == NOW


def test_unknown_ready_time_or_short_supply_enters_at_once() -> None:
    """No estimate, or no idle courier near (no ride to time): due now."""
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=None, expected_travel_s=120) == NOW
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=NOW + 30 * MIN, expected_travel_s=None) == NOW


def test_a_late_kitchen_estimate_already_past_enters_now() -> None:
    """An estimate in the past (the kitchen is late, or the event was slow): due now, not in
    the past, so the queue's order among due orders stays by entry."""
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=NOW - 5 * MIN, expected_travel_s=120) == NOW


def test_food_ready_early_makes_a_waiting_order_due_now() -> None:
    """The kitchen was early: an entry still in the future becomes now."""
    planned = queue_entry_ms(now_ms=NOW, ready_at_ms=NOW + 20 * MIN, expected_travel_s=144)
    assert planned > NOW + 15 * MIN
    assert entry_when_food_ready_ms(enter_ms=planned, now_ms=NOW + MIN) == NOW + MIN


def test_food_ready_never_makes_an_order_later() -> None:
    """An entry already past (the order is due, the kitchen on time or late) stays."""
    assert entry_when_food_ready_ms(enter_ms=NOW - MIN, now_ms=NOW) == NOW - MIN
    assert entry_when_food_ready_ms(enter_ms=NOW, now_ms=NOW) == NOW


def test_a_scheduled_order_waits_for_its_slot_even_when_supply_is_short() -> None:
    """Scheduled hours ahead with no idle courier near now: it enters the scheduled lead
    before its ready time, not at once; a near courier's ride still times it like any
    order; a scheduled order already close to ready enters now."""
    ready = NOW + 180 * MIN
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=ready, expected_travel_s=None,
                          scheduled_lead_s=1200) == ready - 20 * MIN
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=ready, expected_travel_s=240, lead_s=60,
                          scheduled_lead_s=1200) == ready - 5 * MIN
    assert queue_entry_ms(now_ms=NOW, ready_at_ms=NOW + 10 * MIN, expected_travel_s=None,
                          scheduled_lead_s=1200) == NOW
