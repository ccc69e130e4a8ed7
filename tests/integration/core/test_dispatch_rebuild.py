"""Redis restarted empty: the dispatch state is rebuilt from the ORDERS and DISPATCH streams
before dispatching again, and couriers re-assert themselves with their next fix (the real
core app on real Redis/NATS; the namespace's keys are wiped as a restarted cache would be)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from api.resources import connect_redis
from api.settings import Settings
from dispatch.lifecycle import CourierState, OrderDispatchState
from geo.index_model import status_key
from geo.travel import Vehicle
from streams.catalog import Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import ensure_streams, publish
from tests.integration.core.conftest import eventually
from tests.integration.core.test_dispatch import FAST, World, now_ms, running_world, spot


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    """A core server with fast rounds (0.2 s) and short offers, in a namespace of its own."""
    async with running_world(settings, "r") as w:
        yield w


async def wipe(settings: Settings, namespace: str) -> int:
    """Delete every key of `namespace` (Redis restarted without persistence, as far as this
    deployment can tell; the shared Redis's other namespaces are left alone)."""
    redis = connect_redis(settings)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        return len(keys)
    finally:
        await redis.aclose()


async def held_by(w: World, courier: str) -> dict[str, str]:
    r = await w.http.get("/api/v1/delivery/orders", headers=w.auth(courier))
    assert r.status_code == 200, r.text
    return {o["order_id"]: o["status"] for o in r.json()["orders"]}


async def accept(w: World, courier: str, order_id: str) -> None:
    offer = await w.offer_for(courier, order_id)
    r = await w.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                          headers=w.auth(courier))
    assert r.status_code == 200, r.text


async def fix(w: World, courier: str, lat: float, lng: float) -> None:
    r = await w.http.post("/api/v1/delivery/locations", headers=w.auth(courier),
                          json={"fixes": [{"lat": lat, "lng": lng, "ts": now_ms()}]})
    assert r.json()["accepted"] == 1, r.text


async def test_redis_restarted_empty_strands_no_order(world: World, settings: Settings) -> None:
    """After the namespace's Redis keys vanish (Redis restarted without persistence): within
    10 s the dispatcher notices (the generation key is gone), rebuilds from the streams, and
    then: orders assigned or picked up before are still held by their couriers (their
    `GET /delivery/orders` lists them, in the same state); waiting orders, and an order
    whose offer was in flight, are offered again (to a courier coming online; to the offered
    courier, whose first fix after the rebuild sets it idle again); no order held before is
    ever offered again, and `dispatch_rebuilds_total` counts the rebuild."""
    w = world
    ns = w.names.ns
    rebuilds: Any = w.srv.core.dispatch_metrics.rebuilds  # type: ignore[attr-defined]
    before = rebuilds._value.get()
    lat, lng = spot()
    x = await w.courier(lat + 0.001, lng)
    o_assigned = await w.order((lat, lng), (lat + 0.01, lng))
    await accept(w, x, o_assigned)
    y = await w.courier(lat + 0.001, lng)
    o_picked = await w.order((lat, lng), (lat + 0.01, lng))
    await accept(w, y, o_picked)
    r = await w.http.put(f"/api/v1/delivery/orders/{o_picked}", headers=w.auth(y),
                         json={"status": "picked_up"})
    assert r.json()["status"] == "picked_up", r.text
    # An offer in flight: made, never answered (long enough to outlive the wipe? no need:
    # the wipe drops it and the order waits again).
    v = await w.courier(lat + 0.001, lng)
    o_offered = await w.order((lat, lng), (lat + 0.01, lng))
    await w.offer_for(v, o_offered)
    # Waiting orders far from every courier.
    far_lat, far_lng = (lat + 0.5, lng) if lat < 0 else (lat - 0.5, lng)
    waiting = [await w.order((far_lat, far_lng), (far_lat + 0.01, far_lng))
               for _ in range(3)]

    async def all_waiting() -> bool:
        listed = (await w.http.get("/api/v1/fleet/orders", params={"status": "waiting"},
                                   headers=w.auth("ops", "fleet_manager"))).json()["orders"]
        return set(waiting) <= {o["order_id"] for o in listed}
    await eventually(all_waiting, 10)

    assert await wipe(settings, ns) > 0
    wiped_ms = now_ms()
    started = time.monotonic()

    answers: list[int] = []

    async def held_again() -> bool:
        """Until the rebuild is done, a courier's orders answer 503 (retry), never a list
        that is missing what it holds (its app would give the order up)."""
        for courier, order, state in ((x, o_assigned, OrderDispatchState.ASSIGNED),
                                      (y, o_picked, OrderDispatchState.PICKED_UP)):
            r = await w.http.get("/api/v1/delivery/orders", headers=w.auth(courier))
            answers.append(r.status_code)
            if r.status_code == 503:
                assert r.json()["type"].endswith(":rebuilding"), r.text
                assert int(r.headers["retry-after"]) > 0
                return False
            assert r.status_code == 200, r.text
            assert {o["order_id"]: o["status"] for o in r.json()["orders"]} == {
                order: state.value}, r.text
        return True
    await eventually(held_again, 10)
    held_s = time.monotonic() - started

    async def counted() -> bool:
        return bool(rebuilds._value.get() == before + 1)
    await eventually(counted)

    # A courier comes online by the waiting orders; V, by its chef, streams fixes as apps
    # do (and never calls availability again).
    await w.courier(far_lat + 0.001, far_lng)

    async def offered_again() -> bool:
        await fix(w, v, lat + 0.001, lng)
        fresh = {o["order_id"] for c, o, t in w.offers.all() if t >= wiped_ms}
        return o_offered in fresh and bool(fresh & set(waiting))
    await eventually(offered_again, 10)
    offered_s = time.monotonic() - started
    print(f"\nrecovery after the wipe: holdings back in {held_s:.2f} s, "
          f"waiting orders offered again in {offered_s:.2f} s")

    again = [o for c, o, t in w.offers.all() if t >= wiped_ms
             and o["order_id"] in (o_assigned, o_picked)]
    assert again == []  # no held order is offered (so none is assigned) twice
    states = {c["courier_id"]: c["state"] for c in [
        (await w.http.put("/api/v1/delivery/availability", headers=w.auth(c),
                          json={"online": True})).json() for c in (x, y)]}
    assert states == {x: "to_pickup", y: "delivering"}


async def test_a_courier_streaming_on_its_socket_is_offered_again(
        world: World, settings: Settings) -> None:
    """A courier online and idle on /ws/courier when Redis loses its data: its next socket fix
    after the rebuild sets it idle again (no availability call), and an order accepted near
    it then reaches it as an OFFER on that same socket."""
    import asyncio
    import json

    import websockets

    w = world
    rebuilds: Any = w.srv.core.dispatch_metrics.rebuilds  # type: ignore[attr-defined]
    before = rebuilds._value.get()
    lat, lng = spot()
    cid = await w.courier(lat + 0.001, lng)
    url = f"{w.srv.ws_url}/ws/courier?token={w.srv.token(cid, 'delivery')}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "PING"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "PONG"
        await wipe(settings, w.names.ns)

        async def counted() -> bool:
            return bool(rebuilds._value.get() == before + 1)
        await eventually(counted, 10)
        oid = await w.order((lat, lng), (lat + 0.01, lng))
        deadline = time.monotonic() + 10
        offer: dict[str, Any] | None = None
        while offer is None:
            assert time.monotonic() < deadline, "no OFFER on the socket within 10 s"
            await ws.send(json.dumps({"type": "LOCATION", "payload": {
                "lat": lat + 0.001, "lng": lng, "ts": now_ms()}}))
            with contextlib.suppress(TimeoutError):
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                if msg["type"] == "OFFER":
                    offer = msg["payload"]
        assert offer["order_id"] == oid


async def test_one_process_rebuilds_the_others_wait_then_take_couriers_back(
        settings: Settings) -> None:
    """Two core processes' rebuilders on one Redis: when the generation key is gone, the one
    that takes the rebuild lease rebuilds (its `ensure` answers True once done), the other
    answers False (no rounds) until the new generation is set, then True; both then let a
    courier unknown to dispatch re-assert itself (idle) with its next fix, and a courier that
    set itself offline stays offline."""
    from prometheus_client import CollectorRegistry, Counter

    from api.core.dispatch.rebuild import Rebuilder
    from api.core.dispatch.store import DispatchStore
    from api.core.tracking.orders_view import OrdersView
    from dispatch.lifecycle import CourierState

    ns = f"{settings.server.namespace}g{uuid.uuid4().hex[:4]}"
    names = Names(ns)
    redis = connect_redis(settings)
    nc = await nats.connect(servers=settings.stores.nats_servers)
    js = nc.jetstream()
    await ensure_streams(js, names)
    store = DispatchStore(redis, ns, status_key(f"{ns}:geo"))

    async def no_enqueue(event: Any, now_ms: int) -> bool:
        raise AssertionError("empty streams: nothing to enqueue")

    def rebuilder() -> Rebuilder:
        return Rebuilder(store=store, view=OrdersView(redis, f"{ns}:view"), enqueue=no_enqueue,
                         js=js, names=names, clock=now_ms,
                         rebuilds=Counter("r", "r", registry=CollectorRegistry()))
    try:
        a, b = rebuilder(), rebuilder()
        assert await a.ensure()  # a new deployment: one generation
        assert await b.ensure()
        assert a.known == b.known is not None
        assert (a.reasserter.armed, b.reasserter.armed) == (False, False)
        await store.set_availability("c-off", online=False, vehicle=None, now_ms=now_ms())
        await wipe(settings, ns)
        assert await store.hold_rebuild_lease(b.holder, 5_000)  # b is rebuilding
        assert not await a.ensure()
        await store.set_availability("c-off", online=False, vehicle=None, now_ms=now_ms())
        assert await b.ensure()
        assert await a.ensure()
        assert a.known == b.known is not None
        assert (a.reasserter.armed, b.reasserter.armed) == (True, True)
        for r, courier in ((a, "c-off"), (a, "c-a"), (b, "c-b")):
            r.reasserter.seen(courier)

        async def states() -> list[CourierState]:
            return [c.state for c in await store.couriers(["c-a", "c-b", "c-off"])]
        await eventually(lambda: _equal(states(), [CourierState.IDLE] * 2 + [
            CourierState.OFFLINE]))
    finally:
        await wipe(settings, ns)
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):
                await js.delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()
        await redis.aclose()


async def _equal(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_couriers_come_back_from_their_recorded_availability_and_declines(
        world: World, settings: Settings) -> None:
    """Availability and declines are recorded in PostgreSQL: after Redis lost its data, the
    rebuild sets a courier that was online idle again with its vehicle, and one that had gone
    offline offline, with no availability call and no fix from either; the online one is
    offered a new order near both, and is never offered again the order it declined before
    the loss."""
    w = world
    rebuilds: Any = w.srv.core.dispatch_metrics.rebuilds  # type: ignore[attr-defined]
    before = rebuilds._value.get()
    lat, lng = spot()
    a = await w.courier(lat + 0.001, lng, vehicle="car")
    off = await w.courier(lat + 0.0005, lng, vehicle="scooter")
    r = await w.http.put("/api/v1/delivery/availability", headers=w.auth(off),
                         json={"online": False})
    assert r.json()["state"] == "offline", r.text
    declined = await w.order((lat, lng), (lat + 0.01, lng))
    offer = await w.offer_for(a, declined)
    r = await w.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/decline",
                          headers=w.auth(a))
    assert r.status_code == 200, r.text

    assert await wipe(settings, w.names.ns) > 0
    wiped_ms = now_ms()

    async def counted() -> bool:
        return bool(rebuilds._value.get() == before + 1)
    await eventually(counted, 10)
    store = w.dispatch.store
    back = {c: await store.courier(c) for c in (a, off)}
    assert (back[a].state, back[a].vehicle) == (CourierState.IDLE, Vehicle.CAR)
    assert (back[off].state, back[off].vehicle) == (CourierState.OFFLINE, Vehicle.SCOOTER)
    assert await store.declined_by([declined]) == [{a}]

    fresh = await w.order((lat, lng), (lat + 0.01, lng))
    offer = await w.offer_for(a, fresh, timeout_s=10)
    r = await w.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                          headers=w.auth(a))
    assert r.status_code == 200, r.text
    await asyncio.sleep(2 * settings.replace(**FAST).dispatch.round_s + 1.0)  # rounds run
    after = [(c, o["order_id"]) for c, o, t in w.offers.all() if t >= wiped_ms]
    assert (a, declined) not in after
    assert all(c != off for c, _ in after), after


async def test_a_rebuild_without_postgresql_goes_on_and_couriers_reassert(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL unreachable while Redis lost its data (its records pool refused): the
    rebuild still completes (a new generation, rounds may run), warns that availability and
    declines were not restored, and a courier comes back idle with its next fix."""
    import asyncpg
    from prometheus_client import CollectorRegistry, Counter

    from api.core.dispatch.rebuild import Rebuilder
    from api.core.dispatch.records import DispatchRecords
    from api.core.dispatch.store import DispatchStore
    from api.core.tracking.orders_view import OrdersView
    from api.resources import _connect_postgres
    from api.runtime import free_port

    ns = f"{settings.server.namespace}p{uuid.uuid4().hex[:4]}"
    names = Names(ns)
    redis = connect_redis(settings)
    nc = await nats.connect(servers=settings.stores.nats_servers)
    js = nc.jetstream()
    await ensure_streams(js, names)
    store = DispatchStore(redis, ns, status_key(f"{ns}:geo"))
    nowhere = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                                        min_size=0, connect=_connect_postgres, timeout=2)

    async def no_enqueue(event: Any, now_ms: int) -> bool:
        raise AssertionError("empty streams: nothing to enqueue")

    rebuilder = Rebuilder(store=store, view=OrdersView(redis, f"{ns}:view"),
                          enqueue=no_enqueue, js=js, names=names, clock=now_ms,
                          rebuilds=Counter("r", "r", registry=CollectorRegistry()),
                          records=DispatchRecords(nowhere, ns))
    try:
        assert await rebuilder.ensure()  # a new deployment
        first = rebuilder.known
        await wipe(settings, ns)
        assert await rebuilder.ensure()
        assert rebuilder.known not in (None, first)
        assert "availability and declines not restored" in caplog.text
        rebuilder.reasserter.seen("c-x")

        async def idle() -> bool:
            return (await store.courier("c-x")).state is CourierState.IDLE
        await eventually(idle)
    finally:
        await nowhere.close()
        await wipe(settings, ns)
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):
                await js.delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()
        await redis.aclose()


async def test_food_ready_heard_during_a_rebuild_is_not_lost(world: World,
                                                             settings: Settings) -> None:
    """An order event that arrives after Redis lost the state and before the rebuild has put
    the orders back (held here: another process holds the rebuild lease) waits for it: the
    kitchen's `ready` then reaches the restored order, and the orders view is whole, instead
    of `ready` being applied to a store that has nothing else of the order yet and acked."""
    w = world
    lat, lng = spot()
    c = await w.courier(lat + 0.001, lng)
    oid = await w.order((lat, lng), (lat + 0.01, lng))
    await accept(w, c, oid)

    assert await wipe(settings, w.names.ns) > 0
    blocker = connect_redis(settings)
    lease = f"{w.dispatch.store.p}:rebuild"
    try:
        await blocker.set(lease, "another-process", px=3000)  # its rebuild is slow
        at = now_ms()
        await publish(w.js, w.names.order_event("status", oid), OrderStatusChanged(
            order_id=oid, order_number=f"HC{oid[:6]}", customer_id="cust-1", chef_id="chef-1",
            status="ready", previous_status="preparing", at_ms=at, pickup=LatLng(lat, lng),
            dropoff=LatLng(lat + 0.01, lng)), msg_id=f"{oid}:ready")
        await asyncio.sleep(1.0)  # the intake has it: before the fix it applied and acked it
        assert await w.dispatch.store.order(oid) is None  # nothing restored yet
        await blocker.delete(lease)  # the other process died: this one rebuilds
    finally:
        await blocker.aclose()

    async def ready_again() -> bool:
        o = await w.dispatch.store.order(oid)
        return bool(o and o.courier_id == c and o.food_ready_ms == at)
    await eventually(ready_again, 10)

    async def served() -> bool:  # the order is back before the rebuild ends (503 till then)
        r = await w.http.get("/api/v1/delivery/orders", headers=w.auth(c))
        return r.status_code == 200
    await eventually(served, 10)
    mine = await held_by(w, c)
    assert mine == {oid: OrderDispatchState.ASSIGNED.value}
    # The orders view has the whole order back: applying `ready` to the empty store first
    # would have made the older `accepted` (its promise) look stale to the replay.
    track = await w.srv.core.orders.get(oid)  # type: ignore[attr-defined]
    assert track is not None
    assert track.status == "ready", track
    assert track.promised_at_ms is not None, track
    assert track.courier_id == c, track
