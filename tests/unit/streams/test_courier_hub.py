"""The courier hub's routing, without NATS or sockets: a pushed message reaches every socket
of that courier in this process and nobody else's."""

from __future__ import annotations

import asyncio

from streams.catalog import Names
from streams.courier_hub import CourierHub


class FullQueue:
    def put_nowait(self, item: bytes) -> None:
        raise asyncio.QueueFull


def test_courier_hub_delivers_to_attached_sockets_only() -> None:
    """An inbox message goes to every socket of that courier in this process; a full queue
    loses the message and is counted, it never blocks the others."""
    hub = CourierHub(Names("t"))
    q1: asyncio.Queue[bytes] = asyncio.Queue()
    hub.attach("c1", q1)
    hub.attach("c1", FullQueue())
    assert hub.deliver("c1", b"offer") == 1
    assert hub.deliver("c2", b"offer") == 0
    assert q1.get_nowait() == b"offer"
    assert hub.dropped == 1
    hub.detach("c1", q1)
    assert hub.connected("c1")
