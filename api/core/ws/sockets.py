"""The life of one client WebSocket: a writer draining its outbox, a reader, a heartbeat.

Shared by the order, chef and console sockets. The hub fills the outbox; only the writer
task awaits the socket, so a slow client delays nobody but itself. Closing rules (codes in
`streams.outbox.CloseCode`):

- event backlog over ``max_event_bytes`` → 4008 "slow consumer";
- nothing heard from the client for ``idle_timeout_s`` (the server PINGs every
  ``ping_interval_s``; any message, PONG included, counts) → 4408 "heartbeat timeout";
- a store (Redis, NATS, PostgreSQL) unavailable while opening or serving the socket → 1013
  "<store> unavailable" (try again later), never Litestar's generic 4500 (`closes_on_outage`).

Under ``homechef serve`` the socket has a fast lane (api/core/ws/fastws.py): while it is
writable and nothing is queued, the outbox hands each message straight to the transport (no
writer wake-up, no ASGI send), and client messages of sockets without ``on_message`` are
handled in the protocol's callback (no reader wake-up). Once the transport pauses, messages
queue in the outbox exactly as on the ASGI path (coalesced, bounded, 4008) and the writer
drains them when it resumes. Without a lane everything goes through ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from api.core.ws.fastws import FastLane, lane_of
from api.problems import outage_store
from streams.outbox import CloseCode, Outbox
from streams.tracking_hub import HubLimits
from streams.wire import (
    ClientMessage,
    Ping,
    Pong,
    decode_client,
    encode,
    error_message,
)

log = logging.getLogger("homechef.sockets")

OnMessage = Callable[[ClientMessage], Awaitable[None]]
CLOSE_TIMEOUT_S = 2.0

_PING = encode(Ping())
_PONG = encode(Pong())


async def close_socket(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(code=code, reason=reason), CLOSE_TIMEOUT_S)


SocketHandler = TypeVar("SocketHandler", bound=Callable[..., Awaitable[None]])


def closes_on_outage(handler: SocketHandler) -> SocketHandler:
    """Wrap a WebSocket handler (under ``@websocket``): a store outage it raises closes the
    socket with 1013 (`CloseCode.TRY_AGAIN_LATER`, reason "<store> unavailable"), logged as
    one line; any other error propagates (Litestar closes with 4500 and it is a bug)."""

    @functools.wraps(handler)
    async def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            await handler(*args, **kwargs)
        except Exception as exc:
            store = outage_store(exc)
            socket = kwargs.get("socket")
            if store is None or socket is None:
                raise
            log.warning("store unavailable (%s) on socket %s: %s: %s", store,
                        socket.scope.get("path"), type(exc).__name__, str(exc)[:200])
            await close_socket(socket, CloseCode.TRY_AGAIN_LATER, f"{store} unavailable")

    return guarded  # type: ignore[return-value]


async def serve(
    socket: WebSocket[Any, Any, Any],
    outbox: Outbox,
    limits: HubLimits,
    on_message: OnMessage | None = None,
) -> None:
    """Run an accepted socket until the client leaves or a limit closes it."""
    last_heard = time.monotonic()
    closing: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def close_with(code: int, reason: str) -> None:
        if not closing.done():
            closing.set_result((code, reason))

    def outbox_ended() -> None:
        """The outbox was closed: by an overflow, or by the server going away."""
        if outbox.overflowed:
            close_with(CloseCode.SLOW_CONSUMER, "slow consumer")
        else:
            close_with(CloseCode.GOING_AWAY, "server closing")

    lane = lane_of(socket.scope)

    async def write() -> None:
        while True:
            batch = await outbox.take()
            if not batch:
                outbox_ended()
                return
            for data in batch:
                await socket.send_data(data, mode="text")
                if outbox.overflowed:
                    close_with(CloseCode.SLOW_CONSUMER, "slow consumer")
                    return

    async def write_fast(lane: FastLane) -> None:
        send = lane.send_text
        while True:
            if lane.writable and not outbox.pending():
                outbox.direct = send
            batch = await outbox.take()
            outbox.direct = None
            if not batch:
                outbox_ended()
                return
            for data in batch:
                if not lane.writable:
                    if lane.open:
                        await lane.drained()
                    if not lane.open:
                        return  # the connection is going: the reader sees the disconnect
                send(data)
                if outbox.overflowed:
                    close_with(CloseCode.SLOW_CONSUMER, "slow consumer")
                    return

    def heard(raw: str | bytes) -> ClientMessage | None:
        """Note the message and answer what needs no await; the message if it does."""
        nonlocal last_heard
        last_heard = time.monotonic()
        try:
            message = decode_client(raw)
        except msgspec.DecodeError as exc:
            outbox.push_event(error_message("malformed", str(exc)[:200]))
            return None
        if isinstance(message, Ping):
            outbox.push_state("pong", _PONG)
        elif isinstance(message, Pong):
            pass
        elif on_message is None:
            outbox.push_event(error_message("unknown_type",
                                            f"{type(message).__name__} is not expected"))
        else:
            return message
        return None

    async def read() -> None:
        while True:
            # With the fast lane's callback set, only what it does not take comes here
            # (binary messages, the disconnect).
            raw = await socket.receive_data(mode="text")
            message = heard(raw)
            if message is not None and on_message is not None:
                await on_message(message)

    async def heartbeat() -> None:
        next_ping = time.monotonic() + limits.ping_interval_s
        while True:
            deadline = min(next_ping, last_heard + limits.idle_timeout_s)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
            now = time.monotonic()
            if now - last_heard > limits.idle_timeout_s:
                close_with(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                return
            if now >= next_ping:
                outbox.push_state("ping", _PING)
                next_ping = now + limits.ping_interval_s

    def on_text(raw: bytes) -> None:
        heard(raw)  # sockets without on_message: nothing to await

    outbox.on_overflow = lambda: close_with(CloseCode.SLOW_CONSUMER, "slow consumer")
    if lane is not None and on_message is None:
        lane.receive_text(on_text)
    tasks: list[asyncio.Future[Any]] = [
        asyncio.create_task(write() if lane is None else write_fast(lane)),
        asyncio.create_task(read()),
        asyncio.create_task(heartbeat()),
    ]
    reader = tasks[1]
    try:
        await asyncio.wait([*tasks, closing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        outbox.close()
        if lane is not None:
            lane.receive_text(None)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await t
    if closing.done():
        code, reason = closing.result()
        await close_socket(socket, code, reason)
    elif reader.done() and not reader.cancelled() and reader.exception() is not None:
        exc = reader.exception()
        if exc is None or isinstance(exc, WebSocketDisconnect):
            return
        store = outage_store(exc)
        if store is not None:  # a message handler could not reach a store
            log.warning("store unavailable (%s) on socket: %r", store, exc)
            await close_socket(socket, CloseCode.TRY_AGAIN_LATER, f"{store} unavailable")
        else:
            log.warning("socket reader failed: %r", exc)
