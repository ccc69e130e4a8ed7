"""A synchronous fast lane for WebSocket messages next to the ASGI path, on the same port.

uvicorn's `websockets-sansio` protocol hands every message through the ASGI interface: each
delivery wakes the socket's writer task and awaits ``send`` (plus Litestar's wrappers and
`websockets`' framing), each received message wakes the reader task through an
``asyncio.Queue`` and ``receive``. On the live fan-out path that is most of the per-message
cost. `FastLaneProtocol` (``homechef serve`` passes it as uvicorn's ``ws`` class) keeps that
protocol for the handshake, auth, close and everything else, and puts a `FastLane` in the
ASGI scope's ``extensions`` under `EXTENSION`. Through it, once the app has accepted:

- `FastLane.send_text` writes one text frame straight to the transport (server frames are
  unmasked; no extension is ever negotiated: permessage-deflate is off in ``homechef serve``,
  and the lane refuses to exist when it is on). It honours flow control: once the transport
  asks to pause it reports "not writable" and the caller queues (its `Outbox`) until
  `FastLane.drained`;
- `FastLane.receive_text` registers a callback that gets each complete text message (bytes,
  UTF-8 checked as uvicorn does) instead of the ASGI queue. Binary messages, close and
  disconnect still arrive through ASGI ``receive``.

An app that finds no lane (another server, a test client) uses ASGI as before
(api/core/ws/sockets.py, api/core/gps/controllers.py).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol

__all__ = ["EXTENSION", "FastLane", "FastLaneProtocol", "lane_of"]

EXTENSION = "homechef.fastlane"

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_TEXT_FIN = 0x81

OnText = Callable[[bytes], None]


def text_frame(data: bytes) -> bytes:
    """An unmasked, final text frame carrying ``data`` (RFC 6455 section 5.2)."""
    n = len(data)
    if n < 126:
        return _SHORT.pack(_TEXT_FIN, n) + data
    if n < 65536:
        return _MEDIUM.pack(_TEXT_FIN, 126, n) + data
    return _LONG.pack(_TEXT_FIN, 127, n) + data


class FastLane:
    """One accepted socket's synchronous send and receive (see the module doc)."""

    __slots__ = ("_conn", "_proto", "on_text", "sent")

    def __init__(self, proto: FastLaneProtocol) -> None:
        self._proto = proto
        self._conn: ServerProtocol = proto.conn
        self.on_text: OnText | None = None
        self.sent = 0

    @property
    def open(self) -> bool:
        """Accepted, not closing, not closed: frames may be written."""
        p = self._proto
        return (p.handshake_complete and not p.close_sent and not p.disconnected
                and self._conn.state is State.OPEN and not p.transport.is_closing())

    @property
    def writable(self) -> bool:
        """Open and the transport has not asked to pause writing."""
        return self._proto.writable.is_set() and self.open

    async def drained(self) -> None:
        """Wait until the transport takes writes again (or the connection is lost)."""
        await self._proto.writable.wait()

    def send_text(self, data: bytes) -> bool:
        """Write one text message now; False when it was not written (the socket is closing)
        or when the transport asked to pause (written, but hold the next ones)."""
        if not self.open:
            return False
        p = self._proto
        p.transport.write(text_frame(data))
        self.sent += 1
        return p.writable.is_set()

    def receive_text(self, callback: OnText | None) -> None:
        """Deliver complete text messages to ``callback`` (None: back to the ASGI queue)."""
        self.on_text = callback

    def pause_reading(self) -> None:
        p = self._proto
        if not p.read_paused and not p.close_sent:
            p.read_paused = True
            p.transport.pause_reading()

    def resume_reading(self) -> None:
        p = self._proto
        if p.read_paused and p.queue.empty():
            p.read_paused = False
            p.transport.resume_reading()


class FastLaneProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol plus a `FastLane` in the scope's extensions."""

    lane: FastLane | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        # Only for an upgrade going to the app, and never with a negotiated extension (the
        # lane writes plain frames): uvicorn negotiates them only with per-message deflate.
        if scope is not None and not self.config.ws_per_message_deflate:
            self.lane = FastLane(self)
            scope["extensions"][EXTENSION] = self.lane

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type != "text" or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        if type(data) is not bytes:
            data = bytes(data)
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                self._refuse_invalid_text()
                return
        lane = self.lane
        if lane is None or lane.on_text is None:
            self.frames = [data]
            super().send_receive_event_to_app()
            return
        self.frames = []
        try:
            lane.on_text(data)
        except Exception:
            # As an ASGI app's failure: logged, the connection closed (1011).
            self.logger.exception("Exception in WebSocket fast-lane callback")
            self.lane = None
            with contextlib.suppress(Exception):
                self.conn.fail(1011, "internal error")
                self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()

    def _refuse_invalid_text(self) -> None:
        """A text message that is not UTF-8: close 1007 (RFC 6455) with a closing handshake,
        as when the app closes. uvicorn instead logs a traceback at ERROR for what is the
        client's mistake, and drops the connection at once: a client still sending then gets
        a reset instead of the close frame (1006)."""
        self.frames = []
        self.logger.info("closing WebSocket 1007: text message from client is not UTF-8")
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1007, "reason": ""})
        self.conn.send_close(1007)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True  # later messages are discarded; the peer's close ends it
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)


def lane_of(scope: Any) -> FastLane | None:
    """The socket's fast lane, when the server provides one."""
    extensions = scope.get("extensions") or {}
    lane = extensions.get(EXTENSION)
    return lane if isinstance(lane, FastLane) else None
