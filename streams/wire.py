"""Messages on the client WebSockets (core → apps and consoles, and the few they send back).

Every message is ``{"type": ..., "payload": {...}}`` as in the seed's §8.2. On the order, chef
and console sockets payload keys are camelCase like the seed's (``orderId``, ``estimatedTime``)
except ``eta_s``, which carries its unit in its name; on the courier device socket
(`CourierMessage`: offers and assignment updates) they are snake_case (``offer_id``,
``expires_at``), as the courier app reads them, and every field is always present.
Status-like messages that can be resumed carry ``id``: the JetStream stream sequence of the
event they came from (send it back as ``?since=<id>`` after a reconnect).

Times on the wire are ISO-8601 UTC strings (``2024-01-01T12:00:00Z``); ``ts`` fields are epoch
milliseconds of the underlying GPS fix (what latency is measured from).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from enum import StrEnum

import msgspec

__all__ = [
    "AssignedBy",
    "CellHeat",
    "ChatMessage",
    "ChatMessagePayload",
    "ChatRead",
    "ChatReadPayload",
    "ClientMessage",
    "CourierChatMessage",
    "CourierChatMessagePayload",
    "CourierChatRead",
    "CourierChatReadPayload",
    "CourierJob",
    "CourierMessage",
    "CourierPosition",
    "CourierPositionPayload",
    "DeliveryLocation",
    "DeliveryLocationPayload",
    "ErrorMessage",
    "ErrorPayload",
    "NewOrder",
    "NewOrderPayload",
    "Offer",
    "OfferExpired",
    "OfferExpiredPayload",
    "OfferPayload",
    "OfferWithdrawn",
    "OfferWithdrawnPayload",
    "OrderAssigned",
    "OrderAssignedPayload",
    "OrderItem",
    "OrderMarker",
    "OrderMarkerPayload",
    "OrderReady",
    "OrderReadyPayload",
    "OrderStatusPayload",
    "OrderStatusUpdate",
    "OrderUnassigned",
    "OrderUnassignedPayload",
    "Ping",
    "Point",
    "Pong",
    "Subscribe",
    "SubscribePayload",
    "Subscribed",
    "SubscribedPayload",
    "SupplyDemand",
    "SupplyDemandPayload",
    "WithdrawReason",
    "decode_client",
    "decode_courier",
    "encode",
    "error_message",
    "eta_text",
    "iso_utc",
]


def iso_utc(ms: int) -> str:
    """Epoch milliseconds as ``2024-01-01T12:00:00Z`` (second precision, like the seed)."""
    return _iso_second(ms // 1000)


@functools.lru_cache(maxsize=256)
def _iso_second(s: int) -> str:
    # Cached: every live location message carries one, and they cluster in the same seconds
    # (strftime was ~2 % of core's CPU in the fan-out profile).
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def eta_text(eta_s: float) -> str:
    """The seed's ETA text: whole minutes rounded up ("1 min", "10 mins")."""
    mins = max(0, math.ceil(eta_s / 60))
    return "1 min" if mins == 1 else f"{mins} mins"


class Point(msgspec.Struct, frozen=True):
    lat: float
    lng: float


class _Payload(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    pass


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


# -- order and chef sockets --------------------------------------------------------------


class OrderStatusPayload(_Payload, frozen=True, kw_only=True):
    order_id: str
    order_number: str = ""
    status: str
    previous_status: str | None = None
    timestamp: str
    estimated_time: str | None = None
    """When the order is promised to arrive (the seed's ``estimatedTime``)."""
    estimated_ready: str | None = None
    scheduled_for: str | None = None
    """A scheduled order's delivery slot (absent: as soon as possible)."""


class OrderStatusUpdate(_Message, frozen=True, kw_only=True, tag="ORDER_STATUS_UPDATE"):
    id: int
    """ORDERS stream sequence of the event: resume after it with ``?since=<id>``."""
    payload: OrderStatusPayload


class DeliveryLocationPayload(_Payload, frozen=True, kw_only=True):
    order_id: str
    delivery_id: str
    """The courier's id (the seed's name)."""
    location: Point
    eta: str
    eta_s: int = msgspec.field(name="eta_s")
    timestamp: str
    ts: int
    """Device time of the fix, epoch ms."""


class DeliveryLocation(_Message, frozen=True, kw_only=True, tag="DELIVERY_LOCATION"):
    payload: DeliveryLocationPayload


class OrderItem(_Payload, frozen=True, kw_only=True):
    menu_item_id: str
    name: str
    quantity: int
    price: float
    price_cents: int
    notes: str = ""


class NewOrderPayload(_Payload, frozen=True, kw_only=True):
    order_id: str
    order_number: str
    items: list[OrderItem] = msgspec.field(default_factory=list)
    total: float
    total_cents: int
    timestamp: str
    scheduled_for: str | None = None
    """A scheduled order's delivery slot (absent: as soon as possible)."""
    start_cooking_at: str | None = None
    """When the kitchen should start a scheduled order."""


class NewOrder(_Message, frozen=True, kw_only=True, tag="NEW_ORDER"):
    id: int
    payload: NewOrderPayload


# -- order chat (order sockets and the courier's device socket) -----------------------------
# Published by commerce after the message or receipt committed to core-plain
# ``<ns>.chat.<order>`` (the courier's device gets `CourierChatMessage` / `CourierChatRead`, the
# same in snake_case): a live copy; the history is commerce's ``/orders/{id}/messages``.


class ChatMessagePayload(_Payload, frozen=True, kw_only=True):
    id: int
    """The message's id in the order's history (receipts name it)."""
    order_id: str
    sender_id: str
    sender_role: str
    """customer, chef, courier or staff."""
    body: str
    created_at: str


class ChatMessage(_Message, frozen=True, kw_only=True, tag="CHAT_MESSAGE"):
    payload: ChatMessagePayload


class ChatReadPayload(_Payload, frozen=True, kw_only=True):
    order_id: str
    reader_id: str
    reader_role: str
    last_read_id: int
    read_at: str


class ChatRead(_Message, frozen=True, kw_only=True, tag="CHAT_READ"):
    """A participant has read the order's chat up to ``lastReadId``."""

    payload: ChatReadPayload


# -- console -----------------------------------------------------------------------------


class CourierPositionPayload(_Payload, frozen=True, kw_only=True):
    courier_id: str
    location: Point
    cell: str
    """Res-7 H3 cell."""
    ts: int
    speed_mps: float | None = msgspec.field(default=None, name="speed_mps")
    heading_deg: float | None = msgspec.field(default=None, name="heading_deg")
    status: str = ""
    """The courier's dispatch state (idle, offered, to_pickup, delivering, offline); empty
    until core has read it (the console colours couriers by it)."""


class CourierPosition(_Message, frozen=True, kw_only=True, tag="COURIER_POSITION"):
    payload: CourierPositionPayload


class OrderMarkerPayload(_Payload, frozen=True, kw_only=True):
    order_id: str
    status: str
    pickup: Point
    dropoff: Point
    cell: str
    """Res-7 H3 cell of the pickup."""
    courier_id: str = ""
    timestamp: str
    promised_ms: int | None = msgspec.field(default=None, name="promised_ms")
    """Delivery time promised to the customer, epoch ms (the console shows late orders)."""


class OrderMarker(_Message, frozen=True, kw_only=True, tag="ORDER_MARKER"):
    payload: OrderMarkerPayload


class CellHeat(msgspec.Struct, frozen=True):
    cell: str
    supply: int
    """Couriers with a fresh fix in the cell."""
    demand: int
    """Open orders (paid, not yet picked up) whose pickup is in the cell."""


class SupplyDemandPayload(_Payload, frozen=True, kw_only=True):
    cells: list[CellHeat]
    timestamp: str


class SupplyDemand(_Message, frozen=True, kw_only=True, tag="SUPPLY_DEMAND"):
    payload: SupplyDemandPayload


class SubscribedPayload(_Payload, frozen=True, kw_only=True):
    cells: int
    """How many res-7 cells the viewport covers."""


class Subscribed(_Message, frozen=True, kw_only=True, tag="SUBSCRIBED"):
    payload: SubscribedPayload


# -- courier device socket (core → courier app) -------------------------------------------
# Pushed by the dispatcher over NATS (``<ns>.courier.<courier_id>``) and relayed by
# `streams.courier_hub.CourierHub`. Payload keys are snake_case and never omitted (``ready_at``
# goes out as null), unlike the camelCase payloads above.


class _CourierPayload(msgspec.Struct, frozen=True, kw_only=True):
    pass


class CourierJob(_CourierPayload, frozen=True, kw_only=True):
    """What a courier needs to decide on a job and carry it out, beside its points.

    Names and addresses come from commerce's order events (core keeps them in its orders
    view); the customer's phone only masked. Distances are straight-line metres, ETAs the
    process's travel model (roads when built) for the courier's vehicle. ``pickup_*``: from
    the courier's last fix to the chef (0 once the food is on board; None without a fix).
    ``dropoff_*``: from the chef to the door, or from the courier once the food is on board.
    """

    pickup_address: str = ""
    dropoff_address: str = ""
    chef_name: str = ""
    customer_name: str = ""
    """First name only."""
    customer_phone_masked: str = ""
    instructions: str = ""
    items_count: int = 0
    payout_cents: int = 0
    """The courier's pay for this job (delivery fee plus tip)."""
    pickup_distance_m: int | None = None
    pickup_eta_s: int | None = None
    dropoff_distance_m: int | None = None
    dropoff_eta_s: int | None = None


class OfferPayload(CourierJob, frozen=True, kw_only=True):
    offer_id: str
    order_id: str
    pickup: Point
    dropoff: Point
    ready_at: int | None
    """Epoch ms UTC when the food is expected ready (None: not known)."""
    expires_at: int
    """Epoch ms UTC after which the offer is withdrawn."""
    stacked: bool = False
    """The courier already holds another order: this one would be carried alongside it."""


class Offer(_Message, frozen=True, kw_only=True, tag="OFFER"):
    """An order offered to the courier: accept or decline it over HTTP before it expires."""

    payload: OfferPayload


class OfferExpiredPayload(_CourierPayload, frozen=True, kw_only=True):
    offer_id: str
    order_id: str


class OfferExpired(_Message, frozen=True, kw_only=True, tag="OFFER_EXPIRED"):
    """The courier did not answer the offer in time; the order goes to the next round."""

    payload: OfferExpiredPayload


class WithdrawReason(StrEnum):
    CANCELLED = "cancelled"
    """The order was cancelled (or refunded)."""


class OfferWithdrawnPayload(_CourierPayload, frozen=True, kw_only=True):
    order_id: str
    reason: WithdrawReason


class OfferWithdrawn(_Message, frozen=True, kw_only=True, tag="OFFER_WITHDRAWN"):
    """The order offered to, or held by, the courier is no longer to be delivered."""

    payload: OfferWithdrawnPayload


class OrderReadyPayload(_CourierPayload, frozen=True, kw_only=True):
    order_id: str
    ready_at: int
    """Epoch ms UTC when the chef marked the food ready."""


class OrderReady(_Message, frozen=True, kw_only=True, tag="ORDER_READY"):
    """The food of an order the courier holds is ready for pickup."""

    payload: OrderReadyPayload


class AssignedBy(StrEnum):
    FLEET = "fleet"
    """A fleet manager assigned the order (no offer was made)."""


class OrderAssignedPayload(_CourierPayload, frozen=True, kw_only=True):
    order_id: str
    by: AssignedBy
    pickup: Point
    dropoff: Point


class OrderAssigned(_Message, frozen=True, kw_only=True, tag="ASSIGNED"):
    """The courier now holds the order without having been offered it."""

    payload: OrderAssignedPayload


class OrderUnassignedPayload(_CourierPayload, frozen=True, kw_only=True):
    order_id: str


class OrderUnassigned(_Message, frozen=True, kw_only=True, tag="UNASSIGNED"):
    """A fleet manager took the order away from the courier."""

    payload: OrderUnassignedPayload


class CourierChatMessagePayload(_CourierPayload, frozen=True, kw_only=True):
    """`ChatMessagePayload` with this socket's snake_case keys."""

    id: int
    order_id: str
    sender_id: str
    sender_role: str
    body: str
    created_at: str


class CourierChatMessage(_Message, frozen=True, kw_only=True, tag="CHAT_MESSAGE"):
    """A message in the chat of one of the courier's orders (commerce publishes it)."""

    payload: CourierChatMessagePayload


class CourierChatReadPayload(_CourierPayload, frozen=True, kw_only=True):
    order_id: str
    reader_id: str
    reader_role: str
    last_read_id: int
    read_at: str


class CourierChatRead(_Message, frozen=True, kw_only=True, tag="CHAT_READ"):
    payload: CourierChatReadPayload


CourierMessage = (
    Offer | OfferExpired | OfferWithdrawn | OrderReady | OrderAssigned | OrderUnassigned
    | CourierChatMessage | CourierChatRead
)
"""What core pushes to a courier's device socket."""


# -- both ways ---------------------------------------------------------------------------


class ErrorPayload(_Payload, frozen=True, kw_only=True):
    reason: str
    detail: str = ""
    index: int | None = None
    """Which fix of a courier's LOCATIONS batch was rejected."""
    limit: int | None = None
    """The limit a courier's LOCATIONS batch went over (``batch_too_large``)."""
    from_ts: int | None = None
    """``not_stored``: the first and last ``ts`` of the courier's fixes to send again."""
    to_ts: int | None = None


class ErrorMessage(_Message, frozen=True, kw_only=True, tag="ERROR"):
    payload: ErrorPayload


class Ping(_Message, frozen=True, kw_only=True, tag="PING"):
    """Heartbeat; the other side answers PONG. Any client message counts as alive."""


class Pong(_Message, frozen=True, kw_only=True, tag="PONG"):
    pass


class SubscribePayload(msgspec.Struct, frozen=True, kw_only=True):
    cells: list[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    """``[min_lng, min_lat, max_lng, max_lat]``."""


class Subscribe(_Message, frozen=True, kw_only=True, tag="SUBSCRIBE"):
    payload: SubscribePayload


ClientMessage = Subscribe | Ping | Pong

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientMessage)
_courier_decoder = msgspec.json.Decoder(CourierMessage)


def encode(message: _Message) -> bytes:
    return _encoder.encode(message)


def error_message(reason: str, detail: str = "") -> bytes:
    """An encoded ERROR (``detail`` omitted when empty)."""
    return encode(ErrorMessage(payload=ErrorPayload(reason=reason, detail=detail)))


def decode_client(data: str | bytes) -> ClientMessage:
    """Raises msgspec.DecodeError (malformed, nested too deeply, or unknown type)."""
    try:
        return _client_decoder.decode(data)
    except RecursionError:  # msgspec's nesting limit: the client's mistake, like bad JSON
        raise msgspec.DecodeError("JSON is nested too deeply") from None


def decode_courier(data: str | bytes) -> CourierMessage:
    """A courier socket message (what a courier app reads). Raises msgspec.DecodeError."""
    try:
        return _courier_decoder.decode(data)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None
