"""Live tracking on core: order, chef and console WebSockets, and the HTTP track snapshot.

- ``/ws/orders/{order_id}`` (the order's customer, its chef, staff): the current status and
  the courier's last location first, then ORDER_STATUS_UPDATE (each with ``id``) and
  DELIVERY_LOCATION (<= 1/s). ``?since=<id>`` replays the status events after ``id`` from
  JetStream instead of the status snapshot, then goes live without gaps or repeats.
- ``/ws/chef`` (chefs): NEW_ORDER when a paid order arrives, status updates of their orders.
- ``/ws/console`` (staff): SUBSCRIBE a viewport (res-7 cells or a bbox); courier positions
  (<= 1/s each), order markers, SUPPLY_DEMAND per cell every 5 s.
- ``GET /api/v1/orders/{order_id}/track``: the order socket's first messages, over HTTP.
- ``POST /api/v1/orders/{order_id}/share`` (the order's customer, admin): a signed, expiring
  link to the public tracking page ``/track/<token>``, which reads
  ``GET /api/v1/track/{token}`` and ``/ws/track/{token}`` (public: the token is the key).

Refusals happen after the handshake, as close codes a browser can read (see
`streams.outbox.CloseCode`): 4400 bad ``since``, 4403 not your order, 4404 no such order.
The handlers adapt transports only; `api.core.tracking.service.Tracking` holds the rules.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.params import FromPath

from api.auth import PUBLIC_OPT_KEY, STAFF, IdentityDep, Role, identity_of, roles
from api.core.deps import TrackingDep
from api.core.dispatch.controllers import state_current
from api.core.tracking.service import (
    Refusal,
    SharedTrack,
    ShareLink,
    TrackingRefused,
    TrackSnapshot,
    parse_since,
)
from api.core.tracking.share import ShareRefusal, ShareRefused
from api.core.ws.sockets import close_socket, closes_on_outage, serve
from api.problems import Problem
from streams.outbox import CloseCode
from streams.wire import ClientMessage

__all__ = ["TrackingController"]

_WATCHERS = (Role.CUSTOMER, Role.CHEF, Role.ADMIN, Role.FLEET_MANAGER)

_CLOSE_CODE = {Refusal.BAD_SINCE: CloseCode.BAD_REQUEST, Refusal.NOT_FOUND: CloseCode.NOT_FOUND,
               Refusal.FORBIDDEN: CloseCode.FORBIDDEN}
_PROBLEM = {Refusal.NOT_FOUND: (404, "order_not_found"), Refusal.FORBIDDEN: (403, "forbidden"),
            Refusal.NOT_ACTIVE: (409, "order_not_active")}
_SHARE_PROBLEM = {ShareRefusal.INVALID: (404, "share_not_found"),
                  ShareRefusal.EXPIRED: (410, "share_expired")}
_SHARE_CLOSE = {ShareRefusal.INVALID: CloseCode.NOT_FOUND, ShareRefusal.EXPIRED: CloseCode.GONE}


class TrackingController(Controller):
    """The order, chef and console sockets (fed by the process's `TrackingHub`) and the
    order's track snapshot over HTTP."""

    @websocket("/ws/orders/{order_id:str}", guards=[roles(*_WATCHERS)])
    @closes_on_outage
    async def order_socket(self, socket: WebSocket[Any, Any, Any], order_id: FromPath[str],
                           tracking: TrackingDep) -> None:
        """One order's status and courier location, for its customer, its chef or staff."""
        who = identity_of(socket)
        await socket.accept()
        try:
            since = parse_since(socket.query_params.get("since"))
            loaded = await tracking.authorize(who, order_id)
        except TrackingRefused as exc:
            await close_socket(socket, _CLOSE_CODE[exc.refusal], exc.refusal.value)
            return
        async with tracking.order_watch(loaded, since) as outbox:
            await serve(socket, outbox, tracking.limits)

    @websocket("/ws/chef", guards=[roles(Role.CHEF)])
    @closes_on_outage
    async def chef_socket(self, socket: WebSocket[Any, Any, Any],
                          tracking: TrackingDep) -> None:
        """NEW_ORDER for every paid order of this chef, then its ORDER_STATUS_UPDATEs."""
        who = identity_of(socket)
        await socket.accept()
        async with tracking.chef_watch(who) as outbox:
            await serve(socket, outbox, tracking.limits)

    @websocket("/ws/console", guards=[roles(*STAFF)])
    @closes_on_outage
    async def console_socket(self, socket: WebSocket[Any, Any, Any],
                             tracking: TrackingDep) -> None:
        """The fleet console: SUBSCRIBE a viewport, then positions, markers and heat in it."""
        await socket.accept()
        async with tracking.console_watch() as watch:

            async def on_message(message: ClientMessage) -> None:
                await tracking.on_console_message(watch, message)

            await serve(socket, watch.outbox, tracking.limits, on_message)

    @get("/api/v1/orders/{order_id:str}/track", guards=[roles(*_WATCHERS), state_current],
         summary="An order's current status and courier location (the order socket's snapshot)")
    async def track_order(self, identity: IdentityDep, order_id: FromPath[str],
                          tracking: TrackingDep) -> TrackSnapshot:
        try:
            return await tracking.snapshot(identity, order_id)
        except TrackingRefused as exc:
            status, code = _PROBLEM[exc.refusal]
            raise Problem(status, exc.refusal.value, code=code) from None

    @post("/api/v1/orders/{order_id:str}/share", guards=[roles(Role.CUSTOMER, Role.ADMIN)],
          status_code=201,
          summary="A link to the order's public tracking page (its customer; while active)")
    async def share_order(self, identity: IdentityDep, order_id: FromPath[str],
                          tracking: TrackingDep, request: Request[Any, Any, Any]) -> ShareLink:
        # Through the gateway the link is on the gateway's origin (the one clients use).
        host = request.headers.get("x-forwarded-host")
        base = (f"{request.headers.get('x-forwarded-proto', request.url.scheme)}://{host}"
                if host else str(request.base_url))
        try:
            return await tracking.share(identity, order_id, base)
        except TrackingRefused as exc:
            status, code = _PROBLEM[exc.refusal]
            raise Problem(status, exc.refusal.value, code=code) from None

    @get("/api/v1/track/{token:str}", opt={PUBLIC_OPT_KEY: True},
         summary="A shared order's status, timeline, chef, courier and ETA (public: the token "
                 "is the key)")
    async def shared_track(self, token: FromPath[str], tracking: TrackingDep) -> SharedTrack:
        try:
            return await tracking.shared_track(token)
        except ShareRefused as exc:
            status, code = _SHARE_PROBLEM[exc.refusal]
            raise Problem(status, exc.refusal.value, code=code) from None

    @websocket("/ws/track/{token:str}", opt={PUBLIC_OPT_KEY: True})
    @closes_on_outage
    async def shared_socket(self, socket: WebSocket[Any, Any, Any], token: FromPath[str],
                            tracking: TrackingDep) -> None:
        """The order socket of a share link: ORDER_STATUS_UPDATE and DELIVERY_LOCATION."""
        await socket.accept()
        try:
            loaded, _ = await tracking.shared(token)
        except ShareRefused as exc:
            await close_socket(socket, _SHARE_CLOSE[exc.refusal], exc.refusal.value)
            return
        async with tracking.order_watch(loaded, None) as outbox:
            await serve(socket, outbox, tracking.limits)
