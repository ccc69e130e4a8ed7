"""Dispatch on real Redis/NATS: accepted orders are offered to nearby idle couriers, offers
are accepted/declined/expired atomically, couriers report progress, fleet managers override —
and no courier ever holds two offers nor an order two couriers, even with two processes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from api.core.dispatch.store import dispatch_prefix
from api.resources import connect_redis
from api.settings import Settings
from api.stores.live_index import LiveIndex
from geo.cells import region_of
from streams.catalog import DISPATCH, Names
from streams.events import LatLng, OrderStatusChanged, decode
from streams.jetstream import ensure_streams, publish
from streams.wire import CourierJob
from tests.integration.core.conftest import CoreServer, eventually, serve_core, spawn_core

FAST = {"dispatch__round_s": 0.2, "dispatch__offer_ttl_s": 1.5, "dispatch__lease_ttl_s": 2.0,
        "dispatch__max_stack": 2}
"""Fast rounds and short offers; stacking on (off by default), which this module tests."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SteppedClock:
    """The wall clock (epoch ms UTC) plus however far the tests stepped it forward: the
    world's dispatcher reads it, so a test moves time past an offer's expiry instead of
    sleeping through it. Steps stay far below COURIER_STALE_S (fixes are stamped by the wall
    clock)."""

    def __init__(self) -> None:
        self.ahead_ms = 0

    def __call__(self) -> int:
        return now_ms() + self.ahead_ms

    def advance(self, ms: int) -> None:
        self.ahead_ms += ms


async def filed(settings: Settings, namespace: str, courier_ids: list[str]) -> None:
    """Wait until the indexer has filed every one of these couriers (in `namespace`)."""

    redis = connect_redis(settings)
    index = LiveIndex(redis, f"{namespace}:geo")

    async def all_filed() -> bool:
        return all(p is not None for p in await index.positions(courier_ids))
    try:
        await eventually(all_filed, 10)
    finally:
        await redis.aclose()


class Offers:
    """Records every message pushed to couriers (the `<ns>.courier.*` subjects)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], int]] = []

    async def on_msg(self, msg: Any) -> None:
        self.messages.append((msg.subject.rsplit(".", 1)[1], json.loads(msg.data), now_ms()))

    def of(self, courier: str, kind: str = "OFFER") -> list[dict[str, Any]]:
        return [m["payload"] for c, m, _ in self.messages if c == courier and m["type"] == kind]

    def all(self, kind: str = "OFFER") -> list[tuple[str, dict[str, Any], int]]:
        return [(c, m["payload"], t) for c, m, t in self.messages if m["type"] == kind]


class World:
    def __init__(self, srv: CoreServer, http: httpx.AsyncClient, nc: Client, names: Names,
                 offers: Offers) -> None:
        self.srv = srv
        self.dispatch: Any = srv.core.dispatch  # type: ignore[attr-defined]
        self.clock = SteppedClock()
        self.dispatch.clock = self.clock  # the dispatcher's time is the world's
        self.http = http
        self.nc = nc
        self.js = nc.jetstream()
        self.names = names
        self.offers = offers

    async def courier(self, lat: float, lng: float, vehicle: str = "bike",
                      prefix: str = "c") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        h = self.srv.auth(cid, "delivery")
        r = await self.http.post("/api/v1/delivery/locations", headers=h,
                                 json={"fixes": [{"lat": lat, "lng": lng, "ts": now_ms()}]})
        assert r.json()["accepted"] == 1
        r = await self.http.put("/api/v1/delivery/availability", headers=h,
                                json={"online": True, "vehicle": vehicle})
        assert r.json()["state"] == "idle", r.text

        async def indexed() -> bool:
            pos = await self.srv.core.couriers.position(cid)  # type: ignore[attr-defined]
            return pos is not None
        await eventually(indexed)
        return cid

    async def order(self, pickup: tuple[float, float], dropoff: tuple[float, float],
                    ready_in_s: float = 0, chef: str = "chef-1",
                    promised_in_s: float = 40 * 60, scheduled: bool = False) -> str:
        oid = str(uuid.uuid4())
        t = now_ms()
        ev = OrderStatusChanged(
            order_id=oid, order_number=f"HC{oid[:6]}", customer_id="cust-1", chef_id=chef,
            status="accepted", previous_status="pending", at_ms=t,
            pickup=LatLng(*pickup), dropoff=LatLng(*dropoff),
            ready_at_ms=t + round(ready_in_s * 1000),
            promised_at_ms=t + round(promised_in_s * 1000),
            scheduled_for_ms=t + round(promised_in_s * 1000) if scheduled else None)
        await publish(self.js, self.names.order_event("status", oid), ev, msg_id=f"{oid}:acc")
        return oid

    async def offer_for(self, courier: str, order_id: str, timeout_s: float = 8) -> dict[str, Any]:
        async def got() -> dict[str, Any] | None:
            return next((o for o in self.offers.of(courier) if o["order_id"] == order_id), None)
        return await eventually(got, timeout_s)  # type: ignore[return-value]

    def auth(self, cid: str, role: str = "delivery") -> dict[str, str]:
        return self.srv.auth(cid, role)


@contextlib.asynccontextmanager
async def running_world(settings: Settings, tag: str, **overrides: Any) -> AsyncIterator[World]:
    """A core server with fast rounds and short offers (`FAST`, then `overrides`) in a
    namespace of its own (``tag`` marks it), with the couriers' pushes collected; its
    streams are deleted afterwards."""
    ns = f"{settings.server.namespace}{tag}{uuid.uuid4().hex[:4]}"
    fast = settings.replace(server__namespace=ns, **{**FAST, **overrides})
    nc = await nats.connect(servers=settings.stores.nats_servers)
    offers = Offers()
    names = Names(ns)
    await ensure_streams(nc.jetstream(), names)
    sub = await nc.subscribe(f"{ns}.courier.*", cb=offers.on_msg)
    try:
        async with serve_core(fast) as srv, httpx.AsyncClient(base_url=srv.url, timeout=10) as h:
            yield World(srv, h, nc, names, offers)
    finally:
        await sub.unsubscribe()
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await nc.jetstream().delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    """A core server with fast rounds and short offers, in a namespace of its own."""
    async with running_world(settings, "d") as w:
        yield w


def spot(rng: random.Random | None = None) -> tuple[float, float]:
    r = rng or random.Random()
    return r.uniform(-30, 30), r.uniform(-150, 150)


async def dispatch_events(w: World, order_id: str) -> list[Any]:
    js = w.js
    sub = await js.subscribe(w.names.dispatch_event("*", order_id),
                             stream=w.names.stream(DISPATCH), ordered_consumer=True)
    events = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            events.append(decode(msg.data))
    finally:
        await sub.unsubscribe()
    return events


async def test_order_goes_to_nearest_idle_courier_and_accept_assigns(world: World) -> None:
    """The nearer idle courier gets the offer; accepting assigns it, publishes
    dispatch.assigned; a second accept is 409, another courier's accept is 404."""
    lat, lng = spot()
    near = await world.courier(lat + 0.003, lng)
    far = await world.courier(lat + 0.02, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng + 0.01))
    offer = await world.offer_for(near, oid)
    assert world.offers.of(far) == []
    r = await world.http.get("/api/v1/delivery/offers", headers=world.auth(near))
    assert [o["offer_id"] for o in r.json()["offers"]] == [offer["offer_id"]]
    assert (await world.http.get("/api/v1/delivery/offers", headers=world.auth(far))
            ).json() == {"offers": []}
    path = f"/api/v1/delivery/offers/{offer['offer_id']}/accept"
    assert (await world.http.post(path, headers=world.auth(far))).status_code == 404
    r = await world.http.post(path, headers=world.auth(near))
    assert r.status_code == 200, r.text
    assert r.json()["order_id"] == oid
    assert (await world.http.post(path, headers=world.auth(near))).status_code == 409
    mine = (await world.http.get("/api/v1/delivery/orders", headers=world.auth(near))).json()
    assert [o["order_id"] for o in mine["orders"]] == [oid]
    assert [type(e).__name__ for e in await dispatch_events(world, oid)] == ["CourierAssigned"]


async def test_decline_and_expiry_redispatch_without_that_courier(world: World) -> None:
    """A declined offer goes to another courier (never back to the decliner); an offer
    nobody answers expires and the order is offered again, to someone else."""
    lat, lng = spot()
    a = await world.courier(lat + 0.002, lng)
    b = await world.courier(lat + 0.004, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    first = await world.offer_for(a, oid)
    r = await world.http.post(f"/api/v1/delivery/offers/{first['offer_id']}/decline",
                              headers=world.auth(a))
    assert r.status_code == 200
    second = await world.offer_for(b, oid)
    assert second["offer_id"] != first["offer_id"]
    # b lets it expire: time moves past the offer's TTL.
    world.clock.advance(round(world.srv.settings.dispatch.offer_ttl_s * 1000))

    async def expired() -> bool:
        return any(p["order_id"] == oid for p in world.offers.of(b, "OFFER_EXPIRED"))
    await eventually(expired)
    late = await world.http.post(f"/api/v1/delivery/offers/{second['offer_id']}/accept",
                                 headers=world.auth(b))
    assert late.status_code == 409
    # a declined before, so nobody is left: a round (run here, besides the loop's) offers
    # the order to no one, and it waits.
    await world.dispatch.run_round(region_of(lat, lng))
    assert (o := await world.dispatch.store.order(oid)) is not None
    assert o.state == "waiting"
    assert [o["offer_id"] for o in world.offers.of(a) if o["order_id"] == oid] == [
        first["offer_id"]]
    # Back in the queue without a or b: a new courier nearby gets it; a and b never again.
    c = await world.courier(lat + 0.006, lng)
    await world.offer_for(c, oid)
    assert len([o for o in world.offers.of(b) if o["order_id"] == oid]) == 1


async def test_courier_progress_and_delivered_needs_to_be_at_the_door(world: World) -> None:
    """picked_up → delivering → delivered; delivered is refused 150 m+ from the drop-off
    and accepted at the door; each step publishes its dispatch event; bad steps are 409."""
    lat, lng = spot()
    c = await world.courier(lat + 0.001, lng)
    drop = (lat + 0.01, lng)
    oid = await world.order((lat, lng), drop)
    offer = await world.offer_for(c, oid)
    assert (await world.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                                  headers=world.auth(c))).status_code == 200
    put = f"/api/v1/delivery/orders/{oid}"
    assert (await world.http.put(put, json={"status": "delivered"}, headers=world.auth(c))
            ).status_code == 409  # not picked up yet
    assert (await world.http.put(put, json={"status": "picked_up"}, headers=world.auth(c))
            ).json()["status"] == "picked_up"
    assert (await world.http.put(put, json={"status": "delivering"}, headers=world.auth(c))
            ).json()["status"] == "delivering"
    far = await world.http.put(put, json={"status": "delivered"}, headers=world.auth(c))
    assert far.status_code == 409
    assert far.json()["type"].endswith("too_far_from_dropoff")
    r = await world.http.post("/api/v1/delivery/locations", headers=world.auth(c),
                              # 25 s ahead (the clock-skew allowance) keeps the ~1 km ride
                              # plausible (< 70 m/s) without waiting in the test
                              json={"fixes": [{"lat": drop[0] - 0.0005, "lng": drop[1],
                                               "ts": now_ms() + 25_000}]})
    assert r.json()["accepted"] == 1

    async def at_door() -> bool:
        pos = await world.srv.core.couriers.position(c)  # type: ignore[attr-defined]
        return pos is not None and abs(pos.lat - (drop[0] - 0.0005)) < 1e-9
    await eventually(at_door)
    done = await world.http.put(put, json={"status": "delivered"}, headers=world.auth(c))
    assert done.json()["status"] == "delivered", done.text
    other = f"c-{uuid.uuid4().hex[:6]}"
    assert (await world.http.put(put, json={"status": "picked_up"}, headers=world.auth(other))
            ).status_code == 404
    kinds = [type(e).__name__ for e in await dispatch_events(world, oid)]
    assert kinds == ["CourierAssigned", "OrderPickedUp", "OrderDelivering", "OrderDelivered"]
    state = await world.http.put("/api/v1/delivery/availability", headers=world.auth(c),
                                 json={"online": True})
    assert state.json()["state"] == "idle"


async def test_courier_on_the_way_is_told_when_the_food_is_ready(world: World) -> None:
    """commerce's `ready` status reaches the assigned courier as ORDER_READY (and
    GET /delivery/orders says food_ready); an order nobody holds yet pushes nothing."""
    lat, lng = spot()
    c = await world.courier(lat + 0.001, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    offer = await world.offer_for(c, oid)
    assert (await world.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                                  headers=world.auth(c))).status_code == 200
    mine = (await world.http.get("/api/v1/delivery/orders", headers=world.auth(c))).json()
    assert [o["food_ready"] for o in mine["orders"]] == [False]

    async def ready(order_id: str) -> int:
        t = now_ms()
        ev = OrderStatusChanged(
            order_id=order_id, order_number=f"HC{order_id[:6]}", customer_id="cust-1",
            chef_id="chef-1", status="ready", previous_status="preparing", at_ms=t,
            pickup=LatLng(lat, lng), dropoff=LatLng(lat + 0.01, lng))
        await publish(world.js, world.names.order_event("status", order_id), ev,
                      msg_id=f"{order_id}:ready")
        return t

    at = await ready(oid)

    async def told() -> list[dict[str, Any]]:
        return world.offers.of(c, "ORDER_READY")
    assert await eventually(told) == [{"order_id": oid, "ready_at": at}]
    mine = (await world.http.get("/api/v1/delivery/orders", headers=world.auth(c))).json()
    assert [(o["order_id"], o["food_ready"], o["ready_at"]) for o in mine["orders"]] == [
        (oid, True, at)]

    # Ready before any courier holds it: recorded (the offer's ready_at), nobody pushed to.
    lone_lat, lone_lng = spot()
    waiting = await world.order((lone_lat, lone_lng), (lone_lat + 0.01, lone_lng))
    await ready(waiting)

    async def recorded() -> bool:
        o = await world.dispatch.store.order(waiting)
        return bool(o and o.food_ready_ms is not None)
    await eventually(recorded)
    assert all(p["order_id"] != waiting for _, p, _ in world.offers.all("ORDER_READY"))


async def test_a_scheduled_order_enters_matching_near_its_slot_not_at_once(
        world: World) -> None:
    """No idle courier near the chef: an ASAP order is due at once, while an order
    scheduled for three hours ahead enters `DISPATCH_SCHEDULED_LEAD_S` (20 min) before its
    food is ready, so no courier is sent hours early."""
    lat, lng = spot()
    asap = await world.order((lat, lng), (lat + 0.01, lng), ready_in_s=30 * 60)
    later = await world.order((lat, lng), (lat + 0.01, lng), ready_in_s=3 * 3600,
                              promised_in_s=3 * 3600 + 25 * 60, scheduled=True)

    async def queued(oid: str) -> Any:
        return await world.dispatch.store.order(oid)
    now_asap = await eventually(lambda: queued(asap))
    scheduled = await eventually(lambda: queued(later))
    assert now_asap.enter_ms <= world.clock()  # type: ignore[attr-defined]
    lead_ms = round(world.srv.settings.dispatch.scheduled_lead_s * 1000)
    assert scheduled.enter_ms == scheduled.ready_ms - lead_ms  # type: ignore[attr-defined]
    assert scheduled.ready_ms > world.clock() + 2 * 3600_000  # type: ignore[attr-defined]


async def test_food_ready_early_brings_the_courier_now_not_at_the_estimate(
        world: World) -> None:
    """Early-ready kitchen (issue #16): the chef accepts with a 25-minute estimate, so the
    order is queued to enter matching minutes from now; the food is marked ready at once, and
    the idle courier 600 m away gets the offer within a few rounds, carrying the real ready
    time."""
    lat, lng = spot()
    c = await world.courier(lat + 0.0054, lng)  # ~600 m north of the chef
    oid = await world.order((lat, lng), (lat + 0.01, lng), ready_in_s=25 * 60)

    async def queued() -> Any:
        return await world.dispatch.store.order(oid)
    record = await eventually(queued)
    assert record.enter_ms > world.clock() + 15 * 60_000  # type: ignore[attr-defined]
    assert world.offers.of(c) == []
    fm = world.auth("fm-1", "fleet_manager")

    async def timeline() -> Any:
        r = await world.http.get(f"/api/v1/fleet/orders/{oid}/timeline", headers=fm)
        assert r.status_code == 200, r.text
        return r.json()
    t = await timeline()  # the console shows the food as expected 25 minutes out
    assert (t["ready_at"], t["food_ready"]) == (record.ready_ms, False)  # type: ignore[attr-defined]
    assert t["ready_at"] > now_ms() + 20 * 60_000

    at = now_ms()
    ev = OrderStatusChanged(
        order_id=oid, order_number=f"HC{oid[:6]}", customer_id="cust-1", chef_id="chef-1",
        status="ready", previous_status="preparing", at_ms=at, pickup=LatLng(lat, lng),
        dropoff=LatLng(lat + 0.01, lng), ready_at_ms=at + 25 * 60_000)
    await publish(world.js, world.names.order_event("status", oid), ev, msg_id=f"{oid}:ready")
    offer = await world.offer_for(c, oid, timeout_s=5)  # rounds every 0.2 s
    assert offer["ready_at"] == at
    t = await timeline()
    assert (t["ready_at"], t["food_ready"]) == (at, True)


async def test_fleet_manager_assigns_and_unassigns(world: World) -> None:
    """Force-assign takes an idle courier (a busy one is 409); unassign returns the order to
    waiting; couriers cannot use fleet endpoints."""
    lat, lng = spot()
    busy = await world.courier(lat + 0.001, lng)
    oid0 = await world.order((lat, lng), (lat + 0.01, lng))
    first = await world.offer_for(busy, oid0)
    assert first["order_id"] == oid0
    idle = await world.courier(lat + 0.3, lng)  # too far to be offered anything
    oid = await world.order((lat + 0.25, lng + 0.2), (lat + 0.26, lng + 0.2))
    fm = world.auth("fm-1", "fleet_manager")
    assert (await world.http.post(f"/api/v1/fleet/orders/{oid}/assign",
                                  json={"courier_id": busy}, headers=fm)).status_code in (404, 409)

    async def waiting() -> bool:
        r = await world.http.get("/api/v1/fleet/orders", params={"status": "waiting"},
                                 headers=fm)
        return oid in {o["order_id"] for o in r.json()["orders"]}
    await eventually(waiting)
    r = await world.http.post(f"/api/v1/fleet/orders/{oid}/assign", json={"courier_id": busy},
                              headers=fm)
    assert r.status_code == 409
    r = await world.http.post(f"/api/v1/fleet/orders/{oid}/assign", json={"courier_id": idle},
                              headers=fm)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "assigned"
    assert r.json()["courier_id"] == idle

    async def told() -> list[dict[str, Any]]:
        return [p for p in world.offers.of(idle, "ASSIGNED") if p["order_id"] == oid]
    await eventually(told)  # the courier's device hears of the force-assign
    r = await world.http.post(f"/api/v1/fleet/orders/{oid}/unassign", headers=fm)
    assert r.json()["status"] == "waiting"
    assert r.json()["courier_id"] is None
    assert (await world.http.post(f"/api/v1/fleet/orders/{oid}/unassign",
                                  headers=world.auth(idle))).status_code == 403
    assert (await world.http.get("/api/v1/fleet/orders", params={"status": "nonsense"},
                                 headers=fm)).status_code == 400


async def test_two_processes_never_double_offer_or_double_assign(settings: Settings) -> None:
    """Two core processes run rounds over 200 orders and 100 couriers at once while couriers
    accept, decline or ignore offers: no courier ever holds two open offers, no order is
    accepted by two couriers, no courier carries more than DISPATCH_MAX_STACK (2) orders —
    every order has one chef here, so accepted couriers are offered stacked orders too."""
    ns = f"{settings.server.namespace}p{uuid.uuid4().hex[:4]}"
    env = {"HOMECHEF_NAMESPACE": ns, "DISPATCH_ROUND_S": "0.2", "OFFER_TTL_S": "2.0",
           "LEASE_TTL_S": "2.0", "DISPATCH_RADIUS_M": "8000", "DISPATCH_MAX_STACK": "2"}
    nc = await nats.connect(servers=settings.stores.nats_servers)
    names = Names(ns)
    await ensure_streams(nc.jetstream(), names)
    offers = Offers()
    await nc.subscribe(f"{ns}.courier.*", cb=offers.on_msg)
    procs = [await spawn_core(settings.replace(server__namespace=ns), **env)
             for _ in range(2)]
    rng = random.Random(42)
    lat0, lng0 = spot(rng)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            from api.auth import TokenCodec
            assert settings.server.jwt_secret
            codec = TokenCodec(settings.server.jwt_secret)

            def auth(cid: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {codec.issue(cid, 'delivery')}"}

            couriers = [f"k{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(100)]
            for i, cid in enumerate(couriers):
                base = procs[i % 2].url
                r = await http.post(f"{base}/api/v1/delivery/locations", headers=auth(cid),
                                    json={"fixes": [{"lat": lat0 + rng.uniform(-0.03, 0.03),
                                                     "lng": lng0 + rng.uniform(-0.03, 0.03),
                                                     "ts": now_ms()}]})
                assert r.json()["accepted"] == 1
                r = await http.put(f"{base}/api/v1/delivery/availability", headers=auth(cid),
                                   json={"online": True, "vehicle": "scooter"})
                assert r.status_code == 200
            await filed(settings, ns, couriers)
            js = nc.jetstream()
            order_ids = []
            for _ in range(200):
                oid = str(uuid.uuid4())
                order_ids.append(oid)
                t = now_ms()
                await publish(js, names.order_event("status", oid), OrderStatusChanged(
                    order_id=oid, order_number=oid[:6], customer_id="c", chef_id="k",
                    status="accepted", at_ms=t,
                    pickup=LatLng(lat0 + rng.uniform(-0.03, 0.03),
                                  lng0 + rng.uniform(-0.03, 0.03)),
                    dropoff=LatLng(lat0, lng0), ready_at_ms=t, promised_at_ms=t + 3_600_000),
                    msg_id=oid)
            accepted: dict[str, list[str]] = {}
            closed_at: dict[str, int] = {}  # offer -> just before it was accepted/declined
            seen: set[str] = set()
            deadline = time.monotonic() + 10
            async def answer(cid: str, payload: dict[str, Any], roll: float, base: str) -> None:
                offer_url = f"{base}/api/v1/delivery/offers/{payload['offer_id']}"
                if roll < 0.4:
                    sent_ms = now_ms()  # the accept happens after this instant
                    r = await http.post(f"{offer_url}/accept", headers=auth(cid))
                    if r.status_code == 200:
                        accepted.setdefault(payload["order_id"], []).append(cid)
                        closed_at[payload["offer_id"]] = sent_ms
                elif roll < 0.7:
                    sent_ms = now_ms()  # the decline happens after this instant
                    r = await http.post(f"{offer_url}/decline", headers=auth(cid))
                    if r.status_code == 200:
                        closed_at[payload["offer_id"]] = sent_ms

            while time.monotonic() < deadline:
                fresh = [(cid, p) for cid, p, _ in offers.all() if p["offer_id"] not in seen]
                seen.update(p["offer_id"] for _, p in fresh)
                # Answer concurrently, through either process, as real devices would.
                await asyncio.gather(*(answer(cid, p, rng.random(), procs[rng.randrange(2)].url)
                                       for cid, p in fresh))
                await asyncio.sleep(0.05)
    finally:
        for p in procs:
            await p.stop()
        await nc.close()

    all_offers = offers.all()
    assert len(all_offers) > 100, "dispatch made offers"
    assert accepted, "some offers were accepted"
    # No order accepted by two couriers; no courier accepted more than the stack bound.
    assert all(len(cs) == 1 for cs in accepted.values())
    winners = [cs[0] for cs in accepted.values()]
    per_courier = {c: winners.count(c) for c in set(winners)}
    assert max(per_courier.values()) <= 2
    assert 2 in per_courier.values(), "some courier was given a stacked order"
    # Redis agrees: what each courier holds is at most two orders, each naming that courier.
    redis = connect_redis(settings)
    try:
        for cid in per_courier:
            held = {m.decode() for m in await redis.smembers(f"{dispatch_prefix(ns)}:cs:{cid}")}
            assert len(held) <= 2
            for o in held:
                assert (await redis.hget(f"{dispatch_prefix(ns)}:o:{o}", "courier")) == cid.encode()
    finally:
        await redis.aclose()
    # Per courier, each new offer comes only after the previous one closed.
    ttl_ms = 2000
    by_courier: dict[str, list[dict[str, Any]]] = {}
    for cid, payload, _ in all_offers:
        by_courier.setdefault(cid, []).append(payload)
    accepted_offer_couriers = set(winners)
    for cid, its in by_courier.items():
        its.sort(key=lambda p: p["expires_at"])
        for prev, nxt in itertools.pairwise(its):
            created_next = nxt["expires_at"] - ttl_ms
            closed_prev = closed_at.get(prev["offer_id"], prev["expires_at"])
            # 50 ms: the server stamps a claim just before its script runs
            assert created_next >= closed_prev - 50, (cid, prev, nxt)
        if cid in accepted_offer_couriers:
            # Once a courier holds two orders (the bound) it gets no further offer.
            acc_orders = {o for o, cs in accepted.items() if cs[0] == cid}
            acc = [k for k, p in enumerate(its) if p["order_id"] in acc_orders]
            if len(acc) == 2:
                assert acc[-1] == len(its) - 1, (cid, its)


async def test_killed_lease_holder_regions_are_taken_over(settings: Settings) -> None:
    """Kill the process holding a region's round lease: the other process takes the region
    over within 10 s and dispatches new orders there."""
    ns = f"{settings.server.namespace}l{uuid.uuid4().hex[:4]}"
    env = {"HOMECHEF_NAMESPACE": ns, "DISPATCH_ROUND_S": "0.5", "LEASE_TTL_S": "4.0"}
    nc = await nats.connect(servers=settings.stores.nats_servers)
    names = Names(ns)
    await ensure_streams(nc.jetstream(), names)
    offers = Offers()
    await nc.subscribe(f"{ns}.courier.*", cb=offers.on_msg)
    s = settings.replace(server__namespace=ns)
    first = await spawn_core(s, **env)
    second = None
    redis = connect_redis(settings)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            from api.auth import TokenCodec
            assert settings.server.jwt_secret
            codec = TokenCodec(settings.server.jwt_secret)
            lat, lng = spot()
            couriers = []
            for i in range(2):
                cid = f"lease-{i}-{uuid.uuid4().hex[:4]}"
                h = {"Authorization": f"Bearer {codec.issue(cid, 'delivery')}"}
                await http.post(f"{first.url}/api/v1/delivery/locations", headers=h,
                                json={"fixes": [{"lat": lat + 0.001 * i, "lng": lng,
                                                 "ts": now_ms()}]})
                await http.put(f"{first.url}/api/v1/delivery/availability", headers=h,
                               json={"online": True})
                couriers.append(cid)
            await filed(settings, ns, couriers)
            js = nc.jetstream()

            async def order() -> str:
                oid = str(uuid.uuid4())
                t = now_ms()
                await publish(js, names.order_event("status", oid), OrderStatusChanged(
                    order_id=oid, order_number=oid[:6], customer_id="c", chef_id="k",
                    status="accepted", at_ms=t, pickup=LatLng(lat, lng),
                    dropoff=LatLng(lat + 0.01, lng), ready_at_ms=t,
                    promised_at_ms=t + 3_600_000), msg_id=oid)
                return oid

            o1 = await order()

            async def offered(oid: str) -> bool:
                return any(p["order_id"] == oid for _, p, _ in offers.all())
            await eventually(lambda: offered(o1), 10)
            leases = [k async for k in redis.scan_iter(match=f"{dispatch_prefix(ns)}:lease:*")]
            assert len(leases) == 1
            holder = await redis.get(leases[0])
            second = await spawn_core(s, **env)
            await first.kill()
            killed_at = time.monotonic()
            o2 = await order()
            await eventually(lambda: offered(o2), 12)
            assert time.monotonic() - killed_at < 10 + 2  # the order's own round included
            assert await redis.get(leases[0]) != holder
            assert o1 != o2
    finally:
        await first.kill()
        if second is not None:
            await second.stop()
        await redis.aclose()
        await nc.close()


async def test_offer_is_pushed_on_the_courier_socket(world: World) -> None:
    """A courier connected on /ws/courier receives {"type":"OFFER","payload":{offer_id,
    order_id, pickup, dropoff, ready_at, expires_at}} and can accept it over HTTP."""
    import websockets

    lat, lng = spot()
    cid = await world.courier(lat + 0.002, lng)
    url = f"{world.srv.ws_url}/ws/courier?token={world.srv.token(cid, 'delivery')}"
    async with websockets.connect(url) as ws:
        # The socket joins the courier hub before it reads anything: once PING is
        # answered, a pushed offer reaches it.
        await ws.send(json.dumps({"type": "PING"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "PONG"
        oid = await world.order((lat, lng), (lat + 0.01, lng), ready_in_s=60)
        deadline = time.monotonic() + 8
        offer: dict[str, Any] | None = None
        while offer is None and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 8))
            if msg["type"] == "OFFER":
                offer = msg["payload"]
        assert offer is not None
        assert set(offer) == {"offer_id", "order_id", "pickup", "dropoff", "ready_at",
                              "expires_at", "stacked", *CourierJob.__struct_fields__}
        assert offer["stacked"] is False
        assert offer["order_id"] == oid
        assert offer["pickup"] == {"lat": lat, "lng": lng}
        assert offer["expires_at"] > now_ms()
    r = await world.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                              headers=world.auth(cid))
    assert r.status_code == 200


async def test_open_offer_is_resent_when_the_courier_socket_reconnects(world: World) -> None:
    """An offer made while the device was away arrives first thing on (re)connect, on every
    connect while it is open; once accepted, a new connection gets no OFFER."""
    import websockets

    lat, lng = spot()
    cid = await world.courier(lat + 0.002, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng), ready_in_s=60)
    pushed = await world.offer_for(cid, oid)  # pushed while no socket was connected
    url = f"{world.srv.ws_url}/ws/courier?token={world.srv.token(cid, 'delivery')}"

    async def first_message() -> dict[str, Any]:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "PING"}))
            # The re-sent offer is queued before the socket reads anything, so it comes
            # before the PONG; with no open offer the PONG comes first.
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

    for _ in range(2):  # connect, drop, reconnect
        msg = await first_message()
        assert msg["type"] == "OFFER", msg
        assert msg["payload"]["offer_id"] == pushed["offer_id"]
        assert msg["payload"]["order_id"] == oid
        assert msg["payload"]["expires_at"] == pushed["expires_at"]
    r = await world.http.post(f"/api/v1/delivery/offers/{pushed['offer_id']}/accept",
                              headers=world.auth(cid))
    assert r.status_code == 200, r.text
    assert (await first_message())["type"] == "PONG"


async def accept(world: World, courier: str, offer: dict[str, Any]) -> None:
    r = await world.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                              headers=world.auth(courier))
    assert r.status_code == 200, r.text


async def held_by(world: World, courier: str) -> set[str]:
    r = await world.http.get("/api/v1/delivery/orders", headers=world.auth(courier))
    return {o["order_id"] for o in r.json()["orders"]}


async def test_same_chef_second_order_is_stacked_on_the_courier_heading_there(
        world: World) -> None:
    """A courier that accepted an order gets a second one from the same chef — rather than an
    idle courier 2 km away — carries both, and keeps the first when the second is taken off."""
    lat, lng = spot()
    c = await world.courier(lat + 0.002, lng, vehicle="scooter")
    o1 = await world.order((lat, lng), (lat + 0.01, lng), chef="chef-A", ready_in_s=120)
    first = await world.offer_for(c, o1)
    assert first["stacked"] is False
    await accept(world, c, first)
    far = await world.courier(lat + 0.02, lng, vehicle="scooter")
    o2 = await world.order((lat, lng), (lat + 0.0105, lng), chef="chef-A", ready_in_s=120)
    second = await world.offer_for(c, o2)
    assert second["stacked"] is True  # the device is told it carries both
    assert all(o["order_id"] != o2 for o in world.offers.of(far))
    await accept(world, c, second)
    assert await held_by(world, c) == {o1, o2}
    fm = world.auth("fm-1", "fleet_manager")
    r = await world.http.post(f"/api/v1/fleet/orders/{o2}/unassign", headers=fm)
    assert r.json()["status"] == "waiting", r.text
    assert await held_by(world, c) == {o1}
    r = await world.http.put("/api/v1/delivery/availability", headers=world.auth(c),
                             json={"online": False})
    assert r.status_code == 409  # still busy with o1: heading to the chef, not idle


async def test_insertion_that_breaks_a_promised_time_is_not_stacked(world: World) -> None:
    """A courier carrying an order with a tight promise is not offered a second order from
    another chef 3 km away (whichever went second would be late); an idle courier is."""
    from geo.travel import HaversineTravelModel, Vehicle

    model = HaversineTravelModel()
    lat, lng = spot()
    start = (lat + 0.002, lng)

    def tight_s(chef: tuple[float, float], drop: tuple[float, float]) -> float:
        """Promise: straight there and on to the door, plus hand-overs and 2 min."""
        return (model.travel_s(*start, *chef, Vehicle.SCOOTER)
                + model.travel_s(*chef, *drop, Vehicle.SCOOTER) + 120 + 120)

    c = await world.courier(*start, vehicle="scooter")
    chef1, drop1 = (lat, lng), (lat + 0.018, lng)
    o1 = await world.order(chef1, drop1, chef="chef-A", promised_in_s=tight_s(chef1, drop1))
    await accept(world, c, await world.offer_for(c, o1))
    chef2, drop2 = (lat, lng + 0.03), (lat + 0.018, lng + 0.03)
    o2 = await world.order(chef2, drop2, chef="chef-B", promised_in_s=tight_s(chef2, drop2))
    region = region_of(*chef2)

    async def queued() -> bool:
        return o2 in await world.dispatch.store.due_orders(region, world.clock(), 100)
    await eventually(queued)
    # A round (run here, besides the loop's) with c in reach and no idle courier: o2 waits.
    await world.dispatch.run_round(region)
    assert (o := await world.dispatch.store.order(o2)) is not None
    assert o.state == "waiting"
    assert all(o["order_id"] != o2 for o in world.offers.of(c))
    d = await world.courier(chef2[0] + 0.002, chef2[1], vehicle="scooter")
    await world.offer_for(d, o2)
    assert await held_by(world, c) == {o1}


async def test_events_survive_nats_being_unreachable_and_history_lands_in_postgres(
        world: World, settings: Settings) -> None:
    """An accept while JetStream is unreachable still succeeds (state is in Redis); its
    dispatch.assigned waits in the Redis outbox and is published once NATS is back. The
    history worker then writes the assignment and courier status rows to PostgreSQL."""
    import asyncpg

    from streams.events import CourierAssigned, OrderPickedUp

    lat, lng = spot()
    c = await world.courier(lat + 0.001, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    offer = await world.offer_for(c, oid)
    d = world.dispatch
    live_js = d.js
    dead = await nats.connect(servers=settings.stores.nats_servers)
    await dead.close()  # a real, closed connection: every publish on it fails
    d.js = dead.jetstream()
    try:
        await accept(world, c, offer)
        assert await d.store.outbox_size() >= 1
        assert await dispatch_events(world, oid) == []
    finally:
        d.js = live_js
    # NATS is back; the relay takes rows once DISPATCH_OUTBOX_GRACE_MS old: time moves on.
    world.clock.advance(world.dispatch.settings.dispatch.outbox_grace_ms)

    async def published() -> list[Any]:
        return [type(e) for e in await dispatch_events(world, oid)]
    assert await eventually(published, 8) == [CourierAssigned]
    put = f"/api/v1/delivery/orders/{oid}"
    assert (await world.http.put(put, json={"status": "picked_up"}, headers=world.auth(c))
            ).status_code == 200
    assert await eventually(published, 8) == [CourierAssigned, OrderPickedUp]

    conn = await asyncpg.connect(settings.stores.database_url)
    try:
        async def history() -> list[Any] | None:
            rows = await conn.fetch(
                "SELECT status FROM courier_status_history WHERE order_id = $1 ORDER BY at, id",
                oid)
            return [r["status"] for r in rows] if len(rows) >= 2 else None
        assert await eventually(history, 8) == ["assigned", "picked_up"]
        row = await conn.fetchrow("SELECT * FROM dispatch_assignments WHERE order_id = $1", oid)
        assert row["courier_id"] == c
        assert row["offer_id"] == offer["offer_id"]
        assert row["picked_up_at"] is not None
        assert row["delivered_at"] is None
    finally:
        await conn.close()


async def test_an_event_survives_a_crash_between_transition_and_publish(world: World) -> None:
    """The accept's script records dispatch.assigned in the outbox in the same atomic step as
    the state change. A core that dies right after the script (here: the script run alone,
    nothing published) loses nothing: a relay publishes the event, and it is stored exactly
    once — a second relay of the same row (a relay that died before removing it) and a late
    publish by the original request are dropped by JetStream (Nats-Msg-Id)."""
    from streams.events import CourierAssigned

    lat, lng = spot()
    c = await world.courier(lat + 0.001, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    offer = await world.offer_for(c, oid)
    d = world.dispatch
    now_ms = d.clock()
    event = d._assigned(oid, c, offer["offer_id"], now_ms)
    t = await d.store.resolve(offer["offer_id"], "accept", courier_id=c, now_ms=now_ms,
                              event_row=event.row, order_id=oid)  # ...and the process dies
    assert t.result == "accepted"
    assert (o := await d.store.order(oid)) is not None
    assert o.state == "assigned"
    assert await dispatch_events(world, oid) == []  # not published by anyone yet

    # The relay leaves rows younger than DISPATCH_OUTBOX_GRACE_MS to their request: time moves on.
    world.clock.advance(world.dispatch.settings.dispatch.outbox_grace_ms)

    async def published() -> list[Any]:
        return await dispatch_events(world, oid)
    got = await eventually(published, 8)  # the core's relay
    assert [type(e) for e in got] == [CourierAssigned]
    assert got[0].courier_id == c
    assert got[0].offer_id == offer["offer_id"]

    await d.store.park_event(event.row)  # the same row again: a relay that died mid-way
    assert await d.relay_outbox(grace_ms=0) >= 1
    await d._publish(event)  # the original request coming back late
    assert [type(e) for e in await dispatch_events(world, oid)] == [CourierAssigned]
    left = await d.store.redis.lrange(f"{d.store.p}:outbox", 0, -1)
    assert [r for r in left if oid.encode() in r] == []


async def test_a_failed_transition_records_no_event(world: World) -> None:
    """The outbox row enters only with the transition it describes: a refused accept (the
    wrong courier) or a progress the order's state does not allow leaves no row."""
    from dispatch.lifecycle import OrderDispatchState

    lat, lng = spot()
    c = await world.courier(lat + 0.001, lng)
    other = await world.courier(lat + 0.03, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    offer = await world.offer_for(c, oid)
    d = world.dispatch
    before = await d.store.outbox_size()
    now_ms = d.clock()
    wrong = d._assigned(oid, other, offer["offer_id"], now_ms)
    t = await d.store.resolve(offer["offer_id"], "accept", courier_id=other, now_ms=now_ms,
                              event_row=wrong.row, order_id=oid)
    assert t.result != "accepted"
    early = d._event(world.names.dispatch_event("delivered", oid), wrong.event,
                     msg_id=f"{oid}:delivered")
    t = await d.store.progress(oid, c, OrderDispatchState.DELIVERED, now_ms, early.row)
    assert t.result != "delivered"
    assert await d.store.outbox_size() == before


async def test_history_writes_each_event_once(settings: Settings) -> None:
    """Redelivered events (same message id) write nothing twice; milestones keep the first
    time; an unassign closes the open assignment only."""
    import asyncpg

    from api.core.dispatch.history import DispatchHistory
    from streams.events import CourierAssigned, CourierUnassigned, OrderPickedUp

    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
    assert pool is not None
    history = DispatchHistory(pool)
    oid, cid = str(uuid.uuid4()), f"h-{uuid.uuid4().hex[:6]}"
    t = now_ms()
    events: list[tuple[Any, str]] = [
        (CourierAssigned(order_id=oid, courier_id=cid, offer_id="f1", at_ms=t), "k1"),
        (OrderPickedUp(order_id=oid, courier_id=cid, at_ms=t + 1000), "k2"),
        (OrderPickedUp(order_id=oid, courier_id=cid, at_ms=t + 5000), "k2b"),  # later dup
    ]
    try:
        async with pool.acquire() as conn:
            for _ in range(2):  # a redelivered batch
                for event, key in events:
                    await history.apply(conn, event, key)
            rows = await conn.fetch("SELECT status FROM courier_status_history "
                                    "WHERE order_id = $1", oid)
            assert sorted(r["status"] for r in rows) == ["assigned", "picked_up", "picked_up"]
            a = await conn.fetchrow("SELECT * FROM dispatch_assignments WHERE order_id = $1",
                                    oid)
            assert a["picked_up_at"].timestamp() == pytest.approx((t + 1000) / 1000)
            await history.apply(conn, CourierAssigned(order_id=oid, courier_id=cid,
                                                      offer_id="f2", at_ms=t + 9000), "k3")
            await history.apply(conn, CourierUnassigned(order_id=oid, courier_id=cid,
                                                        at_ms=t + 9500, reason="fleet"), "k4")
            closed = await conn.fetch("SELECT offer_id, unassigned_at IS NOT NULL AS closed "
                                      "FROM dispatch_assignments WHERE order_id = $1 "
                                      "ORDER BY offer_id", oid)
            assert [(r["offer_id"], r["closed"]) for r in closed] == [("f1", False),
                                                                      ("f2", True)]
    finally:
        await pool.close()
