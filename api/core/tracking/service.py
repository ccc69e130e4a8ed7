"""Core's tracking service: the hubs, who may watch what, and what a socket is sent first.

The controllers (api/core/tracking/controllers.py) only adapt transports: they call
`Tracking.authorize` (raising `TrackingRefused`, which they turn into a close code or a
problem), then open a watch (`order_watch`, `chef_watch`, `console_watch`) and serve its
outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from enum import StrEnum

import msgspec
import nats.errors
import nats.js.errors

from api.auth import STAFF, Identity, Role
from api.clock import Clock, wall_ms
from api.core.gps.device import not_stored_message
from api.core.services import CoreServices
from api.core.tracking.share import ShareKey, ShareRefusal, ShareRefused
from api.resources import Resources
from api.settings import Settings
from geo.travel import Vehicle
from streams.catalog import ORDERS, Names
from streams.courier_hub import CourierHub
from streams.events import OrderCreated, OrderStatusChanged, decode_order_event
from streams.jetstream import raise_if_cancelling
from streams.outbox import Outbox
from streams.tracking_hub import (
    ChefWatch,
    ConsoleWatch,
    HubLimits,
    OrderTrack,
    TrackingHub,
    status_message,
    track_of,
)
from streams.viewport import ViewportError, viewport_cells
from streams.wire import (
    ClientMessage,
    DeliveryLocation,
    OrderStatusPayload,
    OrderStatusUpdate,
    Point,
    Subscribe,
    Subscribed,
    SubscribedPayload,
    encode,
    error_message,
    iso_utc,
)

log = logging.getLogger("homechef.tracking")


def limits_from(settings: Settings) -> HubLimits:
    """The hubs' bounds from the settings (ws_queue_size scales the event backlog)."""
    return HubLimits(max_event_bytes=max(4, settings.ws.queue_size) * 1024,
                     courier_stale_s=settings.ingest.courier_stale_s)


_BAD_ID_CHARS = frozenset(".*> \t\r\n")
"""Characters an order id may not contain: it becomes a NATS subject token."""
_status_decoder = msgspec.json.Decoder(OrderStatusUpdate)
_location_decoder = msgspec.json.Decoder(DeliveryLocation)


class Refusal(StrEnum):
    """Why a watch is refused (the value is the reason given to the client)."""

    BAD_SINCE = "since must be a non-negative integer event id"
    NOT_FOUND = "order not found"
    FORBIDDEN = "not your order"
    NOT_ACTIVE = "the order is no longer active"


class TrackingRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


class TrackSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What an order socket sends first: its status and, once assigned, the courier."""

    status: OrderStatusUpdate
    location: DeliveryLocation | None = None
    pickup_eta_s: int | None = None
    """Seconds until the assigned courier reaches the kitchen (the chef times the food by
    it); None before a courier is assigned, without its fix, or once the food is on board."""


FINAL_STATUSES = frozenset({"delivered", "cancelled", "refunded"})


class ShareLink(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    """The tracking page (``/track/<token>``), to send to whoever should watch the order."""
    expires_at: str
    token: str


class TrackStep(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    """``placed``, then the order's statuses as they happened."""
    at: str


class SharedTrack(msgspec.Struct, frozen=True, kw_only=True):
    """What a share link shows: this order's progress, its chef's name and its courier on
    the map. Nothing about the customer beyond the door's point, nothing about others."""

    order_id: str
    order_number: str
    status: str
    active: bool
    chef_name: str
    pickup: Point | None
    dropoff: Point | None
    courier: Point | None = None
    courier_ts: int | None = None
    """Device time of the courier's fix, epoch ms."""
    eta_s: int | None = None
    """Seconds until the door (the courier's remaining route), once a courier is assigned."""
    eta: str | None = None
    timeline: list[TrackStep]
    expires_at: str


class _Loaded(msgspec.Struct, kw_only=True):
    track: OrderTrack
    seq: int
    status: bytes


def valid_order_id(order_id: str) -> bool:
    return 0 < len(order_id) <= 128 and not (_BAD_ID_CHARS & set(order_id))


def parse_since(raw: str | None) -> int | None:
    """The ``since`` of an order socket: None (absent or empty) or an event id >= 0."""
    if raw is None or raw == "":
        return None
    try:
        since = int(raw)
    except ValueError:
        raise TrackingRefused(Refusal.BAD_SINCE) from None
    if since < 0:
        raise TrackingRefused(Refusal.BAD_SINCE)
    return since


class Tracking:
    """Core's hubs (one of each per process) and the look-ups their sockets need."""

    def __init__(self, settings: Settings, core: CoreServices,
                 limits: HubLimits | None = None, *, clock: Clock = wall_ms) -> None:
        self.settings = settings
        self.core = core
        self.names = Names(settings.server.namespace)
        self.limits = limits or limits_from(settings)
        self.couriers = CourierHub(self.names)
        self.hub = TrackingHub(self.names, self.limits, clock_ms=clock,
                               travel=core.travel.model)
        self._res: Resources | None = None
        assert settings.server.jwt_secret, "core needs JWT_SECRET"
        self.share_key = ShareKey(settings.server.jwt_secret)
        self.clock = clock

    async def bind(self, res: Resources) -> None:
        self._res = res
        self.core.ingest.on_not_stored = self._fixes_not_stored
        self.hub.load_fleet = self._fleet_positions

    async def _fleet_positions(self) -> list[tuple[str, float, float, int]]:
        """Every fresh courier's last fix, from the live index: where the hub starts when
        a console or an order socket here first needs couriers' fixes."""
        fresh = await self.core.couriers.fresh(now_ms=self.clock(),
                                               stale_s=self.limits.courier_stale_s)
        return [(cid, p.lat, p.lng, p.ts_ms) for cid, p in fresh.items()]

    def _fixes_not_stored(self, courier_id: str, first_ts: int, last_ts: int) -> None:
        """Socket fixes JetStream never acked: the courier's devices here are told, to send
        them again (ingest no longer counts them as seen)."""
        self.couriers.deliver(courier_id, not_stored_message(first_ts, last_ts))

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
        (one HGETALL; states change in Lua scripts that publish nothing per courier). While
        an order is watched here, re-read couriers' vehicles every 5 intervals (one
        HGETALL), so its ETAs ride the courier's vehicle."""
        tick = 0
        while True:
            await asyncio.sleep(self.limits.status_interval_s)
            tick += 1
            if self.hub.has_order_watches and tick % 5 == 1:
                vehicles = await self.core.dispatch.store.vehicles()
                raise_if_cancelling()
                self.hub.set_courier_vehicles(vehicles)
            if not self.hub.has_consoles:
                continue
            statuses = await self.core.couriers.statuses()
            raise_if_cancelling()  # redis-py can swallow a cancel during its call
            self.hub.set_courier_statuses(statuses)

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
        if pos is None:
            return None
        vehicle = await self.core.dispatch.store.vehicle(track.courier_id)
        if vehicle is not None:  # the ETA rides the courier's own vehicle
            self.hub.set_courier_vehicles({track.courier_id: vehicle})
        return self.hub.location_message(track, track.courier_id, Point(pos.lat, pos.lng),
                                         pos.ts_ms)

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

    # -- watches -------------------------------------------------------------------------------
    async def authorize(self, who: Identity, order_id: str) -> _Loaded:
        """The order as ``who`` may watch it; raises `TrackingRefused` (NOT_FOUND, FORBIDDEN)."""
        loaded = await self.load(order_id) if valid_order_id(order_id) else None
        if loaded is None:
            raise TrackingRefused(Refusal.NOT_FOUND)
        if not await self.may_watch(who, loaded.track):
            raise TrackingRefused(Refusal.FORBIDDEN)
        return loaded

    async def snapshot(self, who: Identity, order_id: str) -> TrackSnapshot:
        """The order socket's first messages, for ``GET .../track``."""
        loaded = await self.authorize(who, order_id)
        location = await self.location_of(loaded.track)
        return TrackSnapshot(status=_status_decoder.decode(loaded.status),
                             location=_location_decoder.decode(location) if location else None,
                             pickup_eta_s=await self.to_kitchen_s(loaded.track))

    async def to_kitchen_s(self, track: OrderTrack) -> int | None:
        """The assigned courier's travel time from its last fix to the kitchen (bike speed,
        as the order's ETA: core does not know the vehicle here)."""
        if (not track.courier_id or track.pickup is None
                or track.status in ("picked_up", "delivering", *FINAL_STATUSES)):
            return None
        pos = await self.core.couriers.position(track.courier_id)
        if pos is None:
            return None
        travel_s = self.core.travel.model.travel_s(pos.lat, pos.lng, track.pickup.lat,
                                                   track.pickup.lng, Vehicle.BIKE)
        return math.ceil(travel_s) if math.isfinite(travel_s) else None

    # -- share links -------------------------------------------------------------------------
    async def share(self, who: Identity, order_id: str, base_url: str) -> ShareLink:
        """A link to the order's tracking page, for its customer (or staff), while the order
        is active; raises `TrackingRefused` (NOT_FOUND, FORBIDDEN, NOT_ACTIVE)."""
        loaded = await self.authorize(who, order_id)
        if loaded.track.status in FINAL_STATUSES:
            raise TrackingRefused(Refusal.NOT_ACTIVE)
        expires_s = int(self.clock() / 1000 + self.settings.ws.share_ttl_s)
        token = self.share_key.issue(order_id, expires_s)
        return ShareLink(url=f"{base_url.rstrip('/')}/track/{token}",
                         expires_at=iso_utc(expires_s * 1000), token=token)

    async def shared(self, token: str) -> tuple[_Loaded, int]:
        """The order a share token names and the token's expiry (epoch s), while the link
        holds: unexpired, and the order active or ended less than SHARE_GRACE_S ago. Raises
        `ShareRefused`."""
        now_ms = self.clock()
        order_id, expires_s = self.share_key.read(token, now_ms / 1000)
        loaded = await self.load(order_id) if valid_order_id(order_id) else None
        if loaded is None:
            raise ShareRefused(ShareRefusal.INVALID)
        track = loaded.track
        if track.status in FINAL_STATUSES:
            view = await self.core.orders.get(order_id)
            ended_ms = max(track.updated_ms, view.updated_ms if view else 0)
            if now_ms - ended_ms > self.settings.ws.share_grace_s * 1000:
                raise ShareRefused(ShareRefusal.EXPIRED)
        return loaded, expires_s

    async def shared_track(self, token: str) -> SharedTrack:
        """`GET /api/v1/track/{token}`: the page's whole state (its polling fallback)."""
        loaded, expires_s = await self.shared(token)
        track, order_id = loaded.track, loaded.track.order_id
        details = (await self.core.orders.details([order_id])).get(order_id)
        timeline: list[TrackStep] = []
        created = await self._last(self.names.order_event("created", order_id))
        if created is not None:
            event = decode_order_event(created[1])
            if isinstance(event, OrderCreated):
                timeline.append(TrackStep(status="placed", at=iso_utc(event.created_at_ms)))
        for _, data in await self.replay(order_id, 0):
            p = _status_decoder.decode(data).payload
            timeline.append(TrackStep(status=p.status, at=p.timestamp))
        location = await self.location_of(track)
        loc = _location_decoder.decode(location).payload if location else None
        active = track.status not in FINAL_STATUSES
        return SharedTrack(
            order_id=order_id, order_number=track.order_number, status=track.status,
            active=active, chef_name=details.chef_name if details else "",
            pickup=track.pickup, dropoff=track.dropoff,
            courier=loc.location if loc and active else None,
            courier_ts=loc.ts if loc and active else None,
            eta_s=loc.eta_s if loc and active else None, eta=loc.eta if loc and active else None,
            timeline=timeline, expires_at=iso_utc(expires_s * 1000))

    @contextlib.asynccontextmanager
    async def order_watch(self, loaded: _Loaded, since: int | None) -> AsyncIterator[Outbox]:
        """An authorized order socket's outbox, filled with its first messages and then live.

        First the status (or, with ``since``, every status event after it, replayed from the
        stream), then the courier's last location. The watch is registered before the
        stream is read, so live events meanwhile are held, then deduped by sequence: no gap,
        no repeat.
        """
        hub = self.hub
        order_id = loaded.track.order_id
        outbox = hub.new_outbox()
        watch = hub.watch_order(loaded.track, outbox)
        try:
            # Before the courier's location is read: no fix falls between the two.
            await hub.taking_fixes()
            if since is None:
                # Re-read after registering so an event stored in between is not missed.
                fresh = await self.load(order_id) or loaded
                if fresh.seq:
                    watch.replay(fresh.seq, fresh.status)
                else:  # known only from the projection (stream expired): no id to resume from
                    outbox.push_event(fresh.status)
            else:
                for seq, data in await self.replay(order_id, since):
                    watch.replay(seq, data)
            track = hub.track(order_id) or loaded.track
            location = await self.location_of(track)
            if location is not None:
                outbox.push_state("loc", location)
            watch.go_live()
            yield outbox
        finally:
            hub.unwatch_order(watch)

    @contextlib.asynccontextmanager
    async def chef_watch(self, who: Identity) -> AsyncIterator[Outbox]:
        """A chef socket's outbox: NEW_ORDER and status updates of the chef's orders."""
        outbox = self.hub.new_outbox()
        watch: ChefWatch = self.hub.watch_chef([who.user_id], outbox)
        try:
            yield outbox
        finally:
            self.hub.unwatch_chef(watch)

    @contextlib.asynccontextmanager
    async def console_watch(self) -> AsyncIterator[ConsoleWatch]:
        """A console socket's watch (its outbox is ``watch.outbox``); nothing is in view
        until the console subscribes (`on_console_message`)."""
        watch = self.hub.watch_console(self.hub.new_outbox())
        try:
            await self.hub.taking_fixes()
            yield watch
        finally:
            self.hub.unwatch_console(watch)

    async def on_console_message(self, watch: ConsoleWatch, message: ClientMessage) -> None:
        """SUBSCRIBE replaces the console's viewport (SUBSCRIBED, then what is in view);
        anything else, or a viewport that is not valid, is answered ERROR."""
        outbox = watch.outbox
        if not isinstance(message, Subscribe):
            outbox.push_event(error_message("unknown_type", "expected SUBSCRIBE"))
            return
        try:
            cells = viewport_cells(message.payload, self.limits.max_view_cells)
        except ViewportError as exc:
            outbox.push_event(error_message(exc.reason, exc.detail))
            return
        outbox.push_event(encode(Subscribed(payload=SubscribedPayload(cells=len(cells)))))
        self.hub.set_view(watch, cells)
