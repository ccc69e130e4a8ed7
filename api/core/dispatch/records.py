"""Dispatch's records in PostgreSQL (core's tables, migration 0004) beside its Redis state:
what a rebuild after Redis lost its data (api/core/dispatch/rebuild.py) cannot find in the
streams. Each courier's last availability (online or offline, and its vehicle), upserted when
it calls availability; and who declined which order, inserted before the decline is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec

__all__ = ["CourierAvailability", "DispatchRecords"]


class CourierAvailability(msgspec.Struct, frozen=True):
    courier_id: str
    online: bool
    vehicle: str | None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# One statement: the last availability and the history row (online spans for a recorded
# day, api/lab_record.py) are written together. A client's retry adds a second row of the
# same state, which a span reader skips.
_SAVE_AVAILABILITY = """
WITH saved AS (
    INSERT INTO courier_availability (namespace, courier_id, online, vehicle, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (namespace, courier_id) DO UPDATE SET
        online = EXCLUDED.online,
        vehicle = COALESCE(EXCLUDED.vehicle, courier_availability.vehicle),
        updated_at = EXCLUDED.updated_at
    RETURNING vehicle
)
INSERT INTO courier_status_history (courier_id, status, at, lat, lng, vehicle)
SELECT $2, CASE WHEN $3 THEN 'online' ELSE 'offline' END, $5, $6, $7, saved.vehicle
FROM saved
"""
_SAVE_DECLINE = """
INSERT INTO dispatch_declines (namespace, order_id, courier_id, declined_at)
VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, order_id, courier_id) DO NOTHING
"""


class DispatchRecords:
    """The records of one deployment (``namespace``, as its Redis keys)."""

    def __init__(self, db: asyncpg.Pool, namespace: str) -> None:
        self.db = db
        self.namespace = namespace

    async def save_availability(self, courier_id: str, *, online: bool, vehicle: str | None,
                                at_ms: int, at: tuple[float, float] | None = None) -> None:
        """The courier's availability now; a vehicle not given keeps the one on file. The
        courier history gets an ``online`` or ``offline`` row, with `at` (its last fix)."""
        lat, lng = at if at is not None else (None, None)
        await self.db.execute(_SAVE_AVAILABILITY, self.namespace, courier_id, online, vehicle,
                              _at(at_ms), lat, lng)

    async def save_decline(self, order_id: str, courier_id: str, at_ms: int) -> None:
        await self.db.execute(_SAVE_DECLINE, self.namespace, order_id, courier_id, _at(at_ms))

    async def availabilities(self) -> list[CourierAvailability]:
        """Every courier's last availability."""
        rows = await self.db.fetch(
            "SELECT courier_id, online, vehicle FROM courier_availability WHERE namespace = $1",
            self.namespace)
        return [CourierAvailability(r["courier_id"], r["online"], r["vehicle"]) for r in rows]

    async def prune_declines(self, before_ms: int) -> int:
        """Delete declines older than `before_ms` (their orders are past any rebuild: the
        streams keep 7 days); returns how many."""
        done = await self.db.execute(
            "DELETE FROM dispatch_declines WHERE namespace = $1 AND declined_at < $2",
            self.namespace, _at(before_ms))
        return int(done.rsplit(" ", 1)[-1])

    async def declines(self, order_ids: Sequence[str]) -> dict[str, list[str]]:
        """The couriers that declined each of `order_ids` (orders nobody declined left out)."""
        rows = await self.db.fetch(
            "SELECT order_id, courier_id FROM dispatch_declines "
            "WHERE namespace = $1 AND order_id = ANY($2)", self.namespace, list(order_ids))
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r["order_id"], []).append(r["courier_id"])
        return found
