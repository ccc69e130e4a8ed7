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

Once a callback is registered and `websockets`' parser waits at a frame boundary, the
protocol reads frames itself (`FastLaneProtocol.data_received`): a final, masked text frame
goes to the callback without `websockets`' generator-based parser and its `Frame` objects
(~15 % of core CPU per one-fix device message). Any other complete frame (ping, pong, close,
binary) is handed to `websockets` whole, so its parser stays at a boundary; anything unusual
(a fragment, an unmasked or reserved-bit frame, a frame over ``ws_max_size``) hands it the
rest of the stream for good, and it fails or reassembles it as before.

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

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension ships with websockets' wheels
    from websockets.utils import apply_mask

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
    _own: bool | None = False
    """False: `websockets` parses; True: frames are read here; None: handed back for good."""
    _buf: bytearray | None = None
    """Bytes of an incomplete frame while frames are read here."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        # Only for an upgrade going to the app, and never with a negotiated extension (the
        # lane writes plain frames): uvicorn negotiates them only with per-message deflate.
        if scope is not None and not self.config.ws_per_message_deflate:
            self.lane = FastLane(self)
            scope["extensions"][EXTENSION] = self.lane

    def data_received(self, data: bytes) -> None:
        if not self._own:
            lane = self.lane
            if (self._own is None or lane is None or lane.on_text is None
                    or not self._at_frame_boundary()):
                super().data_received(data)
                return
            self._own = True
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        pos = self._read_frames(view)
        if self._own is None:  # handed back: websockets gets the rest
            self._buf = None
            if pos < len(view):
                super().data_received(bytes(view[pos:]))
        elif buf:
            del buf[:pos]
        elif pos < len(view):
            self._buf = bytearray(view[pos:])

    def _read_frames(self, view: bytes | bytearray) -> int:
        """Handle every complete frame of ``view``; returns where the first incomplete one
        starts (or where the stream was handed back, with ``_own`` None)."""
        pos, n = 0, len(view)
        max_size = self.config.ws_max_size
        while n - pos >= 6:  # the shortest client frame: 2 header bytes and a 4-byte mask
            b0, b1 = view[pos], view[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                length = int.from_bytes(view[head:head + 2], "big")
                head += 2
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(view[head:head + 8], "big")
                head += 8
            opcode = b0 & 0x0F
            if (b0 & 0xF0) != 0x80 or not b1 & 0x80 or length > max_size or (
                    opcode not in (0x1, 0x2, 0x8, 0x9, 0xA)):
                # Not final, reserved bits, unmasked, too big or a continuation: websockets
                # reassembles or fails it as without the lane, from here on.
                self._own = None
                return pos
            end = head + 4 + length
            if end > n:
                break
            lane = self.lane
            if opcode == 0x1 and lane is not None and lane.on_text is not None and (
                    not self.close_sent and self.conn.state is State.OPEN):
                self._deliver_text(lane, apply_mask(view[head + 4:end], view[head:head + 4]))
                if self._own is not True:  # refused (1007) or failed (1011)
                    return n if self.transport.is_closing() else end
            else:
                # One whole frame: websockets' parser ends at a boundary again.
                super().data_received(bytes(view[pos:end]))
                if self.conn.state is not State.OPEN:
                    self._own = None
                    return end
            pos = end
            if self.transport.is_closing():
                self._own = None
                return n
        return pos

    def _at_frame_boundary(self) -> bool:
        """`websockets`' parser has consumed every byte and waits for a new frame (not in a
        frame's middle, nor between a message's fragments)."""
        conn = self.conn
        if (conn.state is not State.OPEN or conn.reader.buffer
                or conn.expect_continuation_frame):
            return False
        gen: Any = conn.parser
        while getattr(gen, "gi_yieldfrom", None) is not None:
            gen = gen.gi_yieldfrom
        code = getattr(gen, "gi_code", None)
        return code is not None and code.co_name == "at_eof"

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type != "text" or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        if type(data) is not bytes:
            data = bytes(data)
        lane = self.lane
        if lane is None or lane.on_text is None:
            if not self._utf8_or_refuse(data):
                return
            self.frames = [data]
            super().send_receive_event_to_app()
            return
        self.frames = []
        self._deliver_text(lane, data)

    def _utf8_or_refuse(self, data: bytes) -> bool:
        """Whether a text message is valid UTF-8; if not, the connection is refused."""
        if data.isascii():
            return True
        try:
            data.decode()
        except UnicodeDecodeError:
            self._refuse_invalid_text()
            return False
        return True

    def _deliver_text(self, lane: FastLane, data: bytes) -> None:
        """A complete text message to the lane's callback (UTF-8 checked first)."""
        if not self._utf8_or_refuse(data):
            return
        on_text = lane.on_text
        assert on_text is not None
        try:
            on_text(data)
        except Exception:
            # As an ASGI app's failure: logged, the connection closed (1011).
            self.logger.exception("Exception in WebSocket fast-lane callback")
            self.lane = None
            self._own = None
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
        self._own = None  # websockets reads the rest (the peer's close)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)


def lane_of(scope: Any) -> FastLane | None:
    """The socket's fast lane, when the server provides one."""
    extensions = scope.get("extensions") or {}
    lane = extensions.get(EXTENSION)
    return lane if isinstance(lane, FastLane) else None
