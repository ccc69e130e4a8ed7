"""Live tracking on core: order, chef and console WebSockets, and the HTTP track snapshot.

- ``/ws/orders/{order_id}`` (the order's customer, its chef, staff): the current status and
  the courier's last location first, then ORDER_STATUS_UPDATE (each with ``id``) and
  DELIVERY_LOCATION (<= 1/s). ``?since=<id>`` replays the status events after ``id`` from
  JetStream instead of the status snapshot, then goes live without gaps or repeats.
- ``/ws/chef`` (chefs): NEW_ORDER when a paid order arrives, status updates of their orders.
- ``/ws/console`` (staff): SUBSCRIBE a viewport (res-7 cells or a bbox); courier positions
  (<= 1/s each), order markers, SUPPLY_DEMAND per cell every 5 s.
- ``GET /api/v1/orders/{order_id}/track``: the order socket's first messages, over HTTP.

Refusals happen after the handshake, as close codes a browser can read (see
`streams.outbox.CloseCode`): 4400 bad ``since``, 4403 not your order, 4404 no such order.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import WebSocket, get, websocket
from litestar.datastructures import State
from litestar.params import FromPath

from api.auth import STAFF, IdentityDep, Role, identity_of, roles
from api.core.tracking.service import Tracking
from api.core.ws.sockets import close_socket, error_message, serve
from api.problems import Problem
from streams.outbox import CloseCode
from streams.viewport import ViewportError, viewport_cells
from streams.wire import (
    ClientMessage,
    DeliveryLocation,
    OrderStatusUpdate,
    Subscribe,
    Subscribed,
    SubscribedPayload,
    encode,
)

log = logging.getLogger("homechef.tracking")

__all__ = [
    "TrackSnapshot",
    "chef_socket",
    "console_socket",
    "handlers",
    "order_socket",
    "track_order",
]

_BAD_ID_CHARS = frozenset(".*> \t\r\n")
_status_decoder = msgspec.json.Decoder(OrderStatusUpdate)
_location_decoder = msgspec.json.Decoder(DeliveryLocation)


class TrackSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What an order socket sends first: its status and, once assigned, the courier."""

    status: OrderStatusUpdate
    location: DeliveryLocation | None = None


def _tracking(state: State) -> Tracking:
    tracking: Tracking = state.tracking
    return tracking


def _valid_order_id(order_id: str) -> bool:
    return 0 < len(order_id) <= 128 and not (_BAD_ID_CHARS & set(order_id))


def _since(socket: WebSocket[Any, Any, Any]) -> int | str | None:
    raw = socket.query_params.get("since")
    if raw is None or raw == "":
        return None
    try:
        since = int(raw)
    except ValueError:
        return "since must be a non-negative integer event id"
    return since if since >= 0 else "since must be a non-negative integer event id"


_WATCHERS = (Role.CUSTOMER, Role.CHEF, Role.ADMIN, Role.FLEET_MANAGER)


@websocket("/ws/orders/{order_id:str}", guards=[roles(*_WATCHERS)])
async def order_socket(socket: WebSocket[Any, Any, Any], order_id: FromPath[str]) -> None:
    """One order's status and courier location, for its customer, its chef or staff."""
    tracking = _tracking(socket.app.state)
    who = identity_of(socket)
    await socket.accept()
    since = _since(socket)
    if isinstance(since, str):
        await close_socket(socket, CloseCode.BAD_REQUEST, since)
        return
    loaded = await tracking.load(order_id) if _valid_order_id(order_id) else None
    if loaded is None:
        await close_socket(socket, CloseCode.NOT_FOUND, "order not found")
        return
    if not await tracking.may_watch(who, loaded.track):
        await close_socket(socket, CloseCode.FORBIDDEN, "not your order")
        return
    hub = tracking.hub
    outbox = hub.new_outbox()
    # Register before reading the stream: live events meanwhile are held, then deduped.
    watch = hub.watch_order(loaded.track, outbox)
    try:
        if since is None:
            # Re-read after registering so an event stored in between is not missed.
            fresh = await tracking.load(order_id) or loaded
            if fresh.seq:
                watch.replay(fresh.seq, fresh.status)
            else:  # known only from the projection (stream expired): no id to resume from
                outbox.push_event(fresh.status)
        else:
            for seq, data in await tracking.replay(order_id, since):
                watch.replay(seq, data)
        track = hub.track(order_id) or loaded.track
        location = await tracking.location_of(track)
        if location is not None:
            outbox.push_state("loc", location)
        watch.go_live()
        await serve(socket, outbox, tracking.limits)
    finally:
        hub.unwatch_order(watch)


@websocket("/ws/chef", guards=[roles(Role.CHEF)])
async def chef_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """NEW_ORDER for every paid order of this chef, then its ORDER_STATUS_UPDATEs."""
    tracking = _tracking(socket.app.state)
    who = identity_of(socket)
    await socket.accept()
    outbox = tracking.hub.new_outbox()
    watch = tracking.hub.watch_chef([who.user_id], outbox)
    try:
        await serve(socket, outbox, tracking.limits)
    finally:
        tracking.hub.unwatch_chef(watch)


@websocket("/ws/console", guards=[roles(*STAFF)])
async def console_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """The fleet console: SUBSCRIBE a viewport, then positions, markers and heat in it."""
    tracking = _tracking(socket.app.state)
    await socket.accept()
    hub = tracking.hub
    outbox = hub.new_outbox()
    watch = hub.watch_console(outbox)

    async def on_message(message: ClientMessage) -> None:
        if not isinstance(message, Subscribe):
            outbox.push_event(error_message("unknown_type", "expected SUBSCRIBE"))
            return
        try:
            cells = viewport_cells(message.payload, tracking.limits.max_view_cells)
        except ViewportError as exc:
            outbox.push_event(error_message(exc.reason, exc.detail))
            return
        outbox.push_event(encode(Subscribed(payload=SubscribedPayload(cells=len(cells)))))
        hub.set_view(watch, cells)

    try:
        await serve(socket, outbox, tracking.limits, on_message)
    finally:
        hub.unwatch_console(watch)


@get("/api/v1/orders/{order_id:str}/track", guards=[roles(*_WATCHERS)],
     summary="An order's current status and courier location (the order socket's snapshot)")
async def track_order(state: State, identity: IdentityDep,
                      order_id: FromPath[str]) -> TrackSnapshot:
    tracking = _tracking(state)
    loaded = await tracking.load(order_id) if _valid_order_id(order_id) else None
    if loaded is None:
        raise Problem(404, "order not found", code="order_not_found")
    if not await tracking.may_watch(identity, loaded.track):
        raise Problem(403, "not your order", code="forbidden")
    status = _status_decoder.decode(loaded.status)
    location = await tracking.location_of(loaded.track)
    return TrackSnapshot(status=status,
                         location=_location_decoder.decode(location) if location else None)



handlers = [order_socket, chef_socket, console_socket, track_order]
"""Route handlers for core_parts."""
