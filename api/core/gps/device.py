"""The courier device socket (``/ws/courier``): fixes in; rejections, offers and assignment
updates out.

Device → core: ``{"type": "LOCATION", "payload": fix}``, ``{"type": "LOCATIONS", "payload":
[fix, ...]}`` (at most ``max_batch``) and ``{"type": "PING"}``. Core → device: ERROR for each
rejected fix (``index`` in a batch) or bad message, ERROR ``not_stored`` (``fromTs``,
``toTs``) for accepted fixes JetStream never stored (send them again), PONG, and whatever the
dispatcher pushes
(`streams.wire.CourierMessage`, through `streams.courier_hub.CourierHub`). The socket stays
open whatever the device sends.

`CourierLink` is one connected device: it validates through `Ingest` and answers; `serve`
runs it on an accepted socket (over the fast lane when the server has one,
api/core/ws/fastws.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from redis.exceptions import RedisError

from api.core.dispatch.service import Dispatcher
from api.core.gps.ingest import Ingest, Verdict
from api.core.ws.fastws import FastLane, lane_of
from geo.fixes import Fix, RejectReason, decode_fix, decode_fixes
from streams.courier_hub import CourierHub
from streams.wire import ErrorMessage, ErrorPayload, Pong, encode

__all__ = ["CourierLink", "not_stored_message", "serve"]

log = logging.getLogger("homechef.gps")

"""Device messages a fast-lane socket holds for the slow path before it stops reading."""


class _Envelope(msgspec.Struct, frozen=True):
    type: str
    payload: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _Location(msgspec.Struct, frozen=True):
    """A well-formed one-fix message, decoded in one pass (the common case)."""

    type: str
    payload: Fix


_envelope = msgspec.json.Decoder(_Envelope)
_location = msgspec.json.Decoder(_Location)
_LOCATION = _Envelope(type="LOCATION")
_PONG = encode(Pong())


def _error(reason: str, *, detail: str = "", index: int | None = None,
           limit: int | None = None) -> bytes:
    return encode(ErrorMessage(payload=ErrorPayload(reason=reason, detail=detail, index=index,
                                                    limit=limit)))


def not_stored_message(first_ts: int, last_ts: int) -> bytes:
    """``ERROR not_stored``: the device's fixes with ``ts`` from ``first_ts`` to ``last_ts``
    were accepted but JetStream never stored them; sending them again is accepted."""
    return encode(ErrorMessage(payload=ErrorPayload(
        reason="not_stored", detail="fixes not stored; send them again",
        from_ts=first_ts, to_ts=last_ts)))


class CourierLink:
    """One connected courier device: its messages validated through `Ingest`, and answered."""

    __slots__ = ("courier_id", "ingest", "max_batch", "max_pending")

    def __init__(self, courier_id: str, ingest: Ingest, *, max_batch: int,
                 max_pending: int = 64) -> None:
        self.courier_id = courier_id
        self.ingest = ingest
        self.max_batch = max_batch
        self.max_pending = max_pending
        """Messages waiting for the slow path before the socket stops reading."""

    def _parse(self, raw: str | bytes) -> tuple[_Envelope | None, Any]:
        """(envelope, its fixes) of a fix message, or (None, the replies) of any other."""
        try:  # one decode for a good LOCATION; anything else is read in two steps below
            one = _location.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
            pass
        else:
            if one.type == "LOCATION":
                return _LOCATION, [one.payload]
        try:
            env = _envelope.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deeply
            return None, [_error(RejectReason.MALFORMED.value, detail="expected {type, payload}")]
        items: list[Fix | RejectReason]
        if env.type == "LOCATION":
            items = [decode_fix(env.payload)]
        elif env.type == "LOCATIONS":
            decoded = decode_fixes(env.payload)
            if isinstance(decoded, RejectReason):
                return None, [_error(decoded.value, detail="LOCATIONS payload must be an array")]
            if len(decoded) > self.max_batch:
                return None, [_error("batch_too_large", limit=self.max_batch)]
            items = decoded
        elif env.type == "PING":
            return None, [_PONG]
        else:
            return None, [_error("unknown_type", detail=f"unknown message type {env.type!r}")]
        return env, items

    @staticmethod
    def _replies(env: _Envelope, verdict: Verdict) -> list[bytes]:
        if env.type == "LOCATION":
            return [_error(r.value) for _, r in verdict.rejected]
        return [_error(r.value, index=i) for i, r in verdict.rejected]

    def handle_now(self, raw: bytes) -> list[bytes] | None:
        """`handle` without awaiting, or None when it would have to await."""
        env, items = self._parse(raw)
        if env is None:
            replies: list[bytes] = items
            return replies
        verdict = self.ingest.submit_now(self.courier_id, items)
        return None if verdict is None else self._replies(env, verdict)

    async def handle(self, raw: str | bytes) -> list[bytes]:
        """The replies to one device message (its fixes submitted to ingest)."""
        env, items = self._parse(raw)
        if env is None:
            replies: list[bytes] = items
            return replies
        try:
            verdict = await self.ingest.submit(self.courier_id, items, wait_acks=False)
        except (RedisError, TimeoutError) as exc:
            # The courier's last fix could not be read (Redis down, or its pool exhausted
            # while the loop lags under overload): nothing was accepted. The socket stays open
            # and the device's next fix is tried afresh, instead of the handler dying (4500).
            log.warning("fix of %s not accepted, live index unavailable: %r",
                        self.courier_id, exc)
            return [_error("unavailable", detail="live index unavailable; fix not accepted")]
        return self._replies(env, verdict)


async def serve(socket: WebSocket[Any, Any, Any], link: CourierLink, *, hub: CourierHub,
                dispatcher: Dispatcher, queue_size: int) -> None:
    """Run an accepted courier socket until the device leaves.

    The courier's last fix is forgotten on connect (another process may have newer state);
    the socket joins the hub (pushes out), and the courier's open offer, if any, is re-sent
    first: a push made while the device was away is lost.
    """
    courier_id = link.courier_id
    link.ingest.last_fixes.forget(courier_id)
    outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
    writer = asyncio.create_task(_write(socket, outbox))
    hub.attach(courier_id, outbox)
    try:
        # Attached first, so a newer offer still arrives by push (maybe both).
        with contextlib.suppress(Exception):  # best effort, like every push
            offer = await dispatcher.open_offer(courier_id)
            if offer is not None:
                outbox.put_nowait(dispatcher.offer_message(offer))
        lane = lane_of(socket.scope)
        if lane is not None:
            await _receive_fast(socket, lane, link, outbox)
        while True:
            raw = await socket.receive_data(mode="text")
            for message in await link.handle(raw):
                with contextlib.suppress(asyncio.QueueFull):  # a flooding client loses errors
                    outbox.put_nowait(message)
    except WebSocketDisconnect:
        pass
    finally:
        hub.detach(courier_id, outbox)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def _receive_fast(socket: WebSocket[Any, Any, Any], lane: FastLane, link: CourierLink,
                        outbox: asyncio.Queue[bytes]) -> None:
    """Take text messages in the fast lane's callback and handle them there when nothing
    needs awaiting (`CourierLink.handle_now`: a fix of a courier whose last fix is cached).
    The rest (the first fix after connecting, a fix while an HTTP batch of the same courier
    holds its lock) wait, in order, for this task; later messages queue behind them. Returns
    when the socket is gone, by raising `WebSocketDisconnect` (binary messages take the ASGI
    path as without a lane)."""
    waiting: deque[bytes] = deque()
    wake = asyncio.Event()

    def reply(messages: list[bytes]) -> None:
        for message in messages:
            with contextlib.suppress(asyncio.QueueFull):  # a flooding client loses errors
                outbox.put_nowait(message)

    def on_text(raw: bytes) -> None:
        if not waiting:
            replies = link.handle_now(raw)
            if replies is not None:
                if replies:
                    reply(replies)
                return
        waiting.append(raw)
        wake.set()
        if len(waiting) >= link.max_pending:
            lane.pause_reading()

    async def slow_path() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while waiting:
                reply(await link.handle(waiting[0]))
                waiting.popleft()
            lane.resume_reading()

    async def asgi_path() -> None:
        while True:
            raw = await socket.receive_data(mode="text")
            reply(await link.handle(raw))

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
