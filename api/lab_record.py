"""A production day as a lab record (`homechef lab-record`): the dispatch history in
PostgreSQL read into `lab.replay.RecordedDay`, replayable with `homechef lab --replay`.

What it reads (one database, as `homechef migrate` lays it out):
- commerce's ``orders`` placed in the window whose kitchen marked the food ready: placed
  (``created_at``), accepted, declared ready (``estimated_ready``), ready (``prepared_at``),
  promised (``estimated_delivery``), kitchen, pickup and drop-off;
- core's ``courier_status_history`` ``online``/``offline`` rows (migration 0109) for the
  couriers of the deployment's namespace (``courier_availability``): spans, first fix, vehicle;
- core's ``dispatch_assignments`` (delivered ones give each courier's pace) and
  ``dispatch_declines`` (its acceptance rate).

The assembly is pure (`lab.replay.couriers_from_history`); this module only reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from dispatch.promise import epoch_ms
from geo.travel import TravelModel
from lab.replay import (
    Delivery,
    RecordedDay,
    RecordedOrder,
    StatusRow,
    couriers_from_history,
)
from lab.scenario import Couriers

__all__ = ["record_from_history"]

_ORDERS = """
SELECT id::text AS id, chef_id::text AS chef_id, pickup_lat, pickup_lng, delivery_lat,
       delivery_lng, created_at, accepted_at, estimated_ready, prepared_at, estimated_delivery
FROM orders
WHERE created_at >= $1 AND created_at < $2 AND accepted_at IS NOT NULL
  AND estimated_ready IS NOT NULL AND prepared_at IS NOT NULL
  AND estimated_delivery IS NOT NULL
ORDER BY created_at, id
"""
_COURIERS = "SELECT courier_id, vehicle FROM courier_availability WHERE namespace = $1"
_STATUS = """
SELECT courier_id, status, at, lat, lng, vehicle FROM courier_status_history
WHERE courier_id = ANY($1) AND status IN ('online', 'offline') AND at < $2
ORDER BY courier_id, at, id
"""
_DELIVERIES = """
SELECT a.courier_id, a.order_id, a.assigned_at, a.picked_up_at, a.delivered_at
FROM dispatch_assignments a
WHERE a.courier_id = ANY($1) AND a.assigned_at >= $2 AND a.assigned_at < $3
  AND a.unassigned_at IS NULL AND a.picked_up_at IS NOT NULL AND a.delivered_at IS NOT NULL
"""
_DECLINES = """
SELECT courier_id, count(*) AS n FROM dispatch_declines
WHERE namespace = $1 AND declined_at >= $2 AND declined_at < $3 GROUP BY courier_id
"""


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


async def record_from_history(db: asyncpg.Pool | asyncpg.Connection, *, namespace: str,
                              since_ms: int, until_ms: int, model: TravelModel,
                              couriers_model: Couriers | None = None,
                              name: str = "recorded") -> RecordedDay:
    """The day of orders placed in [since_ms, until_ms) and of the namespace's couriers
    online then (ValueError: no order or no courier in the window). `couriers_model` is
    what the record does not hold (think times, leg noise, hand-over); `model` is dispatch's
    travel model, against which each courier's pace is measured."""
    since, until = _at(since_ms), _at(until_ms)
    orders = [RecordedOrder(
        order_id=r["id"], chef_id=r["chef_id"], pickup=(r["pickup_lat"], r["pickup_lng"]),
        dropoff=(r["delivery_lat"], r["delivery_lng"]), placed_ms=epoch_ms(r["created_at"]),
        accepted_ms=epoch_ms(r["accepted_at"]),
        estimated_ready_ms=epoch_ms(r["estimated_ready"]), ready_ms=epoch_ms(r["prepared_at"]),
        promised_ms=epoch_ms(r["estimated_delivery"]))
        for r in await db.fetch(_ORDERS, since, until)]
    vehicles = {r["courier_id"]: r["vehicle"] or "bike"
                for r in await db.fetch(_COURIERS, namespace)}
    ids = sorted(vehicles)
    rows = [StatusRow(courier_id=r["courier_id"], online=r["status"] == "online",
                      at_ms=max(since_ms, epoch_ms(r["at"])),
                      at=(r["lat"], r["lng"]) if r["lat"] is not None else None,
                      vehicle=r["vehicle"])
            for r in await db.fetch(_STATUS, ids, until)]
    where = {o.order_id: o for o in orders}
    deliveries = [Delivery(
        courier_id=r["courier_id"], pickup=where[r["order_id"]].pickup,
        dropoff=where[r["order_id"]].dropoff, assigned_ms=epoch_ms(r["assigned_at"]),
        picked_up_ms=epoch_ms(r["picked_up_at"]), delivered_ms=epoch_ms(r["delivered_at"]))
        for r in await db.fetch(_DELIVERIES, ids, since, until) if r["order_id"] in where]
    declines = {r["courier_id"]: int(r["n"])
                for r in await db.fetch(_DECLINES, namespace, since, until)}
    couriers = couriers_from_history(rows, until_ms=until_ms, model=model,
                                     deliveries=deliveries, declines=declines,
                                     vehicles=vehicles)
    return RecordedDay(name=name, start_ms=since_ms, hours=(until_ms - since_ms) / 3_600_000,
                       orders=orders, couriers=couriers,
                       couriers_model=couriers_model or Couriers())
