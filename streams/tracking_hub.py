"""Order, chef and console sockets of this process, fed by NATS: the tracking hub.

`TrackingHub` follows the ORDERS and DISPATCH streams with `streams.follow.follow_stream` (gap
free across NATS reconnects) and, while a console or an order socket here needs them, courier
fixes with a plain subscription on ``<ns>.loc.>`` (losing a fix in a disconnect is harmless:
the next one supersedes it; a process nobody watches through decodes none), and routes every
message to the sockets of this process that want it through their `Outbox` (see
streams/outbox.py): the NATS side never awaits a socket. It holds no Litestar or socket
objects, only outboxes and plain state, so it is tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

import h3
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from geo.cells import HEAT_RES
from geo.travel import HaversineTravelModel, TravelModel, Vehicle
from routing.eta import delivery_eta_s
from streams.catalog import DISPATCH, ORDERS, Names
from streams.events import (
    CourierAssigned,
    CourierLocated,
    CourierLocatedBatch,
    CourierLocatedMany,
    CourierUnassigned,
    DispatchEvent,
    OrderCreated,
    OrderDelivered,
    OrderDelivering,
    OrderEvent,
    OrderPickedUp,
    OrderStatus,
    OrderStatusChanged,
    decode_dispatch_event,
    decode_locations,
    decode_order_event,
)
from streams.follow import Cursor, Start, follow_stream
from streams.jetstream import raise_if_cancelling
from streams.outbox import Outbox, Throttle
from streams.wire import (
    CellHeat,
    CourierPosition,
    CourierPositionPayload,
    DeliveryLocation,
    DeliveryLocationPayload,
    NewOrder,
    NewOrderPayload,
    OrderItem,
    OrderMarker,
    OrderMarkerPayload,
    OrderStatusPayload,
    OrderStatusUpdate,
    Point,
    SupplyDemand,
    SupplyDemandPayload,
    encode,
    eta_text,
    iso_utc,
)

__all__ = [
    "ChefWatch",
    "ConsoleWatch",
    "HubLimits",
    "OrderTrack",
    "OrderWatch",
    "TrackingHub",
    "status_message",
    "track_of",
]

log = logging.getLogger("homechef.streams.tracking_hub")

OPEN_STATUSES: frozenset[OrderStatus] = frozenset({"pending", "accepted", "preparing", "ready"})
"""Orders waiting for pickup: they count as demand at their chef's cell."""
CLOSED_STATUSES: frozenset[OrderStatus] = frozenset({"delivered", "cancelled", "refunded"})
ON_BOARD_STATUSES: frozenset[OrderStatus] = frozenset({"picked_up", "delivering"})


class HubLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds and intervals of the hubs and their sockets (every one finite)."""

    max_event_bytes: int = 256 * 1024
    """Unsent event backlog (status, offers, new orders) per socket before it is closed 4008."""
    max_state_slots: int = 10_000
    """Coalesced state messages (one per courier/order in view) held per socket."""
    location_interval_s: float = 1.0
    """At most one position per courier (console) and per order (customer) per interval."""
    heat_interval_s: float = 5.0
    """Supply/demand per res-7 cell in view is sent this often."""
    tick_s: float = 0.1
    """How often held (throttled) positions are released."""
    courier_stale_s: float = 60.0
    """A courier without a fix for this long no longer counts as supply."""
    status_interval_s: float = 1.0
    """How often couriers' dispatch states are re-read for consoles (their marker colour)."""
    max_view_cells: int = 5_000
    """Largest console viewport, in res-7 cells (~5 km² each)."""
    ping_interval_s: float = 20.0
    """The server sends PING this often on every client socket."""
    idle_timeout_s: float = 60.0
    """A socket silent (no message, not even PONG) for this long is closed 4408."""
    vehicle: Vehicle = Vehicle.BIKE
    """Vehicle assumed for an ETA when the courier's is not known (`set_courier_vehicles`)."""
    fixes_linger_s: float = 30.0
    """Couriers' fixes are still taken this long after the last socket that needed them
    left (a console reloading its page does not start over from the live index)."""



class OrderTrack(msgspec.Struct, kw_only=True):
    """What the hub knows about an order: enough for markers, ETAs and ownership."""

    order_id: str
    order_number: str = ""
    customer_id: str = ""
    chef_id: str = ""
    """The chef's profile id."""
    chef_user_id: str = ""
    """The chef's user id (what chef tokens carry); empty in events from before v1.1."""
    status: OrderStatus = "pending"
    pickup: Point | None = None
    dropoff: Point | None = None
    ready_at_ms: int | None = None
    promised_at_ms: int | None = None
    courier_id: str = ""
    updated_ms: int = 0


class OrderWatch:
    """One order socket: its outbox and the last event sequence it was sent."""

    __slots__ = ("_held", "last_seq", "order_id", "outbox", "replaying")

    def __init__(self, order_id: str, outbox: Outbox) -> None:
        self.order_id = order_id
        self.outbox = outbox
        self.last_seq = 0
        self.replaying = True
        self._held: list[tuple[int, bytes]] = []

    def offer(self, seq: int, data: bytes) -> None:
        """A live event: held while the snapshot/replay is being sent, deduped by sequence."""
        if self.replaying:
            self._held.append((seq, data))
        elif seq > self.last_seq:
            self.last_seq = seq
            self.outbox.push_event(data)

    def replay(self, seq: int, data: bytes) -> None:
        """An event read back from the stream (snapshot or ``since`` replay)."""
        if seq > self.last_seq:
            self.last_seq = seq
            self.outbox.push_event(data)

    def go_live(self) -> None:
        """End of replay: release held live events newer than what was replayed."""
        held, self._held = self._held, []
        self.replaying = False
        for seq, data in sorted(held, key=lambda h: h[0]):
            self.offer(seq, data)


class ChefWatch:
    __slots__ = ("chef_keys", "outbox")

    def __init__(self, chef_keys: frozenset[str], outbox: Outbox) -> None:
        self.chef_keys = chef_keys
        """Ids that name this chef in events (its user id)."""
        self.outbox = outbox


class ConsoleWatch:
    __slots__ = ("cells", "outbox")

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.cells: frozenset[str] = frozenset()


FleetLoader = Callable[[], Awaitable[Iterable[tuple[str, float, float, int]]]]
"""Every fresh courier's last fix as (courier id, lat, lng, ts ms), from the live index."""


class _Fix(msgspec.Struct):
    lat: float
    lng: float
    ts: int
    cell: str | None
    """Its heat cell; None until asked (`TrackingHub._cell`): with no console viewing cells,
    a fix is kept without one (every process's hub takes every fix)."""
    seen_s: float


def status_message(event: OrderStatusChanged | OrderCreated, seq: int) -> bytes:
    """The seed's ORDER_STATUS_UPDATE for an order event (order.created reads as pending)."""
    scheduled_for = (iso_utc(event.scheduled_for_ms)
                     if event.scheduled_for_ms is not None else None)
    if isinstance(event, OrderCreated):
        payload = OrderStatusPayload(
            order_id=event.order_id, order_number=event.order_number, status="pending",
            timestamp=iso_utc(event.created_at_ms), scheduled_for=scheduled_for)
    else:
        payload = OrderStatusPayload(
            order_id=event.order_id, order_number=event.order_number, status=event.status,
            previous_status=event.previous_status, timestamp=iso_utc(event.at_ms),
            estimated_time=(iso_utc(event.promised_at_ms)
                            if event.promised_at_ms is not None else None),
            estimated_ready=(iso_utc(event.ready_at_ms)
                             if event.ready_at_ms is not None else None),
            scheduled_for=scheduled_for)
    return encode(OrderStatusUpdate(id=seq, payload=payload))


def track_of(event: OrderEvent) -> OrderTrack:
    track = OrderTrack(order_id=event.order_id, order_number=event.order_number,
                       customer_id=event.customer_id, chef_id=event.chef_id,
                       chef_user_id=event.chef_user_id,
                       pickup=Point(event.pickup.lat, event.pickup.lng),
                       dropoff=Point(event.dropoff.lat, event.dropoff.lng))
    if isinstance(event, OrderStatusChanged):
        track.status = event.status
        track.ready_at_ms = event.ready_at_ms
        track.promised_at_ms = event.promised_at_ms
        track.updated_ms = event.at_ms
    else:
        track.updated_ms = event.created_at_ms
    return track


class TrackingHub:
    """Order, chef and console fan-out for one process."""

    def __init__(self, names: Names, limits: HubLimits | None = None, *,
                 clock_ms: Callable[[], int],
                 travel: TravelModel | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``clock_ms``: wall-clock epoch ms (ETAs, heat timestamps); ``monotonic``: seconds,
        for throttles and staleness."""
        self.names = names
        self.limits = limits or HubLimits()
        self.travel: TravelModel = travel or HaversineTravelModel()
        self._fallback: TravelModel = HaversineTravelModel()
        """An ETA always exists: where `travel` (roads) cannot connect the courier (off the
        map: infinite), the straight-line estimate is sent instead."""
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self._order_watches: dict[str, set[OrderWatch]] = {}
        self._vehicles: dict[str, Vehicle] = {}
        self._tracks: dict[str, OrderTrack] = {}
        """Orders watched by a socket here (ETA inputs), kept current from the streams."""
        self._courier_orders: dict[str, set[str]] = {}
        self._chef_watches: dict[str, set[ChefWatch]] = {}
        self._console_by_cell: dict[str, set[ConsoleWatch]] = {}
        self._consoles: set[ConsoleWatch] = set()
        self._fixes: dict[str, _Fix] = {}
        self._open: dict[str, OrderTrack] = {}
        """Every open order (paid, not delivered/cancelled), for console markers and demand."""
        self._throttle: Throttle[CourierLocated] = Throttle(self.limits.location_interval_s)
        self.ready = asyncio.Event()
        """Set once the order streams are being followed (sockets may rely on live events)."""
        self._cursors = {"orders": Cursor(), "dispatch": Cursor()}
        """Kept across restarts of `run`, so a restarted hub resumes without a gap."""
        self.location_messages = 0
        self.fix_messages = 0
        """LOCATIONS messages taken (decoded) by this hub."""
        self._courier_status: dict[str, str] = {}
        """Couriers' dispatch states as last read from the store (`set_courier_statuses`)."""
        self.load_fleet: FleetLoader | None = None
        """Where the fleet's positions are read when fixes start being taken (`run`)."""
        self._watchers_changed = asyncio.Event()
        self._taking_fixes = asyncio.Event()
        """Set while subscribed to couriers' fixes, once the fleet's positions were read."""
        self._follow_running = False

    # -- outboxes ----------------------------------------------------------------------
    def new_outbox(self) -> Outbox:
        return Outbox(max_event_bytes=self.limits.max_event_bytes,
                      max_slots=self.limits.max_state_slots)

    # -- order sockets -------------------------------------------------------------------
    def watch_order(self, track: OrderTrack, outbox: Outbox) -> OrderWatch:
        """Register an order socket; live events are held until `OrderWatch.go_live`."""
        watch = OrderWatch(track.order_id, outbox)
        watches = self._order_watches.setdefault(track.order_id, set())
        if not watches:
            self._tracks[track.order_id] = track
            if track.courier_id:
                self._courier_orders.setdefault(track.courier_id, set()).add(track.order_id)
        watches.add(watch)
        self._watchers_changed.set()
        return watch

    def unwatch_order(self, watch: OrderWatch) -> None:
        watches = self._order_watches.get(watch.order_id)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._order_watches[watch.order_id]
            track = self._tracks.pop(watch.order_id, None)
            if track is not None and track.courier_id:
                self._unlink(track.courier_id, track.order_id)
            self._watchers_changed.set()

    def track(self, order_id: str) -> OrderTrack | None:
        return self._tracks.get(order_id)

    def _unlink(self, courier_id: str, order_id: str) -> None:
        orders = self._courier_orders.get(courier_id)
        if orders is not None:
            orders.discard(order_id)
            if not orders:
                del self._courier_orders[courier_id]

    # -- chef sockets --------------------------------------------------------------------
    def watch_chef(self, chef_keys: Iterable[str], outbox: Outbox) -> ChefWatch:
        watch = ChefWatch(frozenset(k for k in chef_keys if k), outbox)
        for key in watch.chef_keys:
            self._chef_watches.setdefault(key, set()).add(watch)
        return watch

    def chef_connected(self, chef_key: str) -> bool:
        """A socket of the chef (by its user id) is watching here."""
        return chef_key in self._chef_watches

    def unwatch_chef(self, watch: ChefWatch) -> None:
        for key in watch.chef_keys:
            watches = self._chef_watches.get(key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._chef_watches[key]

    def _chef_outboxes(self, event: OrderEvent) -> set[ChefWatch]:
        """The chef's sockets: by ``chef_user_id``, or ``chef_id`` in older events."""
        return self._chef_watches.get(event.chef_user_id or event.chef_id, set())

    # -- console sockets -----------------------------------------------------------------
    def watch_console(self, outbox: Outbox) -> ConsoleWatch:
        watch = ConsoleWatch(outbox)
        self._consoles.add(watch)
        self._watchers_changed.set()
        return watch

    def set_view(self, watch: ConsoleWatch, cells: Iterable[str]) -> None:
        """Replace the console's viewport and send it what is in view now."""
        new = frozenset(cells)
        self._move_view(watch, new)
        self._show_couriers(watch, self._fixes)
        for track in self._open.values():
            if track.pickup is not None and self._heat_cell(track.pickup) in new:
                watch.outbox.push_state(f"o:{track.order_id}", self._marker(track))
        watch.outbox.push_state("heat", self._heat_message(watch, *self._heat_counts()))

    def _show_couriers(self, watch: ConsoleWatch, couriers: Iterable[str]) -> None:
        """Send the console the kept position of each of ``couriers`` in its view."""
        fixes, cells = self._fixes, watch.cells
        for courier_id in couriers:
            fix = fixes.get(courier_id)
            if fix is not None and (cell := self._cell(fix)) in cells:
                watch.outbox.push_state(f"c:{courier_id}", self._position_message(
                    courier_id, fix.lat, fix.lng, fix.ts, cell, None, None))

    def _move_view(self, watch: ConsoleWatch, new: frozenset[str]) -> None:
        for cell in watch.cells - new:
            viewers = self._console_by_cell.get(cell)
            if viewers is not None:
                viewers.discard(watch)
                if not viewers:
                    del self._console_by_cell[cell]
        for cell in new - watch.cells:
            self._console_by_cell.setdefault(cell, set()).add(watch)
        watch.cells = new

    def unwatch_console(self, watch: ConsoleWatch) -> None:
        self._move_view(watch, frozenset())
        self._consoles.discard(watch)
        self._watchers_changed.set()

    @property
    def has_consoles(self) -> bool:
        return bool(self._consoles)

    @property
    def has_order_watches(self) -> bool:
        return bool(self._order_watches)

    @property
    def wants_fixes(self) -> bool:
        """A socket here needs couriers' fixes: a console (positions, heat) or an order
        (its courier's location)."""
        return bool(self._consoles or self._order_watches)

    def set_courier_vehicles(self, vehicles: Mapping[str, Vehicle]) -> None:
        """Take couriers' vehicles (the dispatch store's): ETAs ride each courier's own."""
        self._vehicles.update(vehicles)

    def set_courier_statuses(self, statuses: dict[str, str]) -> int:
        """Take couriers' dispatch states (the store's status hash); consoles viewing a courier
        whose state changed get its position again with the new state. Returns how many
        changed."""
        changed = 0
        known = self._courier_status
        for cid, status in statuses.items():
            if known.get(cid) == status:
                continue
            known[cid] = status
            changed += 1
            fix = self._fixes.get(cid)
            if fix is None or not self._console_by_cell:
                continue
            cell = self._cell(fix)
            viewers = self._console_by_cell.get(cell)
            if viewers:
                data = self._position_message(cid, fix.lat, fix.lng, fix.ts, cell, None, None)
                for viewer in viewers:
                    viewer.outbox.push_state(f"c:{cid}", data)
        for cid in [c for c in known if c not in statuses]:
            del known[cid]
        return changed

    # -- order events ----------------------------------------------------------------------
    def on_order_msg(self, msg: Msg) -> None:
        event = decode_order_event(msg.data)
        self.apply_order_event(event, msg.metadata.sequence.stream)

    def apply_order_event(self, event: OrderEvent, seq: int) -> None:
        order_id = event.order_id
        if event.v != 1:
            log.warning("skipping order event v%d for %s", event.v, order_id)
            return
        track = self._tracks.get(order_id)
        fresh = track_of(event)
        if track is not None and isinstance(event, OrderStatusChanged):
            track.status = event.status
            track.ready_at_ms = event.ready_at_ms or track.ready_at_ms
            track.promised_at_ms = event.promised_at_ms or track.promised_at_ms
            track.updated_ms = event.at_ms
        open_track = self._open.get(order_id)
        if fresh.status in CLOSED_STATUSES:
            self._open.pop(order_id, None)
        elif open_track is None:
            self._open[order_id] = fresh
        else:
            if isinstance(event, OrderStatusChanged):
                open_track.status = event.status
                open_track.promised_at_ms = event.promised_at_ms or open_track.promised_at_ms
            open_track.updated_ms = fresh.updated_ms
        marker_track = self._open.get(order_id, fresh)
        self._push_marker(marker_track)

        watches = self._order_watches.get(order_id)
        chefs = self._chef_outboxes(event)
        if isinstance(event, OrderCreated):
            if chefs:
                data = encode(NewOrder(id=seq, payload=NewOrderPayload(
                    order_id=order_id, order_number=event.order_number,
                    items=[OrderItem(menu_item_id=i.menu_item_id, name=i.name,
                                     quantity=i.quantity, price=i.price_cents / 100,
                                     price_cents=i.price_cents, notes=i.notes)
                           for i in event.items],
                    total=event.total_cents / 100, total_cents=event.total_cents,
                    timestamp=iso_utc(event.created_at_ms),
                    scheduled_for=(iso_utc(event.scheduled_for_ms)
                                   if event.scheduled_for_ms is not None else None),
                    start_cooking_at=(iso_utc(event.start_cooking_at_ms)
                                      if event.start_cooking_at_ms is not None else None))))
                for chef in chefs:
                    chef.outbox.push_event(data)
            if not watches:
                return
        if not watches and not chefs:
            return
        data = status_message(event, seq)
        for watch in list(watches or ()):
            watch.offer(seq, data)
        if isinstance(event, OrderStatusChanged):
            for chef in chefs:
                chef.outbox.push_event(data)

    # -- chat ------------------------------------------------------------------------------
    async def _on_chat(self, msg: Msg) -> None:
        self.on_chat_data(msg.subject.rsplit(".", 1)[-1], msg.data)

    def on_chat_data(self, order_id: str, data: bytes) -> None:
        """A chat message or read receipt (already encoded by commerce) to the order's
        sockets here, as an event: never dropped, in arrival order."""
        for watch in self._order_watches.get(order_id, ()):
            watch.outbox.push_event(data)

    def on_dispatch_msg(self, msg: Msg) -> None:
        self.apply_dispatch_event(decode_dispatch_event(msg.data))

    def apply_dispatch_event(self, event: DispatchEvent) -> None:
        order_id = event.order_id
        track = self._tracks.get(order_id)
        open_track = self._open.get(order_id)
        for t in (track, open_track):
            if t is None:
                continue
            if isinstance(event, CourierAssigned):
                if track is t and t.courier_id and t.courier_id != event.courier_id:
                    self._unlink(t.courier_id, order_id)
                t.courier_id = event.courier_id
            elif isinstance(event, CourierUnassigned):
                if t.courier_id == event.courier_id:
                    t.courier_id = ""
            elif isinstance(event, OrderPickedUp):
                t.status = "picked_up"
            elif isinstance(event, OrderDelivering):
                t.status = "delivering"
            elif isinstance(event, OrderDelivered):
                t.status = "delivered"
        if track is not None:
            if isinstance(event, CourierAssigned):
                self._courier_orders.setdefault(event.courier_id, set()).add(order_id)
                fix = self._fixes.get(event.courier_id)
                if fix is not None:
                    self._send_location(track, event.courier_id, Point(fix.lat, fix.lng),
                                        fix.ts)
            elif isinstance(event, CourierUnassigned | OrderDelivered):
                self._unlink(event.courier_id, order_id)
        if open_track is not None:
            if open_track.status in CLOSED_STATUSES:
                self._open.pop(order_id, None)
            self._push_marker(open_track)

    # -- courier fixes ---------------------------------------------------------------------
    async def _on_location(self, msg: Msg) -> None:
        self.on_location_data(msg.data)

    def on_location_data(self, data: bytes) -> None:
        """A LOCATIONS message: a single fix (``loc.fix``), one device batch (``loc.batch``) or
        several couriers' coalesced fixes (``loc.many``)."""
        self.fix_messages += 1
        try:
            event = decode_locations(data)
        except msgspec.DecodeError:
            return
        if isinstance(event, CourierLocatedMany):
            if self._console_by_cell:
                for each in event.newest():
                    self.on_fix(each)
            else:
                self._keep_many(event)
            return
        # A batch arrived at one instant: only its newest fix is worth showing (the throttle
        # would hold back the others anyway).
        fix = event.newest() if isinstance(event, CourierLocatedBatch) else event
        if fix is not None:
            self.on_fix(fix)

    def _keep_many(self, event: CourierLocatedMany) -> None:
        """`on_fix` for each run's newest fix while no console views any cell: a courier no
        customer follows is only kept, without its heat cell (an h3 call per fix, for every
        fix of the fleet in every core process), which `_cell` finds when asked."""
        now_s = self._monotonic()
        fixes, followed = self._fixes, self._courier_orders
        for run in event.runs:
            if not run.fixes:
                continue
            cid, f = run.courier_id, run.fixes[-1]
            if not (-90.0 <= f.lat <= 90.0 and -180.0 <= f.lng <= 180.0):
                continue  # never validated (not from our ingest): `on_fix` drops it too
            if cid in followed and (located := run.newest()) is not None:
                self.on_fix(located)
                continue
            old = fixes.get(cid)
            if old is None:
                fixes[cid] = _Fix(f.lat, f.lng, f.ts, None, now_s)
            elif old.ts <= f.ts:  # reordered: never move a courier backwards
                old.lat, old.lng, old.ts, old.cell, old.seen_s = f.lat, f.lng, f.ts, None, now_s

    @property
    def is_taking_fixes(self) -> bool:
        """Subscribed to couriers' fixes, the fleet's positions read."""
        return self._taking_fixes.is_set()

    async def taking_fixes(self, timeout_s: float = 5.0) -> bool:
        """Wait until couriers' fixes are taken (subscribed, the fleet's positions read), at
        most ``timeout_s``: a socket that registered its watch then sees every fix from
        here on. False when they are not (NATS down; or the hub not running)."""
        if self._taking_fixes.is_set() or not self._follow_running:
            return self._taking_fixes.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._taking_fixes.wait()
        return self._taking_fixes.is_set()

    def take_fleet(self, rows: Iterable[tuple[str, float, float, int]]) -> None:
        """Keep each courier's fix (courier id, lat, lng, ts ms) unless a newer one is kept
        (the live index's positions, read when fixes start being taken), dated as seen when
        it was taken; consoles viewing their cells are sent them."""
        now_s, now_ms = self._monotonic(), self._clock_ms()
        fixes = self._fixes
        taken: list[str] = []
        for cid, lat, lng, ts in rows:
            old = fixes.get(cid)
            if old is not None and old.ts >= ts:
                continue
            fixes[cid] = _Fix(lat, lng, ts, None, now_s - max(0.0, (now_ms - ts) / 1000))
            taken.append(cid)
        if taken and self._console_by_cell:
            for watch in self._consoles:
                self._show_couriers(watch, taken)

    def _cell(self, fix: _Fix) -> str:
        """A kept fix's heat cell, found once."""
        if fix.cell is None:
            fix.cell = str(h3.latlng_to_cell(fix.lat, fix.lng, HEAT_RES))
        return fix.cell

    def on_fix(self, fix: CourierLocated) -> None:
        cid = fix.courier_id
        try:
            cell = h3.latlng_to_cell(fix.lat, fix.lng, HEAT_RES)
        except (ValueError, h3.H3BaseException):
            return
        old = self._fixes.get(cid)
        if old is not None and old.ts > fix.ts:
            return  # reordered: never move a courier backwards
        now_s = self._monotonic()
        if old is None:
            self._fixes[cid] = _Fix(fix.lat, fix.lng, fix.ts, cell, now_s)
        else:
            if self._console_by_cell and (old_cell := self._cell(old)) != cell:
                # Consoles that see the old cell but not the new one see the courier leave.
                leaving = self._console_by_cell.get(old_cell, set()) - self._console_by_cell.get(
                    cell, set())
                if leaving:
                    data = self._position_message(cid, fix.lat, fix.lng, fix.ts, cell,
                                                  fix.speed_mps, fix.heading_deg)
                    for viewer in leaving:
                        viewer.outbox.push_state(f"c:{cid}", data)
            old.lat, old.lng, old.ts, old.cell, old.seen_s = fix.lat, fix.lng, fix.ts, cell, now_s
        if cell not in self._console_by_cell and cid not in self._courier_orders:
            return
        passed = self._throttle.offer(cid, fix, now_s)
        if passed is not None:
            self._emit_fix(passed, cell)

    def _emit_fix(self, fix: CourierLocated, cell: str | None = None) -> None:
        cid = fix.courier_id
        if cell is None:
            current = self._fixes.get(cid)
            cell = self._cell(current) if current is not None else h3.latlng_to_cell(
                fix.lat, fix.lng, HEAT_RES)
        viewers = self._console_by_cell.get(cell)
        if viewers:
            data = self._position_message(cid, fix.lat, fix.lng, fix.ts, cell, fix.speed_mps,
                                          fix.heading_deg)
            key = f"c:{cid}"
            for viewer in viewers:
                viewer.outbox.push_state(key, data)
        for order_id in self._courier_orders.get(cid, ()):
            track = self._tracks.get(order_id)
            if track is not None:
                self._send_location(track, cid, Point(fix.lat, fix.lng), fix.ts)

    def release_held(self) -> None:
        """Send the positions the throttle held back, now that their interval has passed."""
        for fix in self._throttle.due(self._monotonic()):
            self._emit_fix(fix)

    def _send_location(self, track: OrderTrack, courier_id: str, at: Point, ts: int) -> None:
        watches = self._order_watches.get(track.order_id)
        if not watches:
            return
        data = self.location_message(track, courier_id, at, ts)
        if data is None:
            return
        for watch in watches:
            watch.outbox.push_state("loc", data)
        self.location_messages += len(watches)

    def eta_s(self, track: OrderTrack, courier: Point, now_ms: int) -> float | None:
        """Courier's remaining route to the drop (`routing.eta.delivery_eta_s`) by the hub's
        travel model, else (unreachable by road) the straight line, on the courier's vehicle
        (`set_courier_vehicles`; `limits.vehicle` when unknown); None while the drop is
        unknown or neither can time it (a coordinate that is not a number)."""
        if track.dropoff is None:
            return None
        vehicle = self._vehicles.get(track.courier_id, self.limits.vehicle)
        for travel in (self.travel, self._fallback):
            eta = delivery_eta_s(courier, track.dropoff, pickup=track.pickup,
                                 food_on_board=track.status in ON_BOARD_STATUSES,
                                 ready_at_ms=track.ready_at_ms, now_ms=now_ms,
                                 travel=travel, vehicle=vehicle)
            if math.isfinite(eta):
                return eta
        return None

    def location_message(self, track: OrderTrack, courier_id: str, at: Point,
                         ts: int) -> bytes | None:
        """DELIVERY_LOCATION of the order's courier at ``at`` (its fix of time ``ts``), with
        the ETA from now; None while the drop is unknown."""
        eta = self.eta_s(track, at, self._clock_ms())
        if eta is None:
            return None
        return encode(DeliveryLocation(payload=DeliveryLocationPayload(
            order_id=track.order_id, delivery_id=courier_id, location=at,
            eta=eta_text(eta), eta_s=round(eta), timestamp=iso_utc(ts), ts=ts)))

    def _position_message(self, courier_id: str, lat: float, lng: float, ts: int, cell: str,
                          speed: float | None, heading: float | None) -> bytes:
        return encode(CourierPosition(payload=CourierPositionPayload(
            courier_id=courier_id, location=Point(lat, lng), cell=cell, ts=ts,
            speed_mps=speed, heading_deg=heading,
            status=self._courier_status.get(courier_id, ""))))

    # -- markers and heat ------------------------------------------------------------------
    @staticmethod
    def _heat_cell(p: Point) -> str:
        return str(h3.latlng_to_cell(p.lat, p.lng, HEAT_RES))

    def _marker(self, track: OrderTrack) -> bytes:
        assert track.pickup is not None
        assert track.dropoff is not None
        return encode(OrderMarker(payload=OrderMarkerPayload(
            order_id=track.order_id, status=track.status, pickup=track.pickup,
            dropoff=track.dropoff, cell=self._heat_cell(track.pickup),
            courier_id=track.courier_id, timestamp=iso_utc(track.updated_ms),
            promised_ms=track.promised_at_ms)))

    def _push_marker(self, track: OrderTrack) -> None:
        if track.pickup is None or not self._console_by_cell:
            return
        viewers = self._console_by_cell.get(self._heat_cell(track.pickup))
        if viewers:
            data = self._marker(track)
            for viewer in viewers:
                viewer.outbox.push_state(f"o:{track.order_id}", data)

    def _heat_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        now_s = self._monotonic()
        stale = self.limits.courier_stale_s
        supply: dict[str, int] = {}
        for cid, fix in list(self._fixes.items()):
            if now_s - fix.seen_s > stale:
                del self._fixes[cid]
                continue
            cell = self._cell(fix)
            supply[cell] = supply.get(cell, 0) + 1
        demand: dict[str, int] = {}
        if not self._consoles:
            return supply, demand
        for track in self._open.values():
            if track.status in OPEN_STATUSES and track.pickup is not None:
                cell = self._heat_cell(track.pickup)
                demand[cell] = demand.get(cell, 0) + 1
        return supply, demand

    def _heat_message(self, watch: ConsoleWatch, supply: dict[str, int],
                      demand: dict[str, int]) -> bytes:
        cells = [CellHeat(c, supply.get(c, 0), demand.get(c, 0)) for c in sorted(watch.cells)
                 if c in supply or c in demand]
        return encode(SupplyDemand(payload=SupplyDemandPayload(
            cells=cells, timestamp=iso_utc(self._clock_ms()))))

    def send_heat(self) -> None:
        """Every heat interval: supply/demand to consoles (and forget stale couriers)."""
        supply, demand = self._heat_counts()
        for watch in self._consoles:
            if watch.cells:
                watch.outbox.push_state("heat", self._heat_message(watch, supply, demand))

    # -- running -----------------------------------------------------------------------------
    async def run(self, nc: NATS, js: JetStreamContext) -> None:
        """Follow orders, dispatch and fixes until cancelled; survives NATS reconnects."""
        names = self.names
        chat_sub = await nc.subscribe(names.chat_all(), cb=self._on_chat)
        started = {"orders": False, "dispatch": False}

        def ready(kind: str) -> Callable[[], None]:
            def mark() -> None:
                started[kind] = True
                if all(started.values()):
                    self.ready.set()
            return mark

        try:
            await asyncio.gather(
                follow_stream(nc, js, stream=names.stream(ORDERS),
                              filter_subject=names.orders_all(), handle=self.on_order_msg,
                              start=Start.LAST_PER_SUBJECT, cursor=self._cursors["orders"],
                              on_ready=ready("orders")),
                follow_stream(nc, js, stream=names.stream(DISPATCH),
                              filter_subject=names.dispatch_all(), handle=self.on_dispatch_msg,
                              start=Start.LAST_PER_SUBJECT, cursor=self._cursors["dispatch"],
                              on_ready=ready("dispatch")),
                self._every(self.limits.tick_s, self.release_held),
                self._every(self.limits.heat_interval_s, self.send_heat),
                self._follow_fixes(nc),
            )
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await chat_sub.unsubscribe()

    async def _follow_fixes(self, nc: NATS) -> None:
        """Take couriers' fixes while a socket here needs them (`wants_fixes`), starting
        from the live index's positions (`load_fleet`), and until ``fixes_linger_s`` after
        the last one left: every process's hub would otherwise decode every fix of the
        fleet, whoever watches."""
        sub = None
        self._follow_running = True
        try:
            while True:
                self._watchers_changed.clear()
                if self.wants_fixes:
                    if sub is None:
                        # Subscribed (and the server told) before the read: a fix published
                        # meanwhile is newer than the read, and `take_fleet` keeps it.
                        sub = await nc.subscribe(self.names.locations_all(),
                                                 cb=self._on_location,
                                                 pending_msgs_limit=200_000)
                        with contextlib.suppress(Exception):
                            await nc.flush(timeout=2)
                        await self._load_fleet()
                        self._taking_fixes.set()
                    await self._watchers_changed.wait()
                    continue
                if sub is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.limits.fixes_linger_s):
                            await self._watchers_changed.wait()
                    if self.wants_fixes:
                        continue
                    self._taking_fixes.clear()
                    await sub.unsubscribe()
                    sub = None
                    self._fixes.clear()  # stale from now on; read again when next needed
                    continue
                await self._watchers_changed.wait()
        finally:
            self._follow_running = False
            self._taking_fixes.clear()
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _load_fleet(self) -> None:
        if self.load_fleet is None:
            return
        try:
            rows = await self.load_fleet()
        except Exception as exc:  # the live index is down: positions come as fixes arrive
            raise_if_cancelling()
            log.warning("fleet positions not read from the live index: %r", exc)
            return
        self.take_fleet(rows)

    @staticmethod
    async def _every(interval_s: float, step: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            raise_if_cancelling()
            try:
                step()
            except Exception:
                log.exception("hub periodic step failed")
