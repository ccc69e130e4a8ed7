"""Event messages on NATS: one msgspec Struct each, a tagged union by ``type``, versioned.

Times are epoch milliseconds UTC (``*_ms``); money is integer cents.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class LatLng(msgspec.Struct, frozen=True, array_like=True):
    lat: float
    lng: float


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    v: int = 1
    """Schema version of this event type; consumers reject versions they do not know."""


# -- order.* (commerce → core) -----------------------------------------------------------

OrderStatus = Literal[
    "pending", "accepted", "preparing", "ready", "picked_up", "delivering", "delivered",
    "cancelled", "refunded",
]


class OrderLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an order as the chef's NEW_ORDER shows it."""

    menu_item_id: str
    name: str
    quantity: int
    price_cents: int
    notes: str = ""


class DeliveryDetails(msgspec.Struct, frozen=True, kw_only=True):
    """What a courier needs to decide on and carry out a delivery, as commerce knows it.

    Commerce sends it with every order event so core can show it to couriers without reading
    commerce's tables. Only what a courier may see: the customer's first name, and their
    phone masked (commerce never sends the number itself).
    """

    pickup_address: str = ""
    dropoff_address: str = ""
    chef_name: str = ""
    """The chef's business name."""
    customer_name: str = ""
    """The customer's first name only."""
    customer_phone_masked: str = ""
    """E.g. ``•••• 4567``; empty when the customer gave no phone."""
    instructions: str = ""
    items_count: int = 0
    payout_cents: int = 0
    """The courier's pay for this job: the delivery fee plus the tip."""


class OrderCreated(_Event, frozen=True, kw_only=True, tag="order.created"):
    """A paid order: it now reaches the chef and dispatch."""

    order_id: str
    order_number: str
    customer_id: str
    chef_id: str
    """The chef *profile* id."""
    pickup: LatLng
    dropoff: LatLng
    total_cents: int
    created_at_ms: int
    chef_user_id: str = ""
    """The chef's user id (the ``sub`` of the chef's tokens)."""
    items: tuple[OrderLine, ...] = ()
    details: DeliveryDetails | None = None
    """For the courier (None from older producers)."""
    scheduled_for_ms: int | None = None
    """A scheduled order's delivery slot; None: as soon as possible."""
    start_cooking_at_ms: int | None = None
    """When the kitchen should start a scheduled order (slot - ride - prep)."""


class OrderStatusChanged(_Event, frozen=True, kw_only=True, tag="order.status"):
    """An order moved to ``status``. Dispatch starts on ``accepted`` (paid orders only)."""

    order_id: str
    order_number: str
    customer_id: str
    chef_id: str
    status: OrderStatus
    previous_status: OrderStatus | None = None
    at_ms: int
    pickup: LatLng
    dropoff: LatLng
    ready_at_ms: int | None = None
    """When the chef expects the food to be ready (estimated_ready)."""
    promised_at_ms: int | None = None
    """Delivery time promised to the customer (estimated_delivery)."""
    total_cents: int = 0
    item_count: int = 0
    chef_user_id: str = ""
    """The chef's user id (the ``sub`` of the chef's tokens); ``chef_id`` is the profile id."""
    details: DeliveryDetails | None = None
    """For the courier (None from older producers)."""
    scheduled_for_ms: int | None = None
    """A scheduled order's delivery slot (dispatch holds it back until near its ready
    time); None: as soon as possible."""


# -- dispatch.* (core → commerce) ----------------------------------------------------------


class CourierAssigned(_Event, frozen=True, kw_only=True, tag="dispatch.assigned"):
    order_id: str
    courier_id: str
    offer_id: str
    at_ms: int
    eta_pickup_ms: int | None = None


class CourierUnassigned(_Event, frozen=True, kw_only=True, tag="dispatch.unassigned"):
    order_id: str
    courier_id: str
    at_ms: int
    reason: str


class OrderPickedUp(_Event, frozen=True, kw_only=True, tag="dispatch.picked_up"):
    order_id: str
    courier_id: str
    at_ms: int


class OrderDelivering(_Event, frozen=True, kw_only=True, tag="dispatch.delivering"):
    order_id: str
    courier_id: str
    at_ms: int


class OrderDelivered(_Event, frozen=True, kw_only=True, tag="dispatch.delivered"):
    order_id: str
    courier_id: str
    at_ms: int


# -- loc.* (core ingest → indexer, hubs) -----------------------------------------------------


class CourierLocated(_Event, frozen=True, kw_only=True, tag="loc.fix"):
    courier_id: str
    lat: float
    lng: float
    ts: int
    """Device time of the fix, epoch ms UTC."""
    received_ms: int
    """Server time the fix was accepted (fix-to-index latency is measured from here)."""
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    outside_zones: bool = False


class LocFix(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """One fix inside a `CourierLocatedBatch`, as a compact array (trailing defaults omitted)."""

    lat: float
    lng: float
    ts: int
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    outside_zones: bool = False


def _located(courier_id: str, received_ms: int, f: LocFix) -> CourierLocated:
    """One compact fix of a batch or run as the event it stands for."""
    return CourierLocated(courier_id=courier_id, lat=f.lat, lng=f.lng, ts=f.ts,
                          received_ms=received_ms, speed_mps=f.speed_mps,
                          heading_deg=f.heading_deg, accuracy_m=f.accuracy_m,
                          outside_zones=f.outside_zones)


class CourierLocatedBatch(_Event, frozen=True, kw_only=True, tag="loc.batch"):
    """One courier's fixes accepted together (one device message), oldest first.

    Ingest publishes one of these per device message instead of one `CourierLocated` per
    fix: per-message NATS costs (publish, parse, callback) dominated the ingest profile.
    Consumers read both kinds through `decode_locations`.
    """

    courier_id: str
    received_ms: int
    fixes: tuple[LocFix, ...]

    def located(self) -> list[CourierLocated]:
        return [_located(self.courier_id, self.received_ms, f) for f in self.fixes]

    def newest(self) -> CourierLocated | None:
        """The last fix (fixes are in ts order), or None for an empty batch."""
        return _located(self.courier_id, self.received_ms, self.fixes[-1]) if self.fixes else None


class LocRun(msgspec.Struct, frozen=True, array_like=True):
    """One courier's fixes inside a `CourierLocatedMany`, accepted together, oldest first."""

    courier_id: str
    received_ms: int
    fixes: tuple[LocFix, ...]

    def newest(self) -> CourierLocated | None:
        """The run's last fix (fixes are in ts order), or None for an empty run."""
        return _located(self.courier_id, self.received_ms, self.fixes[-1]) if self.fixes else None


class CourierLocatedMany(_Event, frozen=True, kw_only=True, tag="loc.many"):
    """Several couriers' fixes accepted within a few milliseconds in one region.

    Device sockets send one fix per message; publishing each as its own JetStream message
    made NATS and every consumer (indexer, each core's hub) pay per-message costs per fix.
    Ingest coalesces the socket path's fixes into one of these per region every few ms
    (subject `Names.location_batch`).
    """

    runs: tuple[LocRun, ...]

    def newest(self) -> list[CourierLocated]:
        """Each run's newest fix, in message order (a courier may have several runs)."""
        return [fix for run in self.runs if (fix := run.newest()) is not None]


LocationEvent = CourierLocated | CourierLocatedBatch | CourierLocatedMany

OrderEvent = OrderCreated | OrderStatusChanged
DispatchEvent = (
    CourierAssigned | CourierUnassigned | OrderPickedUp | OrderDelivering | OrderDelivered
)
Event = OrderEvent | DispatchEvent | CourierLocated | CourierLocatedBatch | CourierLocatedMany

_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_order_decoder = msgspec.json.Decoder(OrderEvent)
_dispatch_decoder = msgspec.json.Decoder(DispatchEvent)
_location_decoder = msgspec.json.Decoder(CourierLocated)
_locations_decoder = msgspec.json.Decoder(LocationEvent)


def encode(event: _Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> Event:
    return _event_decoder.decode(data)


def decode_order_event(data: bytes) -> OrderEvent:
    return _order_decoder.decode(data)


def decode_dispatch_event(data: bytes) -> DispatchEvent:
    return _dispatch_decoder.decode(data)


def decode_location(data: bytes) -> CourierLocated:
    return _location_decoder.decode(data)


def decode_locations(data: bytes) -> LocationEvent:
    """A message of the LOCATIONS stream: a single fix (older producers), one courier's
    batch (HTTP uploads) or several couriers' fixes (device sockets, coalesced)."""
    return _locations_decoder.decode(data)
