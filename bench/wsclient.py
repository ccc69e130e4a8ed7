"""A minimal WebSocket client for load generation: one asyncio Protocol per connection.

The `websockets` client costs ~150 µs of CPU per message on this machine (its task per
connection, its frame objects, a loop turn per message); thousands of sockets at one message
per second each then starve the server they share the machine with. This one parses frames
in ``data_received`` and hands text payloads to a callback — no task, no queue, no await per
message. Bench-only: text frames, no extensions (the server offers none), no fragmentation
(the server sends small messages whole), and a constant all-zero masking key (RFC 6455 §5.3
wants an unpredictable one, against cache poisoning by intermediaries; servers accept any key,
and there is no intermediary on loopback) so a frame's payload needs no XOR.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

__all__ = ["HandshakeError", "WsClient", "connect", "text_frame_head"]

_ZERO_MASK = b"\x00\x00\x00\x00"


def text_frame_head(n: int) -> bytes:
    """What precedes an ``n``-byte payload in a client text frame: the header and the
    (all-zero) mask, so a caller can build a frame once and send it with `WsClient.write`."""
    return _frame_head(0x81, n)


def _frame_head(first: int, n: int) -> bytes:
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _ZERO_MASK


class HandshakeError(Exception):
    """The server answered the upgrade with something other than 101."""


class WsClient(asyncio.Protocol):
    """One client socket: ``on_text(payload)`` per text frame; `closed` resolves to the
    close code the server sent (None when the connection just dropped)."""

    def __init__(self, request: bytes, on_text: Callable[[bytes], None]) -> None:
        self._request = request
        self.on_text = on_text
        self._buf = bytearray()
        self._open = False
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:buf.find(b"\r\n")])
            if b" 101 " not in status:
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status.decode("latin-1")))
                self._finish(None)
                return
            del buf[:end + 4]
            self._open = True
            if not self.opened.done():
                self.opened.set_result(None)
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            opcode = b0 & 0x0F
            if opcode == 1:
                self.on_text(bytes(buf[start:end]))
            elif opcode == 9:  # ping → pong with the same payload
                self._frame(0x8A, bytes(buf[start:end]))
            elif opcode == 8:
                code = int.from_bytes(buf[start:start + 2], "big") if length >= 2 else None
                self._frame(0x88, bytes(buf[start:start + 2]))
                self._finish(code)
                return
            pos = end
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        self._finish(None)

    # -- sending -----------------------------------------------------------------------------
    def send_text(self, payload: bytes) -> None:
        self._frame(0x81, payload)

    def write(self, frame: bytes) -> None:
        """Send a whole frame built by the caller (`text_frame_head` + payload)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    def _frame(self, first: int, payload: bytes) -> None:
        self.write(_frame_head(first, len(payload)) + payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _finish(self, code: int | None) -> None:
        if not self.closed.done():
            self.closed.set_result(code)
        if self.transport is not None:
            self.transport.close()


async def connect(url: str, on_text: Callable[[bytes], None],
                  timeout_s: float = 60.0) -> WsClient:
    """Open ``ws://host:port/path?query`` and complete the upgrade."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        _, proto = await loop.create_connection(lambda: WsClient(request, on_text), host, port)
        await proto.opened
    return proto
