"""Core's tracking hubs and the look-ups their sockets need (last status, replay, courier).
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
import nats.errors
import nats.js.errors

from api.auth import STAFF, Identity, Role
from api.core.services import CoreServices
from api.resources import Resources
from api.settings import Settings
from streams.catalog import ORDERS, Names
from streams.events import OrderCreated, OrderStatusChanged, decode_order_event
from streams.hub import CourierHub, HubLimits, OrderTrack, TrackingHub, status_message, track_of
from streams.jetstream import raise_if_cancelling
from streams.wire import (
    OrderStatusPayload,
    OrderStatusUpdate,
    encode,
    iso_utc,
)

log = logging.getLogger("homechef.tracking")


def limits_from(settings: Settings) -> HubLimits:
    """The hubs' bounds from the settings (ws_queue_size scales the event backlog)."""
    return HubLimits(max_event_bytes=max(4, settings.ws.queue_size) * 1024,
                     courier_stale_s=settings.ingest.courier_stale_s)


class _Loaded(msgspec.Struct, kw_only=True):
    track: OrderTrack
    seq: int
    status: bytes


class Tracking:
    """Core's hubs (one of each per process) and the look-ups their sockets need."""

    def __init__(self, settings: Settings, core: CoreServices,
                 limits: HubLimits | None = None) -> None:
        self.settings = settings
        self.core = core
        self.names = Names(settings.server.namespace)
        self.limits = limits or limits_from(settings)
        self.couriers = CourierHub(self.names)
        self.hub = TrackingHub(self.names, self.limits)
        self._res: Resources | None = None

    async def bind(self, res: Resources) -> None:
        self._res = res

    @property
    def res(self) -> Resources:
        if self._res is None:
            raise RuntimeError("tracking used before start-up bound it")
        return self._res

    # -- workers ---------------------------------------------------------------------------
    async def run_hub(self, res: Resources) -> None:
        await self.hub.run(res.nats, res.js)

    async def run_courier_hub(self, res: Resources) -> None:
        await self.couriers.run(res.nats)

    async def follow_courier_states(self, res: Resources) -> None:
        """While a console is open here, re-read couriers' dispatch states every interval
        (one HGETALL; states change in Lua scripts that publish nothing per courier)."""
        key = self.core.couriers.status_key
        while True:
            await asyncio.sleep(self.limits.status_interval_s)
            if not self.hub.has_consoles:
                continue
            raw: dict[bytes, bytes] = await res.redis.hgetall(key)  # type: ignore[assignment]
            raise_if_cancelling()  # redis-py can swallow a cancel during its call
            self.hub.set_courier_statuses({k.decode(): v.decode() for k, v in raw.items()})

    # -- look-ups ----------------------------------------------------------------------------
    async def _last(self, subject: str) -> tuple[int, bytes] | None:
        try:
            raw = await self.res.js.get_last_msg(self.names.stream(ORDERS), subject)
        except nats.js.errors.NotFoundError:
            return None
        if raw.data is None or raw.seq is None:
            return None
        return int(raw.seq), raw.data

    async def load(self, order_id: str) -> _Loaded | None:
        """The order's latest status event (with its stream sequence) and its courier."""
        found = await self._last(self.names.order_event("status", order_id))
        if found is None:
            found = await self._last(self.names.order_event("created", order_id))
        view = await self.core.orders.get(order_id)
        if found is not None:
            seq, data = found
            event = decode_order_event(data)
            if not isinstance(event, OrderCreated | OrderStatusChanged):
                return None
            track = track_of(event)
            status = status_message(event, seq)
        elif view is not None and view.customer_id:
            seq = 0
            track = view
            status = encode(OrderStatusUpdate(id=0, payload=OrderStatusPayload(
                order_id=order_id, order_number=track.order_number, status=track.status,
                timestamp=iso_utc(track.updated_ms))))
        else:
            return None
        if view is not None:
            track.courier_id = view.courier_id
            if view.status in ("picked_up", "delivering", "delivered"):
                track.status = view.status  # dispatch can be ahead of commerce's event
        return _Loaded(track=track, seq=seq, status=status)

    async def may_watch(self, who: Identity, track: OrderTrack) -> bool:
        if who.role in STAFF:
            return True
        if who.role is Role.CUSTOMER:
            return bool(track.customer_id) and track.customer_id == who.user_id
        if who.role is Role.CHEF:
            # Events name the chef by user id (chef_user_id); older ones only by chef_id.
            owner = track.chef_user_id or track.chef_id
            return bool(owner) and who.user_id == owner
        return False

    async def location_of(self, track: OrderTrack) -> bytes | None:
        """DELIVERY_LOCATION from the courier's last indexed fix (None before assignment)."""
        if not track.courier_id:
            return None
        pos = await self.core.couriers.position(track.courier_id)
        if not pos or "lat" not in pos or "ts" not in pos:
            return None
        return self.hub.location_message(track, track.courier_id, float(pos["lat"]),
                                         float(pos["lng"]), int(pos["ts"]))

    async def replay(self, order_id: str, after_seq: int) -> list[tuple[int, bytes]]:
        """Every order.status event of the order stored after ``after_seq``, in order."""
        js, stream = self.res.js, self.names.stream(ORDERS)
        subject = self.names.order_event("status", order_id)
        out: list[tuple[int, bytes]] = []
        seq = after_seq + 1
        while True:
            try:
                raw = await js.get_msg(stream, seq=seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                return out
            if raw.seq is None or raw.data is None:
                return out
            event = decode_order_event(raw.data)
            out.append((int(raw.seq), status_message(event, int(raw.seq))))
            seq = int(raw.seq) + 1
