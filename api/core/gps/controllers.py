"""Courier GPS ingest over WebSocket (``/ws/courier``) and HTTP batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import msgspec
from litestar import Request, WebSocket, post, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from redis.exceptions import RedisError

from api.auth import IdentityDep, Role, identity_of, roles
from api.core.gps.ingest import Verdict
from api.core.services import CoreServices
from api.core.ws.fastws import FastLane, lane_of
from api.problems import Problem
from geo.fixes import Fix, RejectReason, decode_fix, decode_fixes

log = logging.getLogger("homechef.gps")


class FixBatch(msgspec.Struct, frozen=True):
    fixes: msgspec.Raw


class Rejection(msgspec.Struct, frozen=True):
    index: int
    reason: str


class BatchAccepted(msgspec.Struct, frozen=True):
    accepted: int
    rejected: list[Rejection]


class _Envelope(msgspec.Struct, frozen=True):
    type: str
    payload: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


_envelope = msgspec.json.Decoder(_Envelope)
_batch = msgspec.json.Decoder(FixBatch)
_encoder = msgspec.json.Encoder()


def _core(state: State) -> CoreServices:
    core: CoreServices = state.core
    return core


@post("/api/v1/delivery/locations", guards=[roles(Role.DELIVERY)], status_code=202,
      summary="Upload a batch of the caller's GPS fixes (up to INGEST_MAX_BATCH)")
async def post_locations(
    request: Request[Any, Any, Any], state: State, identity: IdentityDep
) -> BatchAccepted:
    core = _core(state)
    body = await request.body()
    try:
        batch = _batch.decode(body)
    except msgspec.DecodeError as exc:
        raise Problem(400, f'body must be {{"fixes": [...]}}: {exc}', code="malformed") from None
    items = decode_fixes(batch.fixes)
    if isinstance(items, RejectReason):
        raise Problem(400, '"fixes" must be a JSON array of fixes', code="malformed")
    if not items:
        raise Problem(422, '"fixes" is empty', code="empty_batch")
    limit = core.settings.ingest.max_batch
    if len(items) > limit:
        raise Problem(413, f"at most {limit} fixes per request, got {len(items)}",
                      code="batch_too_large")
    verdict = await core.ingest.submit(identity.user_id, items, wait_acks=True)
    return BatchAccepted(
        accepted=verdict.accepted,
        rejected=[Rejection(i, r.value) for i, r in verdict.rejected],
    )


def _error(reason: str, **extra: Any) -> bytes:
    return _encoder.encode({"type": "ERROR", "payload": {"reason": reason, **extra}})


@websocket("/ws/courier", guards=[roles(Role.DELIVERY)])
async def courier_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """A courier device: fixes in; rejections, offers and assignment updates out."""
    core = _core(socket.app.state)
    courier_id = identity_of(socket).user_id
    await socket.accept()
    core.ingest.last_fixes.forget(courier_id)  # another process may have newer state
    outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=core.settings.ws.queue_size)
    writer = asyncio.create_task(_write(socket, outbox))
    courier_hub = socket.app.state.tracking.couriers  # offers and assignment updates out
    courier_hub.attach(courier_id, outbox)
    try:
        # Re-send an open offer on every (re)connect: a push made while the device was away
        # is lost. Attached first, so a newer offer still arrives by push (maybe both).
        with contextlib.suppress(Exception):  # best effort, like every push
            offer = await core.dispatch.open_offer(courier_id)
            if offer is not None:
                outbox.put_nowait(core.dispatch.offer_message(offer))
        lane = lane_of(socket.scope)
        if lane is not None:
            await _receive_fast(socket, lane, core, courier_id, outbox)
        while True:
            raw = await socket.receive_data(mode="text")
            for message in await _handle(core, courier_id, raw):
                with contextlib.suppress(asyncio.QueueFull):  # a flooding client loses errors
                    outbox.put_nowait(message)
    except WebSocketDisconnect:
        pass
    finally:
        courier_hub.detach(courier_id, outbox)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


_MAX_WAITING = 64
"""Device messages a fast-lane socket holds for the slow path before it stops reading."""


async def _receive_fast(socket: WebSocket[Any, Any, Any], lane: FastLane,
                        core: CoreServices, courier_id: str,
                        outbox: asyncio.Queue[bytes]) -> None:
    """Take text messages in the fast lane's callback and handle them there when nothing
    needs awaiting (`_handle_now`: a fix of a courier whose last fix is cached). The rest
    (the first fix after connecting, a fix while an HTTP batch of the same courier holds
    its lock) wait, in order, for this task; later messages queue behind them. Returns when
    the socket is gone, by raising `WebSocketDisconnect` (binary messages take the ASGI
    path as without a lane)."""
    waiting: deque[bytes] = deque()
    wake = asyncio.Event()

    def reply(messages: list[bytes]) -> None:
        for message in messages:
            with contextlib.suppress(asyncio.QueueFull):  # a flooding client loses errors
                outbox.put_nowait(message)

    def on_text(raw: bytes) -> None:
        if not waiting:
            replies = _handle_now(core, courier_id, raw)
            if replies is not None:
                reply(replies)
                return
        waiting.append(raw)
        wake.set()
        if len(waiting) >= _MAX_WAITING:
            lane.pause_reading()

    async def slow_path() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while waiting:
                reply(await _handle(core, courier_id, waiting[0]))
                waiting.popleft()
            lane.resume_reading()

    async def asgi_path() -> None:
        while True:
            raw = await socket.receive_data(mode="text")
            reply(await _handle(core, courier_id, raw))

    lane.receive_text(on_text)
    tasks = [asyncio.create_task(asgi_path()), asyncio.create_task(slow_path())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # the disconnect, or a failure of either path, as without a lane
    finally:
        lane.receive_text(None)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write(socket: WebSocket[Any, Any, Any], outbox: asyncio.Queue[bytes]) -> None:
    while True:
        message = await outbox.get()
        await socket.send_data(message.decode(), mode="text")


def _parse(core: CoreServices, raw: str | bytes) -> tuple[_Envelope | None, Any]:
    """(envelope, its fixes) of a fix message, or (None, the replies) of any other."""
    try:
        env = _envelope.decode(raw)
    except msgspec.DecodeError:
        return None, [_error(RejectReason.MALFORMED.value, detail="expected {type, payload}")]
    items: list[Fix | RejectReason]
    if env.type == "LOCATION":
        items = [decode_fix(env.payload)]
    elif env.type == "LOCATIONS":
        decoded = decode_fixes(env.payload)
        if isinstance(decoded, RejectReason):
            return None, [_error(decoded.value, detail="LOCATIONS payload must be an array")]
        if len(decoded) > core.settings.ingest.max_batch:
            return None, [_error("batch_too_large", limit=core.settings.ingest.max_batch)]
        items = decoded
    elif env.type == "PING":
        return None, [_encoder.encode({"type": "PONG"})]
    else:
        return None, [_error("unknown_type", detail=f"unknown message type {env.type!r}")]
    return env, items


def _replies(env: _Envelope, verdict: Verdict) -> list[bytes]:
    if env.type == "LOCATION":
        return [_error(r.value) for _, r in verdict.rejected]
    return [_error(r.value, index=i) for i, r in verdict.rejected]


def _handle_now(core: CoreServices, courier_id: str, raw: bytes) -> list[bytes] | None:
    """`_handle` without awaiting, or None when it would have to await."""
    env, items = _parse(core, raw)
    if env is None:
        replies: list[bytes] = items
        return replies
    verdict = core.ingest.submit_now(courier_id, items)
    return None if verdict is None else _replies(env, verdict)


async def _handle(core: CoreServices, courier_id: str, raw: str | bytes) -> list[bytes]:
    env, items = _parse(core, raw)
    if env is None:
        replies: list[bytes] = items
        return replies
    try:
        verdict = await core.ingest.submit(courier_id, items, wait_acks=False)
    except (RedisError, TimeoutError) as exc:
        # The courier's last fix could not be read (Redis down, or its pool exhausted while
        # the loop lags under overload): nothing was accepted. The socket stays open and the
        # device's next fix is tried afresh, instead of the handler dying (close 4500).
        log.warning("fix of %s not accepted, live index unavailable: %r", courier_id, exc)
        return [_error("unavailable", detail="live index unavailable; fix not accepted")]
    return _replies(env, verdict)
