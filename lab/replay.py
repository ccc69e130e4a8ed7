"""A recorded day replayed through another policy ("what would policy B have done?").

A `RecordedDay` is what happened that dispatch did not decide: each order's placement,
acceptance, the kitchen's declared and real ready times, the promise and where it went; each
courier's time online, vehicle and first position. `replay_day` turns it into the lab's
`Day`, so `simulate_day` runs it under any policy with the same KPIs as a generated day
(`homechef lab --replay FILE`). What a record does not hold is modelled as on a generated
day, from `RecordedDay.couriers_model` and the seed: think times, offer answers (each
courier's `accept_prob`), leg noise; couriers ride at the travel model's pace.

A production day becomes a record from its history in PostgreSQL (`api.lab_record`): the
rows it reads are turned into couriers here (`couriers_from_history`).

Pure: JSON or history rows in, a `Day` out.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import msgspec

from geo.travel import TravelModel, Vehicle
from lab.city import Day, LabCourier, LabOrder
from lab.scenario import Couriers, Scenario, Shift

__all__ = ["Delivery", "RecordedCourier", "RecordedDay", "RecordedOrder", "StatusRow",
           "couriers_from_history", "load_recorded", "record_day", "replay_day"]

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


class StatusRow(msgspec.Struct, frozen=True, kw_only=True):
    """A courier going online or offline (core's courier history, migration 0109)."""

    courier_id: str
    online: bool
    at_ms: int
    at: tuple[float, float] | None = None
    """Its last fix when it went online (None: not known)."""
    vehicle: str | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One assignment that was delivered (core's dispatch_assignments)."""

    courier_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    assigned_ms: int
    picked_up_ms: int
    delivered_ms: int


def couriers_from_history(
        rows: Iterable[StatusRow], *, until_ms: int, model: TravelModel,
        deliveries: Sequence[Delivery] = (), declines: dict[str, int] | None = None,
        vehicles: dict[str, str] | None = None) -> list[RecordedCourier]:
    """The recorded couriers of a day from the history, read in time order per courier.

    Each online span is one courier: it starts at an ``online`` row (a repeat while online is
    a client's retry or check-in, skipped) and ends at the next ``offline`` row, or at
    `until_ms`. A second span of the same courier is named ``<id>~2``. Its start is the fix
    of the ``online`` row, else the kitchen of its first delivery, else the middle of the
    kitchens. Its acceptance rate is accepted ÷ (accepted + `declines`), 0.9 with no offers
    answered. Its pace is the median of (delivered − picked up) ÷ the model's ride over its
    deliveries made alone (no other order held meanwhile); without one, the median of the
    others' (1.0 when no courier has one)."""
    deliveries = sorted(deliveries, key=lambda d: d.picked_up_ms)
    by_courier: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_courier.setdefault(d.courier_id, []).append(d)
    kitchens = [d.pickup for d in deliveries]
    middle = ((statistics.fmean(p[0] for p in kitchens), statistics.fmean(p[1] for p in kitchens))
              if kitchens else (0.0, 0.0))
    declines = declines or {}
    vehicles = vehicles or {}
    spans: dict[str, list[list[StatusRow | int]]] = {}
    for r in sorted(rows, key=lambda r: (r.courier_id, r.at_ms)):
        open_spans = spans.get(r.courier_id, [])
        is_open = bool(open_spans) and len(open_spans[-1]) == 1
        if r.online and not is_open and r.at_ms < until_ms:
            spans.setdefault(r.courier_id, []).append([r])
        elif not r.online and is_open:
            open_spans[-1].append(min(r.at_ms, until_ms))
    vehicle_of = {}
    for cid, found in spans.items():
        first = found[0][0]
        assert isinstance(first, StatusRow)
        vehicle_of[cid] = first.vehicle or vehicles.get(cid) or "bike"
    paces = {cid: _pace(by_courier.get(cid, []), model, vehicle_of[cid]) for cid in vehicle_of}
    measured = [p for p in paces.values() if p is not None]
    fleet_pace = statistics.median(measured) if measured else 1.0
    out = []
    for cid, found in spans.items():
        mine = by_courier.get(cid, [])
        accepted = len(mine)
        answered = accepted + declines.get(cid, 0)
        for n, span in enumerate(found, start=1):
            first = span[0]
            assert isinstance(first, StatusRow)
            end = span[1] if len(span) == 2 else until_ms
            assert isinstance(end, int)
            if end <= first.at_ms:
                continue  # offline again before the window (or at its first instant)
            vehicle = vehicle_of[cid]
            start = first.at or next((d.pickup for d in mine if d.assigned_ms >= first.at_ms),
                                     middle)
            out.append(RecordedCourier(
                courier_id=cid if n == 1 else f"{cid}~{n}", vehicle=vehicle, start=start,
                online_ms=first.at_ms, offline_ms=max(first.at_ms, end),
                accept_prob=accepted / answered if answered else 0.9,
                pace=paces[cid] or fleet_pace))
    return out


def _pace(mine: list[Delivery], model: TravelModel, vehicle: str) -> float | None:
    ratios = []
    for i, d in enumerate(mine):
        alone = all(o.delivered_ms <= d.assigned_ms or o.assigned_ms >= d.delivered_ms
                    for j, o in enumerate(mine) if j != i)
        ride_s = model.travel_s(*d.pickup, *d.dropoff, Vehicle(vehicle))
        if alone and ride_s > 0 and d.delivered_ms > d.picked_up_ms:
            ratios.append((d.delivered_ms - d.picked_up_ms) / 1000.0 / ride_s)
    return statistics.median(ratios) if ratios else None
