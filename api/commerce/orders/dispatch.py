"""Consumer of dispatch.* (core → commerce): courier assignment and the delivery steps.

Idempotent: every event is checked against the order's current state, so applying one twice
(JetStream delivers at least once) changes nothing the second time.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from api.commerce.context import Commerce
from api.commerce.orders import lifecycle, state
from api.parts import Worker
from api.resources import Resources
from streams.catalog import DISPATCH, Names
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    DispatchEvent,
    OrderDelivered,
    OrderDelivering,
    OrderPickedUp,
    decode_dispatch_event,
)
from streams.jetstream import consume_batches

log = logging.getLogger("homechef.commerce.dispatch")

TARGET_OF: dict[type, state.OrderStatus] = {
    OrderPickedUp: "picked_up",
    OrderDelivering: "delivering",
    OrderDelivered: "delivered",
}


async def apply_dispatch_event(resources: Resources, commerce: Commerce,
                               event: DispatchEvent) -> bool:
    """Apply one event; True when it changed the order."""
    try:
        order_id = uuid.UUID(event.order_id)
    except ValueError:
        log.warning("dispatch event for a malformed order id %r", event.order_id)
        return False
    names = Names(resources.settings.server.namespace)
    async with resources.db.acquire() as conn, conn.transaction():
        if isinstance(event, CourierAssigned):
            done = await conn.execute(
                """UPDATE orders SET delivery_id = $2, updated_at = now()
                   WHERE id = $1 AND delivery_id IS DISTINCT FROM $2
                     AND status NOT IN ('delivered', 'cancelled', 'refunded')""",
                order_id, event.courier_id)
            return done != "UPDATE 0"
        if isinstance(event, CourierUnassigned):
            done = await conn.execute(
                """UPDATE orders SET delivery_id = NULL, updated_at = now()
                   WHERE id = $1 AND delivery_id = $2
                     AND status IN ('accepted', 'preparing', 'ready')""",
                order_id, event.courier_id)
            return done != "UPDATE 0"
        target = TARGET_OF[type(event)]
        row = await lifecycle.lock_order(conn, order_id)
        if row is None or row["payment_status"] == "unpaid":
            log.warning("dispatch %s for unknown or unpaid order %s", target, order_id)
            return False
        steps = state.dispatch_path(row["status"], target)
        if not steps:
            return False  # already there (a redelivery) or not on the delivery path
        at = datetime.fromtimestamp(event.at_ms / 1000, UTC)
        if row["delivery_id"] is None:
            await conn.execute("UPDATE orders SET delivery_id = $2 WHERE id = $1",
                               order_id, event.courier_id)
        for step in steps:
            row = await lifecycle.apply_transition(conn, commerce, names, row, step, now=at)
    commerce.committed()
    return True


def dispatch_consumer(commerce: Commerce) -> Worker:
    async def run(resources: Resources) -> None:
        names = Names(resources.settings.server.namespace)

        async def handle(msgs: list[Msg]) -> None:
            for msg in msgs:
                try:
                    event = decode_dispatch_event(msg.data)
                except msgspec.ValidationError:
                    log.warning("dropping undecodable dispatch message on %s", msg.subject)
                    continue
                await apply_dispatch_event(resources, commerce, event)

        js = _SubscriptionTracking(resources.js)
        try:
            await consume_batches(
                cast(JetStreamContext, js), stream=names.stream(DISPATCH),
                durable=names.consumer("commerce-dispatch"),
                filter_subject=names.dispatch_all(), handler=handle, batch=100)
        finally:
            await js.unsubscribe_all()

    return run


class _SubscriptionTracking:
    """A JetStream context that remembers the pull subscriptions made through it.

    On shutdown the consumer's task is cancelled while its pull subscription still holds
    unprocessed replies; ``nc.drain()`` then waits on that subscription until its timeout
    (~5 s per app). Unsubscribing it when the consumer stops avoids the wait.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._subs: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)

    async def pull_subscribe(self, *args: Any, **kwargs: Any) -> Any:
        sub = await self._js.pull_subscribe(*args, **kwargs)
        self._subs.append(sub)
        return sub

    async def unsubscribe_all(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):  # closing anyway
                await sub.unsubscribe()
        self._subs.clear()
