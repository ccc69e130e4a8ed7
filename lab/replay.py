"""A recorded day replayed through another policy ("what would policy B have done?").

A `RecordedDay` is what happened that dispatch did not decide: each order's placement,
acceptance, the kitchen's declared and real ready times, the promise and where it went; each
courier's time online, vehicle and first position. `replay_day` turns it into the lab's
`Day`, so `simulate_day` runs it under any policy with the same KPIs as a generated day
(`homechef lab --replay FILE`). What a record does not hold is modelled as on a generated
day, from `RecordedDay.couriers_model` and the seed: think times, offer answers (each
courier's `accept_prob`), leg noise; couriers ride at the travel model's pace.

Pure: JSON in (`load_recorded`), a `Day` out.
"""

from __future__ import annotations

import msgspec

from lab.city import Day, LabCourier, LabOrder
from lab.scenario import Couriers, Scenario, Shift

__all__ = ["RecordedCourier", "RecordedDay", "RecordedOrder", "load_recorded", "record_day",
           "replay_day"]

_H_MS = 3_600_000


class RecordedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order as it happened (epoch ms UTC)."""

    order_id: str
    chef_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    placed_ms: int
    accepted_ms: int
    estimated_ready_ms: int
    """The kitchen's declared ready time (acceptance + its prep minutes)."""
    ready_ms: int
    """When the kitchen marked the food ready."""
    promised_ms: int


class RecordedCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    vehicle: str = "bike"
    start: tuple[float, float]
    """Where it was when it came online."""
    online_ms: int
    offline_ms: int
    accept_prob: float = 0.9
    """Share of offers it accepted (0.9 when not recorded)."""
    pace: float = 1.0
    """Its real ride times ÷ the travel model's (1.0 when not recorded)."""


class RecordedDay(msgspec.Struct, frozen=True, kw_only=True):
    name: str = "recorded"
    start_ms: int | None = None
    """The day's first instant (rounds run every DISPATCH_ROUND_S from it); None: the first
    placement or shift start."""
    hours: float | None = None
    """Length of the placement window; None: up to the last placement."""
    orders: list[RecordedOrder]
    couriers: list[RecordedCourier]
    drain_h: float = 2.0
    """The replay runs on this long after the last order is placed."""
    couriers_model: Couriers = msgspec.field(default_factory=Couriers)
    """Think times, leg noise and hand-over time of the replay's couriers (count, vehicles
    and shifts are the record's)."""

    def __post_init__(self) -> None:
        if not self.orders or not self.couriers:
            raise ValueError("a recorded day needs at least one order and one courier")
        for o in self.orders:
            if not o.placed_ms <= o.accepted_ms <= o.estimated_ready_ms:
                raise ValueError(f"order {o.order_id}: placed <= accepted <= estimated ready")
        for c in self.couriers:
            if c.offline_ms < c.online_ms or not 0.0 <= c.accept_prob <= 1.0:
                raise ValueError(f"courier {c.courier_id}: online <= offline, accept_prob "
                                 "in [0, 1]")


def load_recorded(raw: bytes) -> RecordedDay:
    """A recorded day from JSON (msgspec.ValidationError names a bad field)."""
    return msgspec.json.decode(raw, type=RecordedDay)


def replay_day(rec: RecordedDay, seed: int) -> Day:
    """The lab's day for `rec`: orders by placement, kitchens numbered in order of first
    appearance (their declared prep from their first order), couriers in id order."""
    orders = sorted(rec.orders, key=lambda o: (o.placed_ms, o.order_id))
    start_ms = rec.start_ms
    if start_ms is None:
        start_ms = min(orders[0].placed_ms, min(c.online_ms for c in rec.couriers))
    hours = rec.hours or max(1.0, orders[-1].placed_ms - start_ms + 1) / _H_MS
    chefs: dict[str, int] = {}
    points: list[tuple[float, float]] = []
    declared: list[int] = []
    lab_orders = []
    for o in orders:
        if o.chef_id not in chefs:
            chefs[o.chef_id] = len(points)
            points.append(o.pickup)
            declared.append(max(1, round((o.estimated_ready_ms - o.accepted_ms) / 60_000)))
        lab_orders.append(LabOrder(
            order_id=o.order_id, chef=chefs[o.chef_id], pickup=o.pickup, dropoff=o.dropoff,
            placed_ms=o.placed_ms, accepted_ms=o.accepted_ms,
            estimated_ready_ms=o.estimated_ready_ms, ready_ms=o.ready_ms,
            promised_ms=o.promised_ms))
    couriers = tuple(
        LabCourier(courier_id=c.courier_id, vehicle=c.vehicle, start=c.start,
                   shift_start_ms=c.online_ms, shift_end_ms=c.offline_ms,
                   accept_prob=c.accept_prob, pace=c.pace)
        for c in sorted(rec.couriers, key=lambda c: c.courier_id))
    end_h = (max(c.offline_ms for c in rec.couriers) - start_ms) / _H_MS
    model = msgspec.structs.replace(
        rec.couriers_model, count=len(couriers),
        shifts=(Shift(start_h=0.0, end_h=max(end_h, hours), share=1.0),))
    scenario = Scenario(name=rec.name, start_utc_ms=start_ms, hours=hours,
                        drain_h=rec.drain_h, couriers=model)
    return Day(scenario=scenario, seed=seed, chefs=tuple(points),
               declared_prep_min=tuple(declared), orders=tuple(lab_orders),
               couriers=couriers)


def record_day(day: Day) -> RecordedDay:
    """A lab day as a record (to save it, or to check that a replay is the same day):
    kitchens are named ``k<index>``."""
    s = day.scenario
    return RecordedDay(
        name=s.name, start_ms=day.start_ms, hours=s.hours, drain_h=s.drain_h,
        couriers_model=s.couriers,
        orders=[RecordedOrder(order_id=o.order_id, chef_id=f"k{o.chef}", pickup=o.pickup,
                              dropoff=o.dropoff, placed_ms=o.placed_ms,
                              accepted_ms=o.accepted_ms,
                              estimated_ready_ms=o.estimated_ready_ms, ready_ms=o.ready_ms,
                              promised_ms=o.promised_ms) for o in day.orders],
        couriers=[RecordedCourier(courier_id=c.courier_id, vehicle=c.vehicle, start=c.start,
                                  online_ms=c.shift_start_ms, offline_ms=c.shift_end_ms,
                                  accept_prob=c.accept_prob, pace=c.pace)
                  for c in day.couriers])
