"""Courier device sockets of this process, fed by NATS.

The dispatcher pushes offers and assignment updates (`streams.wire.CourierMessage`, already
encoded) on core-plain ``<ns>.courier.<courier_id>``; `CourierHub` subscribes once to every
courier's inbox and hands each message to the sockets of that courier in this process. It
never awaits a socket: a full queue loses the message (a push is best effort; the state is
in Redis, and an open offer is re-sent on reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from streams.catalog import Names

__all__ = ["CourierHub", "Sink"]

log = logging.getLogger("homechef.streams.courier_hub")


class Sink(Protocol):
    """Where a courier socket takes its outgoing messages (gps.py's asyncio.Queue)."""

    def put_nowait(self, item: bytes, /) -> None: ...


class CourierHub:
    """Courier id → that courier's device sockets in this process."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self._sinks: dict[str, list[Sink]] = {}
        self.delivered = 0
        self.dropped = 0
        self.ready = asyncio.Event()

    def attach(self, courier_id: str, sink: Sink) -> None:
        self._sinks.setdefault(courier_id, []).append(sink)

    def detach(self, courier_id: str, sink: Sink) -> None:
        sinks = self._sinks.get(courier_id)
        if sinks is None:
            return
        with contextlib.suppress(ValueError):
            sinks.remove(sink)
        if not sinks:
            del self._sinks[courier_id]

    def connected(self, courier_id: str) -> bool:
        return courier_id in self._sinks

    def deliver(self, courier_id: str, data: bytes) -> int:
        """Hand ``data`` to every socket of the courier here; returns how many took it."""
        took = 0
        for sink in self._sinks.get(courier_id, ()):
            try:
                sink.put_nowait(data)
                took += 1
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("courier %s: outgoing queue full; message dropped", courier_id)
        self.delivered += took
        return took

    async def _on_msg(self, msg: Msg) -> None:
        courier_id = msg.subject.rsplit(".", 1)[-1]
        if courier_id in self._sinks:
            self.deliver(courier_id, msg.data)

    async def run(self, nc: NATS) -> None:
        """Subscribe to every courier's inbox until cancelled (re-subscribed on reconnect)."""
        sub = await nc.subscribe(self.names.courier_inbox("*"), cb=self._on_msg)
        self.ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
