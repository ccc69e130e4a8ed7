"""A whole production dispatch round (`Dispatcher.run_round`) on real Redis and NATS.

    python -m bench.dispatch_round --orders 2000 --couriers 10000 --rounds 3

Per round, a fresh namespace: N couriers in a 15 km city (all came online through the
availability script, with a vehicle; 2/3 idle, 1/3 then marked to_pickup, holding nothing, so
stacking looks at them and finds none eligible) and M waiting orders whose chefs are all in
one res-4 region (the round's region), due now. Then one `run_round(region)` is timed: the
due orders with their declined couriers (one script), the candidate search
(`DISPATCH_SEARCH`, default snapshot: one read + in memory), the stacking inputs (one script,
read while the idle couriers are searched), costs, the optimal assignment, the claims (one
script per 500, sent at once) and the offer pushes (core NATS, each claim call's offers as
its reply arrives), each offer with its courier's job details (one read of the orders'
details; legs from the round's own courier table).
The search alone is timed again on the same data, after the round's claims (the
offered couriers are no longer idle, so it finds fewer; the figure is indicative).

Garbage collection: the core process collects and freezes its heap at start-up
(`api.core.core_parts`), so a round's collections there scan only what was allocated since.
`--gc freeze` (default) does the same before each timed round (the bench's own set-up data —
10,000 couriers' points, the orders' fields — would otherwise be scanned by every gen-2
collection inside the round, which no core does); `--gc default` leaves CPython's defaults
(the figures of earlier commits). The time spent in collections inside the round is printed
either way (`gc.callbacks`).

Offline (no Redis, `--offline-rounds`, default 3): the same seeded city planned by
`dispatch.round.plan_round` alone — the couriers' table and the nearest-candidate matrices
computed in memory (`geo.grid_index`, what the snapshot search computes), then the plan timed
with the optimal policy beside the nearest-first baseline (`greedy`), with their total costs.
The Redis rounds run on a fixed injected clock, so the offline plan of the same seed must
make the very offers `run_round` claimed: the bench checks it and prints the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import statistics
import time
import uuid

import msgspec
import nats
import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore, OrderRecord
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import LiveIndex, Located
from bench._gc import GcClock
from bench._stores import bench_stores
from dispatch.round import RoundCouriers, RoundInputs, RoundOrder, RoundParams, plan_round
from geo.cells import region_of
from geo.grid_index import PointGrid, anchor_cell
from streams.catalog import Names
from streams.wire import Point

LAT0, LNG0 = 12.9716, 77.5946
VEHICLES = ["bike", "scooter", "car"]

Pair = tuple[str, str]  # (order id, courier id) of an offer


def _point(rng: random.Random, radius_m: float) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return (LAT0 + r * math.cos(a) / 111_195.0,
            LNG0 + r * math.sin(a) / (111_195.0 * math.cos(math.radians(LAT0))))


class City(msgspec.Struct, frozen=True, kw_only=True):
    """One seeded round's data: couriers c00000.. (every third heading to a chef, holding
    nothing) and waiting orders o00000.., all in the region of (LAT0, LNG0)."""

    now_ms: int
    couriers: list[tuple[float, float]]
    orders: list[RoundOrder]

    @property
    def courier_ids(self) -> list[str]:
        return [f"c{i:05d}" for i in range(len(self.couriers))]


def city(args: argparse.Namespace, seed: int, now_ms: int) -> City:
    rng = random.Random(seed)
    region = region_of(LAT0, LNG0)
    pts = [_point(rng, 15_000) for _ in range(args.couriers)]
    chefs: list[tuple[float, float]] = []
    while len(chefs) < args.orders:
        p = _point(rng, 15_000)
        if region_of(*p) == region:
            chefs.append(p)
    orders = []
    for k, (la, ln) in enumerate(chefs):
        drop = (la + rng.uniform(-0.03, 0.03), ln + rng.uniform(-0.03, 0.03))
        orders.append(RoundOrder(
            order_id=f"o{k:05d}", chef=f"chef{k % 400}", pickup_lat=la, pickup_lng=ln,
            dropoff_lat=drop[0], dropoff_lng=drop[1],
            ready_ms=now_ms + rng.randint(-60, 900) * 1000, promised_ms=now_ms + 45 * 60_000))
    return City(now_ms=now_ms, couriers=pts, orders=orders)


def offline_inputs(c: City, settings: Settings) -> RoundInputs:
    """What `Dispatcher.round_inputs` reads from Redis, computed in memory: the snapshot
    search over every courier (all fresh, all within the region's reach), no stack eligible
    (the couriers heading to a chef hold nothing)."""
    ids = c.courier_ids
    lat = np.asarray([p[0] for p in c.couriers], dtype=np.float64)
    lng = np.asarray([p[1] for p in c.couriers], dtype=np.float64)
    qlat = np.asarray([o.pickup_lat for o in c.orders], dtype=np.float64)
    qlng = np.asarray([o.pickup_lng for o in c.orders], dtype=np.float64)
    grid = PointGrid(lat, lng, anchor_cell(float(qlat.mean()), float(qlng.mean())))
    qkey = grid.query_keys(qlat, qlng)
    members = np.arange(len(ids), dtype=np.int64)

    def nearest(of: np.ndarray, limit: int) -> np.ndarray:
        found, _ = grid.nearest(of, qkey, qlat, qlng,
                                limit=np.full(len(c.orders), limit, dtype=np.int64),
                                radius_m=settings.dispatch.radius_m)
        return found

    return RoundInputs(
        orders=c.orders, now_ms=c.now_ms,
        couriers=RoundCouriers(ids=ids, lat=lat, lng=lng,
                               vehicle=[VEHICLES[i % 3] for i in range(len(ids))]),
        idle=nearest(members[members % 3 != 0], settings.dispatch.candidates),
        to_pickup=nearest(members[members % 3 == 0], settings.dispatch.stack_candidates))


def offline_round(args: argparse.Namespace, seed: int) -> tuple[dict[str, list[float]],
                                                               list[Pair]]:
    """Times the in-memory search and `plan_round` (optimal, then greedy) on one city."""
    settings = Settings()
    c = city(args, seed, time.time_ns() // 1_000_000)
    t0 = time.perf_counter()
    inputs = offline_inputs(c, settings)
    figures = {"search": [time.perf_counter() - t0]}
    pairs: list[Pair] = []
    for policy in ("optimal", "greedy"):
        params = RoundParams(policy=policy, candidates=settings.dispatch.candidates,
                             max_stack=settings.dispatch.max_stack,
                             unassigned_penalty_s=settings.dispatch.unassigned_penalty_s)
        t0 = time.perf_counter()
        plan = plan_round(inputs, params)
        figures[policy] = [time.perf_counter() - t0, len(plan.offers), plan.total_cost_s]
        if policy == "optimal":
            pairs = sorted((o.order_id, o.courier_id) for o in plan.offers)
    return figures, pairs


async def load_city(redis: aioredis.Redis, store: DispatchStore, couriers: LiveIndex,
                    c: City, now_ms: int) -> str:
    """Write one city's couriers (online with a vehicle, every third heading to a chef) and
    waiting orders (due now) through the production scripts; return the orders' region.
    On a Redis Cluster the couriers' scripts go one call each, 32 at a time (a cluster
    pipeline would need each script loaded on its node first)."""
    region = region_of(LAT0, LNG0)
    ids = c.courier_ids
    await couriers.upsert([Located(cid, la, ln, now_ms - 1000)
                           for cid, (la, ln) in zip(ids, c.couriers, strict=True)])

    async def online(i: int, cid: str, client: object = None) -> None:
        await store._availability(args=[store.p, store.geo_status, cid, "1", VEHICLES[i % 3],
                                        now_ms], client=client)
        if i % 3 == 0:  # on its way to a chef, holding nothing
            await redis.hset(f"{store.p}:c:{cid}", "state", "to_pickup")
            await redis.hset(couriers.status_key, cid, "to_pickup")

    if isinstance(redis, RedisCluster):
        for k in range(0, len(ids), 32):
            await asyncio.gather(*(online(i, ids[i]) for i in range(k, min(k + 32, len(ids)))))
    else:
        async with redis.pipeline(transaction=False) as pipe:
            for i, cid in enumerate(ids):
                await store._availability(args=[
                    store.p, store.geo_status, cid, "1", VEHICLES[i % 3], now_ms],
                    client=pipe)
                if i % 3 == 0:
                    pipe.hset(f"{store.p}:c:{cid}", "state", "to_pickup")
                    pipe.hset(couriers.status_key, cid, "to_pickup")
            await pipe.execute()
    for o in c.orders:
        await store.enqueue(o.order_id, region=region, enter_ms=now_ms - 1, now_ms=now_ms,
                            pickup=Point(o.pickup_lat, o.pickup_lng),
                            dropoff=Point(o.dropoff_lat, o.dropoff_lng),
                            ready_ms=o.ready_ms, promised_ms=o.promised_ms,
                            number=f"N{o.order_id[1:]}", chef_id=o.chef)
    return region


async def drop_namespace(redis: aioredis.Redis, ns: str) -> None:
    """Delete every key of a bench namespace (on every primary of a cluster)."""
    keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=5000)]
    if isinstance(redis, RedisCluster):  # one key a call: a cluster refuses a DEL across slots
        for i in range(0, len(keys), 32):  # within the cluster client's connections
            await asyncio.gather(*(redis.delete(k) for k in keys[i:i + 32]))
        return
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i:i + 1000])


async def one_round(args: argparse.Namespace, urls: dict[str, str], seed: int,
                    search: str) -> tuple[tuple[float, float, float, int, int, float], bool]:
    ns = f"benchround{uuid.uuid4().hex[:6]}"
    settings = Settings().replace(server__namespace=ns, dispatch__search=search)
    redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        urls["redis"], max_connections=64, timeout=30))
    nc = await nats.connect(urls["nats"])
    couriers = LiveIndex(redis, f"{ns}:geo")
    store = DispatchStore(redis, ns, couriers.status_key)
    now_ms = time.time_ns() // 1_000_000
    c = city(args, seed, now_ms)
    # The round's clock stands still at the city's time, so its plan is the offline one.
    d = Dispatcher(settings, Names(ns), store, couriers, nc, nc.jetstream(),
                   DispatchMetrics(Metrics("bench")), clock=lambda: now_ms)
    try:
        region = await load_city(redis, store, couriers, c, now_ms)
        ids = c.courier_ids
        if args.gc == "freeze":
            gc.collect()
            gc.freeze()
        GC.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        sent = await d.run_round(region)
        round_s, round_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        gc_s = GC.seconds
        gc.unfreeze()
        pairs = await offered(store, ids)
        orders = [round_order(o) for o in await store.orders([o.order_id for o in c.orders])]
        t0 = time.perf_counter()
        await d.search(region, orders, time.time_ns() // 1_000_000)
        search_s = time.perf_counter() - t0
        same = pairs == plan_pairs(args, c, settings)
        return (round_s, round_cpu_s, search_s, sent, len(orders), gc_s), same
    finally:
        await drop_namespace(redis, ns)
        await redis.aclose()
        await nc.close()


def plan_pairs(args: argparse.Namespace, c: City, settings: Settings) -> list[Pair]:
    """The offers `plan_round` makes of this city offline, under the round's settings."""
    params = RoundParams(candidates=settings.dispatch.candidates,
                         max_stack=settings.dispatch.max_stack,
                         unassigned_penalty_s=settings.dispatch.unassigned_penalty_s)
    plan = plan_round(offline_inputs(c, settings), params)
    return sorted((o.order_id, o.courier_id) for o in plan.offers)


async def offered(store: DispatchStore, ids: list[str]) -> list[Pair]:
    """(order, courier) of every open offer, read back from Redis."""
    pairs = []
    for info in await store.couriers(ids):
        if info.offer_id:
            offer = await store.offer_info(info.offer_id)
            pairs.append((offer.order_id if offer else "", info.courier_id))
    return sorted(pairs)


def round_order(o: OrderRecord) -> RoundOrder:
    """An order read back from Redis as the planner takes it (what `round_orders` reads)."""
    assert o.pickup is not None
    assert o.dropoff is not None
    assert o.ready_ms is not None
    assert o.promised_ms is not None
    return RoundOrder(order_id=o.order_id, chef=o.chef_id, pickup_lat=o.pickup.lat,
                      pickup_lng=o.pickup.lng, dropoff_lat=o.dropoff.lat,
                      dropoff_lng=o.dropoff.lng, ready_ms=o.ready_ms,
                      promised_ms=o.promised_ms)


GC = GcClock()


async def run(args: argparse.Namespace) -> None:
    offline: dict[str, list[list[float]]] = {}
    for r in range(args.offline_rounds):
        for name, figures in offline_round(args, args.seed + r)[0].items():
            offline.setdefault(name, []).append(figures)
    rows: dict[str, list[tuple[float, float, float, int, int, float]]] = {}
    same: list[bool] = []
    if args.rounds:
        async with bench_stores() as urls:
            for r in range(args.rounds):
                for search in args.search:  # interleaved
                    row, agrees = await one_round(args, urls, args.seed + r, search)
                    rows.setdefault(search, []).append(row)
                    same.append(agrees)
    print(f"{args.orders} orders (one region) x {args.couriers} couriers, {args.rounds} rounds, "
          f"a fresh namespace each, gc {args.gc}")
    if offline:
        def p50(xs: list[list[float]], i: int = 0, scale: float = 1000.0) -> float:
            return statistics.median(x[i] * scale for x in xs)
        print(f"  offline, {args.offline_rounds} rounds (no Redis):")
        print(f"  {'':24}search in memory   p50 {p50(offline['search']):7.1f} ms")
        for policy in ("optimal", "greedy"):
            fs = offline[policy]
            print(f"  {'':24}plan_round {policy:<8}p50 {p50(fs):7.1f} ms   offers "
                  f"{[int(f[1]) for f in fs]}   total cost p50 {p50(fs, 2, 1.0):,.0f} s")
    for search, xs in rows.items():
        def ms(i: int, xs: list[tuple[float, float, float, int, int, float]] = xs) -> str:
            v = [x[i] * 1000 for x in xs]
            return f"p50 {statistics.median(v):7.1f} ms  max {max(v):7.1f} ms"
        print(f"  DISPATCH_SEARCH={search:<8} run_round   {ms(0)}   offers sent "
              f"{[x[3] for x in xs]}")
        print(f"  {'':24}process CPU {ms(1)}")
        print(f"  {'':24}of which in GC {ms(5)}")
        print(f"  {'':24}search alone (after the round) {ms(2)}")
    if same:
        print(f"  run_round's offers = plan_round's offline: {sum(same)}/{len(same)} rounds")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3, help="production rounds (Redis, NATS)")
    ap.add_argument("--offline-rounds", type=int, default=3,
                    help="plan_round alone, in memory")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--search", nargs="+", default=["snapshot", "live"],
                    choices=["snapshot", "live"])
    ap.add_argument("--gc", choices=["freeze", "default"], default="freeze",
                    help="collect and freeze the heap before each timed round, as the core "
                         "does at start-up (default), or leave CPython's defaults")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
