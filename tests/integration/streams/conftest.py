"""Tracking tests: the shared core server, a NATS publisher and socket helpers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from api.settings import Settings
from streams.catalog import Names
from streams.events import (
    CourierAssigned,
    LatLng,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
    _Event,
)
from streams.jetstream import ensure_streams, publish
from tests.integration.core.conftest import (  # noqa: F401  (fixtures re-exported)
    CoreServer,
    core_server,
    eventually,
    http,
    serve_core,
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Orders:
    """Publishes order and dispatch events the way commerce and dispatch do."""

    def __init__(self, js: JetStreamContext, names: Names) -> None:
        self.js = js
        self.names = names
        self._known: dict[str, OrderCreated] = {}

    async def create(self, *, customer: str = "", chef: str = "",
                     pickup: tuple[float, float] = (12.97, 77.59),
                     dropoff: tuple[float, float] = (12.99, 77.61),
                     total_cents: int = 2599) -> tuple[str, int]:
        """A paid order (order.created); returns its id and the event's stream sequence."""
        order_id = str(uuid.uuid4())
        event = OrderCreated(
            order_id=order_id, order_number=f"HC{order_id[:6].upper()}",
            customer_id=customer or f"cust-{order_id[:8]}", chef_id=f"profile-{order_id[:8]}",
            chef_user_id=chef or f"chef-{order_id[:8]}", pickup=LatLng(*pickup),
            dropoff=LatLng(*dropoff), total_cents=total_cents, created_at_ms=now_ms())
        self._known[order_id] = event
        seq = await self._publish(self.names.order_event("created", order_id), event)
        return order_id, seq

    def created(self, order_id: str) -> OrderCreated:
        return self._known[order_id]

    async def status(self, order_id: str, status: OrderStatus, *,
                     previous: OrderStatus | None = None, order_number: str = "") -> int:
        c = self._known[order_id]
        at = now_ms()
        event = OrderStatusChanged(
            order_id=order_id, order_number=order_number or c.order_number,
            customer_id=c.customer_id, chef_id=c.chef_id, chef_user_id=c.chef_user_id,
            status=status,
            previous_status=previous, at_ms=at,
            pickup=c.pickup, dropoff=c.dropoff, ready_at_ms=at + 600_000,
            promised_at_ms=at + 1_800_000, total_cents=c.total_cents, item_count=2)
        return await self._publish(self.names.order_event("status", order_id), event)

    async def assign(self, order_id: str, courier_id: str) -> int:
        event = CourierAssigned(order_id=order_id, courier_id=courier_id,
                                offer_id=uuid.uuid4().hex, at_ms=now_ms())
        return await self._publish(self.names.dispatch_event("assigned", order_id), event)

    async def _publish(self, subject: str, event: _Event) -> int:
        return await publish(self.js, subject, event, msg_id=uuid.uuid4().hex)


@pytest.fixture(scope="session")
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    assert settings.stores.nats_url
    conn = await nats.connect(servers=settings.stores.nats_servers)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def orders(nc: NATS, settings: Settings, core_server: CoreServer) -> Orders:  # noqa: F811
    names = Names(settings.server.namespace)
    await ensure_streams(nc.jetstream(), names)
    tracking = core_server.app.state.tracking  # type: ignore[attr-defined]
    await asyncio.wait_for(tracking.hub.ready.wait(), 10)
    await asyncio.wait_for(tracking.couriers.ready.wait(), 10)
    return Orders(nc.jetstream(), names)


async def projected(srv: CoreServer, order_id: str, **want: Any) -> None:
    """Wait until core's order projection shows the order with the given fields."""
    view_store = srv.core.orders  # type: ignore[attr-defined]

    async def check() -> bool:
        view = await view_store.get(order_id)
        return view is not None and all(getattr(view, k) == v for k, v in want.items())

    await eventually(check, timeout_s=5)


# Deadlines, not expectations: a wait returns as soon as its message arrives. The console
# viewport test timed out twice in a dozen full suites on the loaded 2 cores at 3 s.
WAIT_S = 10.0


async def recv(ws: Any, timeout_s: float = WAIT_S) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout_s)
        msg: dict[str, Any] = json.loads(raw)
        if msg["type"] not in ("PING", "PONG"):
            return msg


async def recv_type(ws: Any, kind: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped); on timeout, the error says
    what was awaited and what came instead."""
    deadline = time.monotonic() + timeout_s
    skipped: list[str] = []
    while True:
        try:
            msg = await recv(ws, max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"no {kind} within {timeout_s} s; got {skipped}") from None
        if msg["type"] == kind:
            return msg
        skipped.append(msg["type"])


async def quiet(ws: Any, kind: str, window_s: float) -> list[dict[str, Any]]:
    """Every message of type ``kind`` received within ``window_s``."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await recv(ws, left)
        except TimeoutError:
            break
        if msg["type"] == kind:
            got.append(msg)
    return got
