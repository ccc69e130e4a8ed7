"""Order intake on real Redis and NATS: an accepted order reaches the dispatch queue exactly
once even when the dispatch step fails after the read model applied it, and a food-ready
event brings a waiting order forward (never later) with the real ready time in its costs."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client

from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore, OfferAction, TransitionResult
from api.core.tracking.orders_view import OrdersView
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import LiveIndex, Located
from dispatch.lifecycle import OrderDispatchState, entry_when_food_ready_ms
from geo.cells import region_of
from geo.index_model import status_key
from geo.travel import Vehicle
from streams.catalog import ORDERS, STREAMS, Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import consume_batches, ensure_streams, publish
from streams.wire import Point
from tests.integration.core.conftest import eventually
from tests.servers import KillableServer

NOW = 1_900_000_000_000
MIN = 60_000
REGION = "8461a19ffffffff"
LAT, LNG = 12.97, 77.59


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    client = await nats.connect(servers=settings.stores.nats_servers)
    try:
        yield client
    finally:
        await client.close()


def accepted(order_id: str, at_ms: int, ready_in_ms: int = 0) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id, order_number=f"HC{order_id[:6]}", customer_id="cust-1",
        chef_id="chef-1", status="accepted", previous_status="pending", at_ms=at_ms,
        pickup=LatLng(LAT, LNG), dropoff=LatLng(LAT + 0.01, LNG), ready_at_ms=at_ms + ready_in_ms,
        promised_at_ms=at_ms + 45 * MIN)


async def test_an_order_event_is_acked_only_once_the_dispatch_queue_has_it(
        settings: Settings, redis: aioredis.Redis, own_redis: KillableServer, nc: Client) -> None:
    """Exactly-once intake: the read model applies an accepted order while dispatch's Redis
    is down; the event is not acked (nakked, redelivered), and its redelivery — which the
    view has already applied — still enqueues the order once dispatch's Redis is back
    (restarted empty), before the `ready` event published after it (which brings it
    forward). The order is in the queue once, is offered to the courier 600 m away, and a
    further delivery or enqueue of it changes nothing."""
    ns = f"{settings.server.namespace}i{uuid.uuid4().hex[:4]}"
    names = Names(ns)
    js = nc.jetstream()
    await ensure_streams(js, names)
    view = OrdersView(redis, f"{ns}:view")  # the session's Redis: stays up
    dispatch_redis = aioredis.from_url(own_redis.url, socket_connect_timeout=0.5,
                                       socket_timeout=0.5)
    couriers = LiveIndex(dispatch_redis, f"{ns}:geo")
    store = DispatchStore(dispatch_redis, ns, couriers.status_key)
    dispatcher = Dispatcher(settings.replace(server__namespace=ns), names, store, couriers,
                            nc, js, DispatchMetrics(Metrics("core")))
    view.listeners.append(dispatcher.on_order_event)
    failures: list[str] = []
    resume = asyncio.Event()

    async def consume() -> None:  # as the supervised worker: restarted after a failure
        while True:
            try:
                await consume_batches(js, stream=names.stream(ORDERS),
                                      durable=names.consumer("intake-test"),
                                      filter_subject=names.orders_all(),
                                      handler=view.apply_msgs, batch=10, ack_wait_s=30)
            except Exception as e:
                failures.append(type(e).__name__)
                await resume.wait()  # backing off until the test brought Redis back

    consumer = asyncio.create_task(consume())
    oid = str(uuid.uuid4())
    try:
        await own_redis.stop()
        await publish(js, names.order_event("status", oid),
                      accepted(oid, now_ms(), ready_in_ms=25 * MIN), msg_id=f"{oid}:acc")

        async def applied_but_failed() -> bool:
            return await view.get(oid) is not None and bool(failures)
        await eventually(applied_but_failed, 10)
        ready_at = now_ms()  # the kitchen was quick: `ready` follows while the worker waits
        await publish(js, names.order_event("status", oid),
                      msgspec.structs.replace(accepted(oid, ready_at), status="ready",
                                              previous_status="preparing"),
                      msg_id=f"{oid}:ready")
        track = await view.get(oid)  # the read model has the order, not what follows ...
        assert track is not None
        assert track.status == "accepted"
        info = await js.consumer_info(names.stream(ORDERS), names.consumer("intake-test"))
        assert info.num_ack_pending + info.num_pending >= 1  # ... the stream still holds it

        await own_redis.start()  # back, empty: the courier comes online again
        courier = f"c-{uuid.uuid4().hex[:6]}"
        await couriers.upsert([Located(courier, LAT + 0.0054, LNG, now_ms())])  # ~600 m
        t = await store.set_availability(courier, online=True, vehicle=Vehicle.BIKE,
                                         now_ms=now_ms())
        assert t.result is TransitionResult.ONLINE
        resume.set()

        async def enqueued_and_ready() -> Any:
            o = await store.order(oid)
            return o if o is not None and o.food_ready_ms is not None else None
        # Nakked: redelivered at the next pull, not after the 30 s ack wait.
        record = await eventually(enqueued_and_ready, 10)
        assert record.state is OrderDispatchState.WAITING  # type: ignore[attr-defined]
        assert record.ready_ms == ready_at  # type: ignore[attr-defined]

        async def acked() -> bool:
            i = await js.consumer_info(names.stream(ORDERS), names.consumer("intake-test"))
            return i.num_ack_pending == 0 and i.num_pending == 0
        await eventually(acked, 10)
        region = region_of(LAT, LNG)
        assert await store.due_orders(region, now_ms() + 1, 100) == [oid]

        assert await dispatcher.run_round(region) == 1
        offered = await store.order(oid)
        assert offered is not None
        assert offered.state is OrderDispatchState.OFFERED
        assert offered.courier_id == courier

        # Heard already: a replay is skipped; a second enqueue leaves the offer alone.
        event = accepted(oid, now_ms())
        assert not await view.apply(event, names.stream(ORDERS), 1)
        assert not await dispatcher.enqueue(event, now_ms())
        again = await store.order(oid)
        assert again is not None
        assert again.state is OrderDispatchState.OFFERED
        assert await store.due_orders(region, now_ms() + 1, 100) == []
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await dispatch_redis.aclose()
        for spec in STREAMS:
            with contextlib.suppress(Exception):  # best-effort cleanup
                await js.delete_stream(names.stream(spec))


async def test_a_listener_that_fails_hears_the_event_again_on_redelivery(
        settings: Settings, redis: aioredis.Redis) -> None:
    """The view applies an event once but tells its listeners until they all returned:
    a redelivery after a listener raised reaches them again; after that, none does."""
    view = OrdersView(redis, f"{settings.server.namespace}:ov-{uuid.uuid4().hex[:6]}")
    heard: list[int] = []

    async def flaky(event: object) -> None:
        heard.append(len(heard))
        if len(heard) == 1:
            raise ConnectionError("dispatch store down")

    view.listeners.append(flaky)
    event = accepted("o-1", NOW)
    with pytest.raises(ConnectionError):
        await view.apply(event, "ORDERS", 5)
    assert await view.get("o-1") is not None
    assert not await view.apply(event, "ORDERS", 5)  # applied already: not applied again,
    assert heard == [0, 1]  # but heard again
    assert not await view.apply(event, "ORDERS", 5)
    assert not await view.apply(event, "ORDERS", 4)
    assert heard == [0, 1]


async def test_an_order_whose_accepted_event_was_overtaken_enters_dispatch(
        settings: Settings, redis: aioredis.Redis, nc: Client) -> None:
    """Several core processes share the orders stream, and an event redelivered after a
    process died comes after newer ones: `ready` (seq 8) applied before `accepted` (seq 7).
    The view skips the older event; dispatch takes the order in on `ready` (due now, its
    food ready), once, and the late `accepted` changes nothing."""
    ns = f"{settings.server.namespace}o{uuid.uuid4().hex[:4]}"
    names = Names(ns)
    view = OrdersView(redis, f"{ns}:view")
    couriers = LiveIndex(redis, f"{ns}:geo")
    store = DispatchStore(redis, ns, couriers.status_key)
    dispatcher = Dispatcher(settings.replace(server__namespace=ns), names, store, couriers,
                            nc, nc.jetstream(), DispatchMetrics(Metrics("core")))
    view.listeners.append(dispatcher.on_order_event)
    oid, t0 = str(uuid.uuid4()), now_ms()
    ready = msgspec.structs.replace(accepted(oid, t0 + MIN, ready_in_ms=0), status="ready",
                                    previous_status="preparing")
    assert await view.apply(ready, "ORDERS", 8)
    record = await store.order(oid)
    assert record is not None
    assert record.state == OrderDispatchState.WAITING
    assert record.food_ready_ms == t0 + MIN
    assert not await view.apply(accepted(oid, t0, ready_in_ms=25 * MIN), "ORDERS", 7)
    assert await store.order(oid) == record


@pytest.fixture
async def store(redis: aioredis.Redis, run_id: str) -> AsyncIterator[DispatchStore]:
    ns = f"{run_id}:ds{uuid.uuid4().hex[:6]}"
    yield DispatchStore(redis, ns, status_key(f"{ns}:geo"))
    keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
    if keys:
        await redis.delete(*keys)


async def enqueue(store: DispatchStore, oid: str, *, enter_ms: int, ready_ms: int) -> None:
    assert await store.enqueue(oid, region=REGION, enter_ms=enter_ms, now_ms=NOW - MIN,
                               pickup=Point(LAT, LNG), dropoff=Point(LAT + 0.01, LNG),
                               ready_ms=ready_ms, promised_ms=NOW + 45 * MIN, number=oid,
                               chef_id="k1")


async def test_food_ready_early_makes_a_waiting_order_due_now(store: DispatchStore) -> None:
    """Ready before the estimate: the order queued for later is due now (as
    `entry_when_food_ready_ms` says) and the round sees the real ready time."""
    await enqueue(store, "early", enter_ms=NOW + 15 * MIN, ready_ms=NOW + 20 * MIN)
    assert await store.due_orders(REGION, NOW, 10) == []
    assert await store.food_ready("early", NOW - 1_000, due_ms=NOW) is None
    record = await store.order("early")
    assert record is not None
    assert record.enter_ms == entry_when_food_ready_ms(enter_ms=NOW + 15 * MIN, now_ms=NOW)
    assert (record.ready_ms, record.food_ready_ms) == (NOW - 1_000, NOW - 1_000)
    n_due, orders = await store.round_orders(REGION, NOW, 10)
    assert (n_due, [(o.order_id, o.ready_ms) for o in orders]) == (1, [("early", NOW - 1_000)])


async def test_food_ready_late_keeps_the_entry_and_corrects_the_ready_time(
        store: DispatchStore) -> None:
    """Ready after the estimate: the order, due already, is not made later (nor earlier);
    the round's costs use the real ready time instead of the estimate."""
    await enqueue(store, "late", enter_ms=NOW - 10 * MIN, ready_ms=NOW - 5 * MIN)
    assert await store.food_ready("late", NOW + 3 * MIN, due_ms=NOW + 3 * MIN) is None
    record = await store.order("late")
    assert record is not None
    assert record.enter_ms == NOW - 10 * MIN
    assert record.ready_ms == NOW + 3 * MIN
    _, orders = await store.round_orders(REGION, NOW + 3 * MIN, 10)
    assert [(o.order_id, o.ready_ms) for o in orders] == [("late", NOW + 3 * MIN)]


async def test_food_ready_after_the_offer_leaves_the_queue_alone(store: DispatchStore) -> None:
    """An order offered or assigned is not put back in the queue by food ready; the courier
    holding it is the one to tell."""
    await enqueue(store, "held", enter_ms=NOW - MIN, ready_ms=NOW + 10 * MIN)
    t = await store.set_availability("c1", online=True, vehicle=Vehicle.BIKE, now_ms=NOW)
    assert t.result is TransitionResult.ONLINE
    _, offer_id = await store.offer("c1", "held", now_ms=NOW, expires_ms=NOW + 30_000)
    assert await store.food_ready("held", NOW + MIN, due_ms=NOW + MIN) is None  # offered
    assert (await store.resolve(offer_id, OfferAction.ACCEPT, now_ms=NOW + 2_000)).result \
        is TransitionResult.ACCEPTED
    assert await store.food_ready("held", NOW + MIN, due_ms=NOW + MIN) == "c1"  # assigned
    assert await store.due_orders(REGION, NOW + 60 * MIN, 10) == []
    assert await store.food_ready("unknown", NOW, due_ms=NOW) is None
