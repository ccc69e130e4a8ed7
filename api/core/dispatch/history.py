"""Dispatch history in PostgreSQL (core's tables), from the DISPATCH stream.

A durable JetStream consumer feeds `apply_msgs`; each event becomes one courier status row
(keyed by the event, so redelivery writes nothing twice) and creates or completes its
assignment row (milestones are set once: COALESCE keeps the first time).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
import msgspec
from nats.aio.msg import Msg

from dispatch.lifecycle import OrderDispatchState
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    OrderDelivered,
    OrderDelivering,
    OrderPickedUp,
    decode,
)

log = logging.getLogger("homechef.history")

_STATUS_ROW = """
INSERT INTO courier_status_history (courier_id, status, order_id, at, event_key)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_key) DO NOTHING
"""
_ASSIGNED = """
INSERT INTO dispatch_assignments (order_id, offer_id, courier_id, assigned_at)
VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, offer_id) DO NOTHING
"""
# The open assignment of (order, courier): the latest one not unassigned.
_OPEN = """
(SELECT offer_id FROM dispatch_assignments
 WHERE order_id = $1 AND courier_id = $2 AND unassigned_at IS NULL
 ORDER BY assigned_at DESC LIMIT 1)
"""
UNASSIGNED = "unassigned"
"""The status row of an unassignment (the courier's order went back to waiting)."""
_MILESTONES: dict[type, tuple[OrderDispatchState, str]] = {
    OrderPickedUp: (OrderDispatchState.PICKED_UP, "picked_up_at"),
    OrderDelivering: (OrderDispatchState.DELIVERING, "delivering_at"),
    OrderDelivered: (OrderDispatchState.DELIVERED, "delivered_at"),
}
"""Progress events: the status row each writes and the assignment column it sets once."""


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class DispatchHistory:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def apply_msgs(self, msgs: list[Msg]) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            for m in msgs:
                try:
                    event = decode(m.data)
                except msgspec.DecodeError:
                    log.warning("skipping undecodable event on %s", m.subject)
                    continue
                # The publisher's message id names the event (JetStream de-duplicates on it).
                msg_id = (m.headers or {}).get("Nats-Msg-Id")
                await self.apply(conn, event,
                                 msg_id or f"{m.metadata.stream}:{m.metadata.sequence.stream}")

    async def apply(self, conn: asyncpg.Connection, event: object, key: str) -> None:
        """Write one event; `key` identifies it (its message id)."""
        status: str
        if isinstance(event, CourierAssigned):
            await conn.execute(_ASSIGNED, event.order_id, event.offer_id, event.courier_id,
                               _at(event.at_ms))
            status = OrderDispatchState.ASSIGNED.value
        elif isinstance(event, CourierUnassigned):
            await conn.execute(
                f"UPDATE dispatch_assignments SET unassigned_at = $3, unassign_reason = $4 "
                f"WHERE order_id = $1 AND offer_id = {_OPEN}",
                event.order_id, event.courier_id, _at(event.at_ms), event.reason)
            status = UNASSIGNED
        elif isinstance(event, OrderPickedUp | OrderDelivering | OrderDelivered):
            state, column = _MILESTONES[type(event)]
            status = state.value
            await conn.execute(
                f"UPDATE dispatch_assignments SET {column} = COALESCE({column}, $3) "
                f"WHERE order_id = $1 AND offer_id = {_OPEN}",
                event.order_id, event.courier_id, _at(event.at_ms))
        else:
            return
        await conn.execute(_STATUS_ROW, event.courier_id, status, event.order_id,
                           _at(event.at_ms), key)
