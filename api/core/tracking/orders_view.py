"""Core's read model of orders, projected from the ORDERS and DISPATCH streams into Redis.

Commerce owns orders; core learns what it needs (who may watch an order, where to pick up
and drop off, when the food is ready, who carries it) from events, never from commerce's
tables. Applying an event twice changes nothing: each stream's last applied sequence is kept
per order and older events are skipped.

Listeners (dispatch intake) hear each event at least once: the view marks an applied event
unheard in the same script that applies it and clears the mark only after every listener
returned; a listener that raises leaves the mark, the error propagates, the message is not
acked, and its redelivery runs the listeners again although the view already has it. So a
listener must be idempotent, and an order event is acked only once both the read model and
the dispatch queue have it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import redis.asyncio as aioredis
from nats.aio.msg import Msg

from api.stores.lua import compose
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    DeliveryDetails,
    DispatchEvent,
    OrderCreated,
    OrderDelivered,
    OrderDelivering,
    OrderEvent,
    OrderPickedUp,
    OrderStatus,
    OrderStatusChanged,
    decode,
)
from streams.jetstream import raise_if_cancelling
from streams.tracking_hub import OrderTrack
from streams.wire import Point

log = logging.getLogger("homechef.orders_view")

VIEW_TTL_S = 7 * 24 * 3600
"""An order's view expires this long after its latest change (a week: tracking links and
late events still find it)."""

APPLIED = 1
"""`apply_order_event.lua`'s answer for an event the view applied now (2: applied before but
unheard by its listeners; 0: applied and heard before, or older)."""

# Called with each event that changed the view, and again with a redelivery of one whose
# listeners did not all return (not with replays of events heard already).
Listener = Callable[[OrderEvent | DispatchEvent], Awaitable[None]]


class NotReady(RuntimeError):
    """The view's `gate` held a batch back (e.g. dispatch state being rebuilt): nakked."""


class OrdersView:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._apply = redis.register_script(compose("api.core.tracking.lua",
                                                    "apply_order_event"))
        self.listeners: list[Listener] = []
        self.gate: Callable[[], Awaitable[bool]] | None = None
        """Asked before each batch: False (or an error) holds the batch back, nakked. Dispatch
        sets it to wait while its state is rebuilt after Redis lost it (the rebuild replays
        what came before; an event applied to the half-empty store would be lost or would
        mask older ones)."""

    def key(self, order_id: str) -> str:
        return f"{self.prefix}:order:{order_id}"

    async def get(self, order_id: str) -> OrderTrack | None:
        """The projected order, in the hub's model of it (None: core never heard of it)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[assignment]
            self.key(order_id)
        )
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}

        def point(prefix: str) -> Point | None:
            lat, lng = f.get(f"{prefix}_lat"), f.get(f"{prefix}_lng")
            return Point(float(lat), float(lng)) if lat and lng else None

        def integer(name: str) -> int | None:
            return int(f[name]) if f.get(name) else None

        return OrderTrack(
            order_id=order_id, order_number=f.get("order_number", ""),
            customer_id=f.get("customer_id", ""), chef_id=f.get("chef_id", ""),
            status=_status(f.get("status")), pickup=point("pickup"),
            dropoff=point("dropoff"), ready_at_ms=integer("ready_at_ms"),
            promised_at_ms=integer("promised_at_ms"), courier_id=f.get("courier_id", ""),
            updated_ms=integer("updated_ms") or 0,
        )

    async def details(self, order_ids: Sequence[str]) -> dict[str, DeliveryDetails]:
        """What couriers are shown of each order (orders core has no details of left out:
        unknown, or announced by an older commerce)."""
        if not order_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for oid in order_ids:
                pipe.hget(self.key(oid), "details")
            raws = await pipe.execute()
        return {oid: _details_decoder.decode(raw)
                for oid, raw in zip(order_ids, raws, strict=True) if raw}

    async def apply(self, event: OrderEvent | DispatchEvent, stream: str, seq: int) -> bool:
        """Project one event and tell the listeners; False when it was already applied (or
        is older).

        The listeners hear an event the view applies now, and again one applied before whose
        listeners did not all return (a listener raised, or the process died in between).
        A listener's error propagates (the caller must not ack the event): its redelivery
        tells the listeners again.
        """
        key = self.key(event.order_id)
        unheard = f"unheard:{stream}:{seq}" if self.listeners else ""
        args: list[str | int | float] = [f"seq:{stream}", seq, VIEW_TTL_S, unheard]
        for k, v in _fields_of(event).items():
            args += [k, v]
        result = int(await self._apply(keys=[key], args=args))
        if result and unheard:
            for listener in self.listeners:
                await listener(event)
            await self.redis.hdel(key, unheard)
        return result == APPLIED

    async def apply_msgs(self, msgs: list[Msg]) -> None:
        """Apply a batch in order. When one fails (a listener or the store raised), the
        events before it are acked, it and the rest are nakked and the error propagates, so
        the consumer does not ack them and its worker backs off. Nakked without a delay, they
        are redelivered at the worker's next pull, ahead of newer events (JetStream serves
        redeliveries first), so an order's events still reach dispatch in order; with a
        delay, or left to the consumer's ack wait, a later `ready` could overtake the
        `accepted` it follows."""
        try:
            if self.gate is not None and not await self.gate():
                raise NotReady("held back by the view's gate; batch nakked")
        except Exception:
            await _settle([], msgs)
            raise
        for i, m in enumerate(msgs):
            try:
                await self._apply_msg(m)
            except Exception:
                await _settle(msgs[:i], msgs[i:])
                raise

    async def _apply_msg(self, m: Msg) -> None:
        try:
            event = decode(m.data)
        except msgspec.DecodeError:
            log.warning("skipping undecodable event on %s", m.subject)
            return
        if isinstance(event, OrderCreated | OrderStatusChanged | CourierAssigned
                      | CourierUnassigned | OrderPickedUp | OrderDelivering | OrderDelivered):
            await self.apply(event, m.metadata.stream, m.metadata.sequence.stream)


async def _settle(done: list[Msg], failed: list[Msg]) -> None:
    """Ack `done`, nak `failed` (best effort: unacked, they come back after the ack wait)."""
    try:
        for m in done:
            await m.ack()
        for m in failed:
            await m.nak()
    except Exception:
        raise_if_cancelling()
        log.warning("could not settle a failed batch; it is redelivered after the ack wait")


_details_decoder = msgspec.json.Decoder(DeliveryDetails)


def _status(raw: str | None) -> OrderStatus:
    """A projected status (written from an event, so one of `OrderStatus`); absent: pending."""
    return msgspec.convert(raw or "pending", OrderStatus)


def _fields_of(event: OrderEvent | DispatchEvent) -> dict[str, str | int | float]:
    if isinstance(event, OrderCreated | OrderStatusChanged):
        fields: dict[str, str | int | float] = {
            "order_number": event.order_number, "customer_id": event.customer_id,
            "chef_id": event.chef_id,
            "pickup_lat": event.pickup.lat, "pickup_lng": event.pickup.lng,
            "dropoff_lat": event.dropoff.lat, "dropoff_lng": event.dropoff.lng,
        }
        if event.details is not None:
            fields["details"] = msgspec.json.encode(event.details).decode()
        if isinstance(event, OrderStatusChanged):
            fields["status"] = event.status
            fields["updated_ms"] = event.at_ms
            if event.ready_at_ms is not None:
                fields["ready_at_ms"] = event.ready_at_ms
            if event.promised_at_ms is not None:
                fields["promised_at_ms"] = event.promised_at_ms
        else:
            fields.setdefault("status", "pending")
            fields["updated_ms"] = event.created_at_ms
        return fields
    if isinstance(event, CourierAssigned):
        return {"courier_id": event.courier_id, "updated_ms": event.at_ms}
    if isinstance(event, CourierUnassigned):
        return {"courier_id": "", "updated_ms": event.at_ms}
    status = {OrderPickedUp: "picked_up", OrderDelivering: "delivering",
              OrderDelivered: "delivered"}[type(event)]
    return {"status": status, "courier_id": event.courier_id, "updated_ms": event.at_ms}
