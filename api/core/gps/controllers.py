"""Courier GPS in: an HTTP batch (``POST /api/v1/delivery/locations``) and the device socket
(``/ws/courier``). Thin handlers over `Ingest` (validation, publishing) and
`api.core.gps.device` (the socket's protocol)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, WebSocket, post, websocket

from api.auth import IdentityDep, Role, identity_of, roles
from api.core.deps import DispatcherDep, IngestDep, SettingsDep, TrackingDep
from api.core.gps import device
from api.core.ws.sockets import closes_on_outage
from api.problems import Problem
from geo.fixes import Fix, RejectReason, decode_fixes

__all__ = ["BatchAccepted", "GpsController", "Rejection"]


class FixBatch(msgspec.Struct, frozen=True):
    fixes: msgspec.Raw


class Rejection(msgspec.Struct, frozen=True):
    index: int
    reason: str


class BatchAccepted(msgspec.Struct, frozen=True):
    accepted: int
    rejected: list[Rejection]


_batch = msgspec.json.Decoder(FixBatch)


def _fixes_of(body: bytes, max_batch: int) -> list[Fix | RejectReason]:
    """The fixes of a ``{"fixes": [...]}`` body: 1 to ``max_batch`` of them, each decoded or
    the reason it is not a fix. Raises `Problem` (400, 413, 422) for a body that is not one."""
    try:
        batch = _batch.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise Problem(400, f'body must be {{"fixes": [...]}}: {exc}', code="malformed") from None
    items = decode_fixes(batch.fixes)
    if isinstance(items, RejectReason):
        raise Problem(400, '"fixes" must be a JSON array of fixes', code="malformed")
    if not items:
        raise Problem(422, '"fixes" is empty', code="empty_batch")
    if len(items) > max_batch:
        raise Problem(413, f"at most {max_batch} fixes per request, got {len(items)}",
                      code="batch_too_large")
    return items


class GpsController(Controller):
    guards = [roles(Role.DELIVERY)]

    @post("/api/v1/delivery/locations", status_code=202,
          summary="Upload a batch of the caller's GPS fixes (up to INGEST_MAX_BATCH)")
    async def post_locations(self, request: Request[Any, Any, Any], identity: IdentityDep,
                             ingest: IngestDep, settings: SettingsDep) -> BatchAccepted:
        items = _fixes_of(await request.body(), settings.ingest.max_batch)
        verdict = await ingest.submit(identity.user_id, items, wait_acks=True)
        return BatchAccepted(accepted=verdict.accepted,
                             rejected=[Rejection(i, r.value) for i, r in verdict.rejected])

    @websocket("/ws/courier")
    @closes_on_outage
    async def courier_socket(self, socket: WebSocket[Any, Any, Any], ingest: IngestDep,
                             dispatcher: DispatcherDep, tracking: TrackingDep,
                             settings: SettingsDep) -> None:
        """A courier device: fixes in; rejections, offers and assignment updates out."""
        link = device.CourierLink(identity_of(socket).user_id, ingest,
                                  max_batch=settings.ingest.max_batch,
                                  max_pending=settings.ingest.socket_pending_max)
        await socket.accept()
        await device.serve(socket, link, hub=tracking.couriers, dispatcher=dispatcher,
                           queue_size=settings.ws.queue_size)
