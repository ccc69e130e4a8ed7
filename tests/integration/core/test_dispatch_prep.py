"""Prep-time prediction in production (DISPATCH_PREP_PREDICTION) on real Redis and NATS: the
dispatcher learns a kitchen's lateness from its ready marks and queues its next order on the
prediction; switched off, the declared time stands."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client

from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import LiveIndex
from streams.catalog import Names
from streams.events import LatLng, OrderStatusChanged

T0 = 1_900_000_000_000
MIN = 60_000
LAT, LNG = 12.97, 77.59


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    client = await nats.connect(servers=settings.stores.nats_servers)
    try:
        yield client
    finally:
        await client.close()


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


def event(order_id: str, status: str, at_ms: int, ready_in_ms: int = 10 * MIN,
          ) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id, order_number=order_id, customer_id="cust-1", chef_id="chef-late",
        status=status, previous_status="pending", at_ms=at_ms, pickup=LatLng(LAT, LNG),
        dropoff=LatLng(LAT + 0.01, LNG), ready_at_ms=at_ms + ready_in_ms,
        promised_at_ms=at_ms + 45 * MIN)


async def _dispatcher(settings: Settings, redis: aioredis.Redis, nc: Client, ns: str,
                      clock: Clock, *, predict: bool) -> tuple[Dispatcher, DispatchStore]:
    couriers = LiveIndex(redis, f"{ns}:geo")
    store = DispatchStore(redis, ns, couriers.status_key)
    s = settings.replace(server__namespace=ns, dispatch__prep_prediction=predict)
    return Dispatcher(s, Names(ns), store, couriers, nc, nc.jetstream(),
                      DispatchMetrics(Metrics("core")), clock=clock), store


@pytest.mark.parametrize("predict", [True, False])
async def test_a_late_kitchen_next_order_is_queued_on_its_history(
        settings: Settings, redis: aioredis.Redis, nc: Client,
        predict: bool) -> None:
    """The kitchen declares 10 min and takes 20 (marked ready at acceptance + 20 min, the
    event heard twice). With prediction on, its next order's ready time is acceptance +
    20 min (one observation of ratio 2, the city's the same, no spread yet) and the
    redelivered mark taught nothing twice; off, it is the declared 10 min."""
    ns = f"{settings.server.namespace}p{uuid.uuid4().hex[:6]}"
    clock = Clock()
    dispatcher, store = await _dispatcher(settings, redis, nc, ns, clock, predict=predict)
    try:
        await dispatcher.on_order_event(event("first", "accepted", T0))
        first = await store.order("first")
        assert first is not None
        assert first.ready_ms == T0 + 10 * MIN  # no history yet
        clock.ms = T0 + 20 * MIN
        ready = msgspec.structs.replace(event("first", "ready", T0 + 20 * MIN),
                                        previous_status="preparing")
        await dispatcher.on_order_event(ready)
        await dispatcher.on_order_event(ready)  # redelivered
        clock.ms = T0 + 30 * MIN
        await dispatcher.on_order_event(event("second", "accepted", clock.ms))
        second = await store.order("second")
        assert second is not None
        kitchen, city = await store.prep_history("chef-late")
        if predict:
            assert second.ready_ms == clock.ms + 20 * MIN
            assert len(kitchen) == len(city) == 1
        else:
            assert second.ready_ms == clock.ms + 10 * MIN
            assert kitchen == city == []
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
        if keys:
            await redis.delete(*keys)
