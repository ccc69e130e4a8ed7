"""Dispatch with roads on, on real Redis and NATS: queue entry waits for the nearest idle
courier's ride *by road*, and the round offers the courier nearest by road, where the
straight line says otherwise (across Monaco's harbour, tests/monaco.py)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client

from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore, TransitionResult
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import LiveIndex, Located
from api.travel import open_travel
from geo.cells import region_of
from geo.travel import HaversineTravelModel, Vehicle
from streams.catalog import STREAMS, Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import ensure_streams
from tests.conftest import BuiltRoads
from tests.monaco import HARBOUR_NORTH, HARBOUR_SOUTH, SAME_SIDE

MIN = 60_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    client = await nats.connect(servers=settings.stores.nats_servers)
    try:
        yield client
    finally:
        await client.close()


def accepted(order_id: str, at_ms: int, ready_at_ms: int) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id, order_number=f"HC{order_id[:6]}", customer_id="cust-1",
        chef_id="chef-1", status="accepted", previous_status="pending", at_ms=at_ms,
        pickup=LatLng(*HARBOUR_SOUTH), dropoff=LatLng(*SAME_SIDE), ready_at_ms=ready_at_ms,
        promised_at_ms=at_ms + 60 * MIN)


async def test_queue_entry_and_offers_ride_the_roads(
        settings: Settings, redis: aioredis.Redis, nc: Client,
        monaco_roads: BuiltRoads) -> None:
    ns = f"{settings.server.namespace}r{uuid.uuid4().hex[:4]}"
    names = Names(ns)
    js = nc.jetstream()
    await ensure_streams(js, names)
    road_settings = settings.replace(server__namespace=ns, roads__path=monaco_roads.directory)
    travel = open_travel(road_settings)
    assert travel.info.model == "roads"
    couriers = LiveIndex(redis, f"{ns}:geo")
    store = DispatchStore(redis, ns, couriers.status_key)
    dispatcher = Dispatcher(road_settings, names, store, couriers, nc, js,
                            DispatchMetrics(Metrics("core")), travel=travel)
    try:
        t0 = now_ms()
        for courier, at in (("across", HARBOUR_NORTH), ("same-side", SAME_SIDE)):
            await couriers.upsert([Located(courier, at[0], at[1], t0)])
            t = await store.set_availability(courier, online=True, vehicle=Vehicle.BIKE,
                                             now_ms=t0)
            assert t.result is TransitionResult.ONLINE

        # Food ready in 30 min: the order waits until the nearest idle courier (straight
        # line: `across`) should set off, by road round the harbour (+ 60 s lead).
        later, ready_later = str(uuid.uuid4()), t0 + 30 * MIN
        assert await dispatcher.enqueue(accepted(later, t0, ready_later), t0)
        record = await store.order(later)
        assert record is not None
        road_s = travel.model.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
        straight_s = HaversineTravelModel().travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH,
                                                     Vehicle.BIKE)
        assert road_s > 600 > 100 > straight_s
        assert record.enter_ms == ready_later - round((road_s + 60) * 1000)

        # Food ready now: due at once; the round offers the courier nearest by road.
        now = str(uuid.uuid4())
        assert await dispatcher.enqueue(accepted(now, t0, t0), t0)
        assert await dispatcher.run_round(region_of(*HARBOUR_SOUTH)) == 1
        offered = await store.order(now)
        assert offered is not None
        assert offered.courier_id == "same-side"
    finally:
        travel.close()
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
        if keys:
            await redis.delete(*keys)
        for spec in STREAMS:
            with contextlib.suppress(Exception):  # best-effort cleanup
                await js.delete_stream(names.stream(spec))
