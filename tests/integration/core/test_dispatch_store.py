"""The dispatch store's round-level scripts on real Redis: one call reading a round's orders
(with their declined couriers), one reading the stacking inputs and one running all of a
round's claims give exactly what the per-item reads and per-claim scripts give — the same
answers, the same refusals and the same state left behind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from api.core.dispatch.store import (
    ClaimResult,
    DispatchStore,
    OfferAction,
    OfferClaim,
    TransitionResult,
)
from dispatch.lifecycle import ORDER_TRANSITIONS, CourierState, OfferState, OrderDispatchState
from dispatch.round import RoundOrder
from geo.index_model import status_key
from geo.travel import Vehicle
from streams.wire import Point

NOW = 1_900_000_000_000
REGION = "8461a19ffffffff"


@pytest.fixture
async def new_store(redis: aioredis.Redis,
                    run_id: str) -> AsyncIterator[Any]:
    """Makes stores in fresh namespaces; their keys are deleted afterwards."""
    made: list[str] = []

    def make(**options: Any) -> DispatchStore:
        ns = f"{run_id}:ds{uuid.uuid4().hex[:6]}"
        made.append(ns)
        return DispatchStore(redis, ns, status_key(f"{ns}:geo"), **options)
    yield make
    for ns in made:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
        if keys:
            await redis.delete(*keys)


async def order(store: DispatchStore, oid: str, *, enter_ms: int = NOW - 1,
                region: str = REGION) -> None:
    assert await store.enqueue(oid, region=region, enter_ms=enter_ms, now_ms=NOW - 10,
                               pickup=Point(12.97, 77.59), dropoff=Point(12.98, 77.60),
                               ready_ms=NOW, promised_ms=NOW + 2_700_000, number=oid,
                               chef_id="k1")


async def idle(store: DispatchStore, cid: str, vehicle: str = "bike") -> None:
    t = await store.set_availability(cid, online=True, vehicle=Vehicle(vehicle), now_ms=NOW)
    assert (t.result, t.detail) == (TransitionResult.ONLINE, CourierState.IDLE)


async def holding(store: DispatchStore, cid: str, *oids: str, vehicle: str = "scooter") -> None:
    """`cid` accepted each of `oids` (to_pickup, holding them)."""
    await idle(store, cid, vehicle)
    for n, oid in enumerate(oids):
        await order(store, oid)
        if n == 0:
            result, offer_id = await store.offer(cid, oid, now_ms=NOW, expires_ms=NOW + 30_000)
        else:
            result, offer_id = await store.offer_stacked(
                cid, oid, held=sorted(oids[:n]), max_stack=9, now_ms=NOW,
                expires_ms=NOW + 30_000)
        assert result is ClaimResult.OK
        assert (await store.resolve(offer_id, OfferAction.ACCEPT, now_ms=NOW + 1)).result \
            is TransitionResult.ACCEPTED


async def world(store: DispatchStore) -> None:
    """Couriers and orders in every state a claim can meet."""
    for cid in ("a", "b", "c", "d", "e"):
        await idle(store, cid)
    await holding(store, "s1", "h1")            # may take one more
    await holding(store, "s2", "h2", "h3")      # full at max_stack 2
    await holding(store, "s3", "h4")            # its order will be picked up
    assert (await store.progress("h4", "s3", OrderDispatchState.PICKED_UP, NOW + 2)).result \
        is TransitionResult.PICKED_UP
    await holding(store, "s4", "h5")            # will hold an open offer
    for oid in ("o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"):
        await order(store, oid)
    # d declined o5; o6 is cancelled; s4 has an open offer of o7.
    result, offer_id = await store.offer("d", "o5", now_ms=NOW, expires_ms=NOW + 30_000)
    assert result is ClaimResult.OK
    assert (await store.resolve(offer_id, OfferAction.DECLINE, now_ms=NOW + 1)).result \
        is TransitionResult.DECLINED
    assert (await store.cancel("o6", NOW)).result is TransitionResult.CANCELLED
    result, _ = await store.offer_stacked("s4", "o7", held=["h5"], max_stack=2, now_ms=NOW,
                                          expires_ms=NOW + 30_000)
    assert result is ClaimResult.OK


CLAIMS = [
    OfferClaim(courier_id="a", order_id="o1"),                      # ok
    OfferClaim(courier_id="a", order_id="o2"),                      # a claimed just before
    OfferClaim(courier_id="b", order_id="o1"),                      # o1 offered just before
    OfferClaim(courier_id="offline", order_id="o2"),                # never online
    OfferClaim(courier_id="d", order_id="o5"),                      # declined it before
    OfferClaim(courier_id="c", order_id="o6"),                      # cancelled order
    OfferClaim(courier_id="c", order_id="h1"),                      # assigned elsewhere
    OfferClaim(courier_id="c", order_id="o2"),                      # ok
    OfferClaim(courier_id="s1", order_id="o3", held=("h1",), max_stack=2),        # ok
    OfferClaim(courier_id="s1", order_id="o4", held=("h1",), max_stack=2),        # open offer
    OfferClaim(courier_id="s2", order_id="o4", held=("h2", "h3"), max_stack=2),   # full
    OfferClaim(courier_id="s2", order_id="o4", held=("h2",), max_stack=3),        # changed
    OfferClaim(courier_id="s3", order_id="o4", held=("h4",), max_stack=2),        # delivering
    OfferClaim(courier_id="s4", order_id="o4", held=("h5",), max_stack=2),        # open offer
    OfferClaim(courier_id="e", order_id="o4", held=("h9",), max_stack=2),         # idle, not
    OfferClaim(courier_id="s1", order_id="o8"),                                   # not idle
    OfferClaim(courier_id="e", order_id="o4"),                                    # ok
    OfferClaim(courier_id="b", order_id="o7"),                      # offered to s4
]
EXPECTED = ["ok", "courier_busy", "order_taken", "courier_busy", "declined_before",
            "order_taken", "order_taken", "ok", "ok", "courier_busy", "stack_full",
            "courier_changed", "courier_busy", "courier_busy", "courier_busy", "courier_busy",
            "ok", "order_taken"]


async def state(store: DispatchStore) -> dict[str, Any]:
    """Everything the claims touch, with offer ids replaced by the (order, courier) they
    name (ids are random per call) and the courier's 'updated' stamp dropped."""
    r = store.redis
    p = store.p
    out: dict[str, Any] = {}

    def s(x: Any) -> str:
        return x.decode() if isinstance(x, bytes) else str(x)

    offers: dict[str, str] = {}
    async for key in r.scan_iter(match=f"{p}:f:*"):
        h = {s(k): s(v) for k, v in (await r.hgetall(key)).items()}
        offers[s(key).rsplit(":", 1)[1]] = f"{h['order']}>{h['courier']}"
        out[f"offer {h['order']}>{h['courier']}"] = {k: v for k, v in h.items()}
    async for key in r.scan_iter(match=f"{p}:*"):
        k = s(key)
        kind = k[len(p) + 1:].split(":", 1)[0]
        if kind == "f":
            continue
        t = s(await r.type(key))
        if t == "hash":
            v: Any = {s(a): offers.get(s(b), s(b)) for a, b in (await r.hgetall(key)).items()
                      if s(a) != "updated"}
        elif t == "set":
            v = sorted(s(m) for m in await r.smembers(key))
        elif t == "zset":
            v = sorted((offers.get(s(m), s(m)), sc) for m, sc in  # ids order equal scores
                       await r.zrange(key, 0, -1, withscores=True))
        else:
            v = [s(x) for x in await r.lrange(key, 0, -1)]
        out[k[len(p):]] = v
    out["geo"] = {s(a): s(b) for a, b in (await r.hgetall(store.geo_status)).items()}
    return out


async def test_batched_claims_equal_one_script_per_claim_refusals_included(
        new_store: Any) -> None:
    """A round's claims in one script call (or several, `claims_per_call` each, in one
    pipeline) answer and leave exactly what one script per claim does, refusals included;
    nobody ends up with two open offers."""
    one_by_one, batched = new_store(), new_store()
    chunked = new_store(claims_per_call=4)  # 5 script calls, 1 pipeline
    for store in (one_by_one, batched, chunked):
        await world(store)
    assert await state(one_by_one) == await state(batched) == await state(chunked)

    singles = []
    for c in CLAIMS:
        if c.held is None:
            result, _ = await one_by_one.offer(c.courier_id, c.order_id, now_ms=NOW + 5,
                                               expires_ms=NOW + 30_005)
        else:
            result, _ = await one_by_one.offer_stacked(
                c.courier_id, c.order_id, held=c.held, max_stack=c.max_stack, now_ms=NOW + 5,
                expires_ms=NOW + 30_005)
        singles.append(result)
    got = await batched.offer_many(CLAIMS, now_ms=NOW + 5, expires_ms=NOW + 30_005)
    got_chunked = await chunked.offer_many(CLAIMS, now_ms=NOW + 5, expires_ms=NOW + 30_005)

    assert singles == EXPECTED
    assert [r for r, _ in got] == EXPECTED
    assert [r for r, _ in got_chunked] == EXPECTED
    assert len({f for _, f in got}) == len(CLAIMS)
    after = await state(batched)
    assert after == await state(one_by_one) == await state(chunked)
    # The offers made are the ones the batch says, each under the id it returned.
    for (result, offer_id), c in zip(got, CLAIMS, strict=True):
        info = await batched.offer_info(offer_id)
        if result == ClaimResult.OK:
            assert info is not None
            assert (info.order_id, info.courier_id, info.state) == (c.order_id, c.courier_id,
                                                                    OfferState.OPEN)
            assert info.expires_ms == NOW + 30_005
        else:
            assert info is None
    # Nobody holds two open offers, no order two couriers.
    for cid in ("a", "b", "c", "d", "e", "s1", "s2", "s3", "s4"):
        open_ = [k for k, v in after.items() if k.startswith("offer ")
                 and v["courier"] == cid and v["state"] == "open"]
        assert len(open_) <= 1, (cid, open_)
    assert (await batched.courier("a")).state is CourierState.OFFERED
    assert (await batched.courier("s1")).state is CourierState.TO_PICKUP
    assert await batched.offer_many([], now_ms=NOW, expires_ms=NOW) == []


async def test_a_claim_batch_with_a_newline_in_an_id_is_refused_whole(new_store: Any) -> None:
    """An id with a newline would shift the batch's lists: the whole batch is refused before
    anything is claimed."""
    store = new_store()
    await idle(store, "a")
    await order(store, "o1")
    with pytest.raises(ValueError, match="newline"):
        await store.offer_many([OfferClaim(courier_id="a", order_id="o1"),
                                OfferClaim(courier_id="x\ny", order_id="o1")],
                               now_ms=NOW, expires_ms=NOW + 1)
    assert (await store.courier("a")).state is CourierState.IDLE
    o1 = await store.order("o1")
    assert o1 is not None
    assert o1.state is OrderDispatchState.WAITING


async def planned(store: DispatchStore, order_ids: list[str], *,
                  declines: bool = True) -> list[RoundOrder]:
    """The orders of `order_ids` read one by one (`orders`, and `declined_by` unless not
    `declines`) as the planner takes them."""
    records = await store.orders(order_ids)
    declined = (await store.declined_by(order_ids) if declines
                else [set[str]() for _ in order_ids])
    out = []
    for o, dec in zip(records, declined, strict=True):
        assert o.pickup is not None
        assert o.dropoff is not None
        assert o.ready_ms is not None
        assert o.promised_ms is not None
        out.append(RoundOrder(
            order_id=o.order_id, chef=o.chef_id, pickup_lat=o.pickup.lat,
            pickup_lng=o.pickup.lng, dropoff_lat=o.dropoff.lat, dropoff_lng=o.dropoff.lng,
            ready_ms=o.ready_ms, promised_ms=o.promised_ms, declined=frozenset(dec)))
    return out


async def test_round_orders_are_the_due_waiting_orders_with_their_declines(
        new_store: Any) -> None:
    """`round_orders` gives how many orders are due and, of those, the ones still waiting
    (oldest first, at most `limit`) as the planner takes them, with the couriers that
    declined each: what the per-item reads give. An order without a chef has chef ''."""
    store = new_store()
    await world(store)
    await order(store, "later", enter_ms=NOW + 60_000)     # not due yet
    await order(store, "elsewhere", region="8461a1bffffffff")
    # o1..o9 and h* are in REGION; h* left the queue when offered, o6 when cancelled, o7 when
    # offered; o5 went back (declined by d) — its queue entry is the decline time.
    due = await store.due_orders(REGION, NOW + 10, 2000)
    n_due, orders = await store.round_orders(REGION, NOW + 10, 2000)
    assert n_due == len(due) == 7
    waiting = [o.order_id for o in await store.orders(due)
               if o.state is OrderDispatchState.WAITING]
    assert orders == await planned(store, waiting)
    assert [o.order_id for o in orders] == ["o1", "o2", "o3", "o4", "o8", "o9", "o5"]
    assert orders[0] == RoundOrder(order_id="o1", chef="k1", pickup_lat=12.97,
                                   pickup_lng=77.59, dropoff_lat=12.98, dropoff_lng=77.60,
                                   ready_ms=NOW, promised_ms=NOW + 2_700_000)
    assert orders[-1].declined == {"d"}
    assert all(not o.declined for o in orders[:-1])
    # A field an order lacks (read with one HMGET per order) is left out: no chef.
    await store.redis.hdel(f"{store.p}:o:o3", "chef")
    n_again, again = await store.round_orders(REGION, NOW + 10, 2000)
    assert (n_again, again) == (n_due, await planned(store, waiting))
    assert again[2].chef == ""
    assert again[0].chef == "k1"
    # Limit and due time as ZRANGEBYSCORE ... LIMIT 0 n; an offered order is due but skipped.
    n3, first3 = await store.round_orders(REGION, NOW + 10, 3)
    assert n3 == 3
    assert [o.order_id for o in first3] == ["o1", "o2", "o3"]
    result, _ = await store.offer("a", "o2", now_ms=NOW + 11, expires_ms=NOW + 30_000)
    assert result is ClaimResult.OK
    n3, first3 = await store.round_orders(REGION, NOW + 12, 3)
    assert n3 == 3
    assert [o.order_id for o in first3] == ["o1", "o3", "o4"]
    assert await store.round_orders("8461a17ffffffff", NOW, 10) == (0, [])
    n, later = await store.round_orders(REGION, NOW + 60_000, 2000)
    assert "later" in [o.order_id for o in later]
    assert n == 7


async def test_stack_inputs_are_the_couriers_that_may_take_one_more(new_store: Any) -> None:
    """Of the couriers asked, in their order, those with no open offer, room for one more and
    every held order still assigned, with their vehicle and held orders (sorted by id) as the
    planner takes them: what the per-item reads give."""
    store = new_store()
    await world(store)
    await holding(store, "s5", "h6", vehicle="car")
    ids = ["a", "nobody", "s5", "s1", "s2", "s3", "s4"]
    got = await store.stack_inputs(ids, 2)
    assert [(s.courier_id, s.vehicle) for s in got] == [("s5", "car"), ("s1", "scooter")]
    assert list(got[1].orders) == await planned(store, ["h1"], declines=False)
    # With room for three, s2 (two held, both assigned) qualifies too, its orders by id.
    got3 = await store.stack_inputs(ids, 3)
    assert [s.courier_id for s in got3] == ["s5", "s1", "s2"]
    assert [o.order_id for o in got3[2].orders] == ["h2", "h3"]
    assert list(got3[2].orders) == await planned(store, ["h2", "h3"], declines=False)
    assert await store.stack_inputs([], 2) == []
    assert await store.stack_inputs(["a", "b"], 2) == []


async def test_couriers_are_each_couriers_record_in_order(new_store: Any) -> None:
    """`couriers` reads what `courier` reads for each courier asked, in that order, in one
    pipeline: a courier dispatch never saw is offline."""
    store = new_store()
    await world(store)
    ids = ["s4", "nobody", "a", "s1"]
    got = await store.couriers(ids)
    assert got == [await store.courier(c) for c in ids]
    assert [(c.courier_id, c.state) for c in got] == [
        ("s4", CourierState.TO_PICKUP), ("nobody", CourierState.OFFLINE),
        ("a", CourierState.IDLE), ("s1", CourierState.TO_PICKUP)]
    assert got[2].vehicle is Vehicle.BIKE
    assert got[0].offer_id is not None
    assert await store.couriers([]) == []


# A round's claims are independent (no courier, no order twice): every refusal that can
# happen then, each courier and order once.
INDEPENDENT = [
    OfferClaim(courier_id="a", order_id="o1"),                                    # ok
    OfferClaim(courier_id="offline", order_id="o2"),                              # never online
    OfferClaim(courier_id="d", order_id="o5"),                                    # declined
    OfferClaim(courier_id="c", order_id="o6"),                                    # cancelled
    OfferClaim(courier_id="b", order_id="h1"),                                    # assigned
    OfferClaim(courier_id="s1", order_id="o3", held=("h1",), max_stack=2),        # ok
    OfferClaim(courier_id="s2", order_id="o4", held=("h2", "h3"), max_stack=2),   # full
    OfferClaim(courier_id="s3", order_id="o8", held=("h4",), max_stack=2),        # delivering
    OfferClaim(courier_id="s4", order_id="o9", held=("h5",), max_stack=2),        # open offer
    OfferClaim(courier_id="e", order_id="o7"),                                    # offered
]
INDEPENDENT_EXPECTED = ["ok", "courier_busy", "declined_before", "order_taken", "order_taken",
                        "ok", "stack_full", "courier_busy", "courier_busy", "order_taken"]


async def test_independent_claims_sent_at_once_equal_one_script_per_claim(
        new_store: Any) -> None:
    """`offer_chunks` sends a round's calls at once on separate connections (Redis may run
    them in any order) and yields each call's results as they arrive: same results and
    same state as one script per claim, and as the pipelined batch. Claims that are not
    independent still go out in one pipeline, in order (one yield)."""
    one_by_one, at_once, pipelined = new_store(), new_store(), new_store()
    for store in (one_by_one, at_once, pipelined):
        await world(store)
    singles = []
    for c in INDEPENDENT:
        if c.held is None:
            result, _ = await one_by_one.offer(c.courier_id, c.order_id, now_ms=NOW + 5,
                                               expires_ms=NOW + 30_005)
        else:
            result, _ = await one_by_one.offer_stacked(
                c.courier_id, c.order_id, held=c.held, max_stack=c.max_stack, now_ms=NOW + 5,
                expires_ms=NOW + 30_005)
        singles.append(result)
    parts = [part async for part in at_once.offer_chunks(
        INDEPENDENT, now_ms=NOW + 5, expires_ms=NOW + 30_005, per_call=3)]
    assert [len(p) for p in parts] == [3, 3, 3, 1]  # four calls, results in claim order
    got = [r for p in parts for r in p]
    whole = await pipelined.offer_many(INDEPENDENT, now_ms=NOW + 5, expires_ms=NOW + 30_005)

    assert singles == INDEPENDENT_EXPECTED
    assert [r for r, _ in got] == [r for r, _ in whole] == INDEPENDENT_EXPECTED
    assert await state(at_once) == await state(one_by_one) == await state(pipelined)
    for (result, offer_id), c in zip(got, INDEPENDENT, strict=True):
        info = await at_once.offer_info(offer_id)
        assert (info is not None) == (result == ClaimResult.OK)
        if info is not None:
            assert (info.order_id, info.courier_id) == (c.order_id, c.courier_id)

    dependent = new_store()
    await world(dependent)
    parts = [part async for part in dependent.offer_chunks(
        CLAIMS, now_ms=NOW + 5, expires_ms=NOW + 30_005, per_call=4)]
    assert len(parts) == 1
    assert [r for r, _ in parts[0]] == EXPECTED


async def test_availability_keeps_the_vehicle_hash_equal_to_the_courier_hash(
        new_store: Any) -> None:
    """The vehicles hash a round reads in one HMGET per 4,000 couriers holds what the
    courier hash holds: set when a vehicle is given, kept when it is not."""
    store = new_store()
    await idle(store, "a", "car")
    await idle(store, "b", "scooter")
    await store.set_availability("a", online=True, vehicle=None, now_ms=NOW + 1)
    await store.set_availability("b", online=False, vehicle=None, now_ms=NOW + 1)
    await store.set_availability("b", online=True, vehicle=Vehicle.BIKE, now_ms=NOW + 2)
    raw = await store.redis.hgetall(store.vehicles_key)
    assert {k.decode(): v.decode() for k, v in raw.items()} == {"a": "car", "b": "bike"}
    for cid in ("a", "b"):
        assert (await store.courier(cid)).vehicle == raw[cid.encode()].decode()


async def test_every_order_move_of_the_scripts_is_the_lifecycle_table(new_store: Any) -> None:
    """`dispatch.lifecycle.ORDER_TRANSITIONS` is the order state machine the scripts run:
    driving every script down every path, each order move made is in the table, each move in
    the table is made by some path, and refused calls move nothing."""
    store = new_store()
    made: set[tuple[str, str]] = set()

    ids = ["w1", "w2", "f1", "f2", "f3", "f4", "f5", "a1", "a2", "a3", "a4", "a5", "a6", "r1"]

    async def states() -> dict[str, str]:
        async with store.redis.pipeline(transaction=False) as pipe:
            for oid in ids:
                pipe.hget(f"{store.p}:o:{oid}", "state")
            got = await pipe.execute()
        return {oid: st.decode() for oid, st in zip(ids, got, strict=True) if st}

    async def step(action: Any) -> Any:
        before = await states()
        result = await action
        for oid, st in (await states()).items():
            if oid in before and before[oid] != st:
                move = (before[oid], st)
                assert OrderDispatchState(st) in ORDER_TRANSITIONS[
                    OrderDispatchState(before[oid])], (move, result)
                made.add(move)
        return result

    n = iter(range(1000))

    async def offered(oid: str) -> tuple[str, str]:
        """A new order offered to a new idle courier: (courier, offer)."""
        cid = f"c{next(n)}"
        await idle(store, cid)
        await order(store, oid)
        result, offer_id = await step(store.offer(cid, oid, now_ms=NOW, expires_ms=NOW + 30))
        assert result is ClaimResult.OK
        return cid, offer_id

    async def accepted(oid: str) -> str:
        cid, offer_id = await offered(oid)
        t = await step(store.resolve(offer_id, OfferAction.ACCEPT, courier_id=cid,
                                     now_ms=NOW + 1))
        assert t.result is TransitionResult.ACCEPTED
        return cid

    async def reported(oid: str, cid: str, *states_: OrderDispatchState) -> None:
        for new in states_:
            t = await step(store.progress(oid, cid, new, NOW + 2))
            assert t.result == new

    R, S = TransitionResult, OrderDispatchState
    # waiting -> assigned (fleet), -> cancelled
    await order(store, "w1")
    await idle(store, "fleet1")
    assert (await step(store.force_assign("w1", "fleet1", NOW))).result is R.ASSIGNED
    await order(store, "w2")
    assert (await step(store.cancel("w2", NOW))).result is R.CANCELLED
    # offered -> waiting (decline, expire, fleet), -> assigned (fleet), -> cancelled
    cid, f = await offered("f1")
    assert (await step(store.resolve(f, OfferAction.DECLINE, courier_id=cid,
                                     now_ms=NOW))).result is R.DECLINED
    _, f = await offered("f2")
    assert (await step(store.resolve(f, OfferAction.EXPIRE, now_ms=NOW + 31))).result \
        is R.EXPIRED
    await offered("f3")
    assert (await step(store.unassign("f3", NOW))).result is R.UNASSIGNED
    await offered("f4")
    await idle(store, "fleet2")
    assert (await step(store.force_assign("f4", "fleet2", NOW))).result is R.ASSIGNED
    await offered("f5")
    assert (await step(store.cancel("f5", NOW))).result is R.CANCELLED
    # assigned -> waiting (fleet), -> cancelled, -> picked_up -> delivering -> delivered
    await accepted("a1")
    assert (await step(store.unassign("a1", NOW))).result is R.UNASSIGNED
    await accepted("a2")
    assert (await step(store.cancel("a2", NOW))).result is R.CANCELLED
    cid = await accepted("a3")
    await reported("a3", cid, S.PICKED_UP, S.DELIVERING, S.DELIVERED)
    cid = await accepted("a4")
    await reported("a4", cid, S.PICKED_UP, S.DELIVERED)
    cid = await accepted("a5")
    await reported("a5", cid, S.PICKED_UP)
    assert (await step(store.cancel("a5", NOW))).result is R.CANCELLED
    cid = await accepted("a6")
    await reported("a6", cid, S.PICKED_UP, S.DELIVERING)
    assert (await step(store.cancel("a6", NOW))).result is R.CANCELLED
    # Refusals move nothing (step asserts any move it sees): a report out of order, a
    # fleet action on a closed order, a second cancellation.
    cid = await accepted("r1")
    assert (await step(store.progress("r1", cid, S.DELIVERED, NOW))).result \
        is R.BAD_TRANSITION
    assert (await step(store.unassign("a3", NOW))).result is R.ORDER_STATE
    assert (await step(store.force_assign("a4", "fleet1", NOW))).result is R.ORDER_STATE
    assert (await step(store.cancel("a6", NOW))).result is R.NOOP

    table = {(a.value, b.value) for a, nexts in ORDER_TRANSITIONS.items() for b in nexts}
    assert made == table
