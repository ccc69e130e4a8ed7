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
its reply arrives). Until 2026-11-25 evening the to_pickup third had no vehicle set (a
per-courier HGET in the snapshot either way on older code).
The search alone is timed again on the same data, after the round's claims (the
offered couriers are no longer idle, so it finds fewer; the figure is indicative).

Garbage collection: the core process collects and freezes its heap at start-up
(`api.core.core_parts`), so a round's collections there scan only what was allocated since.
`--gc freeze` (default) does the same before each timed round (the bench's own set-up data —
10,000 couriers' points, the orders' fields — would otherwise be scanned by every gen-2
collection inside the round, which no core does); `--gc default` leaves CPython's defaults
(the figures of earlier commits). The time spent in collections inside the round is printed
either way (`gc.callbacks`).
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

import nats
import redis.asyncio as aioredis

from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import LiveIndex, Located
from bench._stores import bench_stores
from geo.cells import region_of
from streams.catalog import Names

LAT0, LNG0 = 12.9716, 77.5946


def _point(rng: random.Random, radius_m: float) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return (LAT0 + r * math.cos(a) / 111_195.0,
            LNG0 + r * math.sin(a) / (111_195.0 * math.cos(math.radians(LAT0))))


async def one_round(args: argparse.Namespace, urls: dict[str, str], seed: int,
                    search: str) -> tuple[float, float, float, int, int, float]:
    rng = random.Random(seed)
    ns = f"benchround{uuid.uuid4().hex[:6]}"
    settings = Settings().replace(server__namespace=ns, dispatch__search=search)
    redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        urls["redis"], max_connections=64, timeout=30))
    nc = await nats.connect(urls["nats"])
    couriers = LiveIndex(redis, f"{ns}:geo")
    store = DispatchStore(redis, ns, couriers.status_key)
    d = Dispatcher(settings, Names(ns), store, couriers, nc, nc.jetstream(),
                   DispatchMetrics(Metrics("bench")))
    try:
        now_ms = time.time_ns() // 1_000_000
        region = region_of(LAT0, LNG0)
        pts = [_point(rng, 15_000) for _ in range(args.couriers)]
        await couriers.upsert([Located(f"c{i:05d}", la, ln, now_ms - 1000)
                               for i, (la, ln) in enumerate(pts)])
        vehicles = ["bike", "scooter", "car"]
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(args.couriers):
                # Every courier came online with a vehicle (the availability script,
                # pipelined); a third of them are now on their way to a chef.
                await store._availability(args=[
                    store.p, store.geo_status, f"c{i:05d}", "1", vehicles[i % 3], now_ms],
                    client=pipe)
                if i % 3 == 0:
                    pipe.hset(f"{store.p}:c:c{i:05d}", "state", "to_pickup")
                    pipe.hset(couriers.status_key, f"c{i:05d}", "to_pickup")
            await pipe.execute()
        chefs: list[tuple[float, float]] = []
        while len(chefs) < args.orders:
            p = _point(rng, 15_000)
            if region_of(*p) == region:
                chefs.append(p)
        for k, (la, ln) in enumerate(chefs):
            drop = (la + rng.uniform(-0.03, 0.03), ln + rng.uniform(-0.03, 0.03))
            await store.enqueue(f"o{k:05d}", region=region, enter_ms=now_ms - 1, now_ms=now_ms,
                                fields={"plat": la, "plng": ln, "dlat": drop[0],
                                        "dlng": drop[1],
                                        "ready_ms": now_ms + rng.randint(-60, 900) * 1000,
                                        "promised_ms": now_ms + 45 * 60_000,
                                        "number": f"N{k}", "chef": f"chef{k % 400}"})
        if args.gc == "freeze":
            gc.collect()
            gc.freeze()
        _gc_time[0] = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        sent = await d.run_round(region)
        round_s, round_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        gc_s = _gc_time[0]
        gc.unfreeze()
        orders = await store.orders([f"o{k:05d}" for k in range(args.orders)])
        t0 = time.perf_counter()
        await d.search(region, orders, [set() for _ in orders], time.time_ns() // 1_000_000)
        search_s = time.perf_counter() - t0
        return round_s, round_cpu_s, search_s, sent, len(orders), gc_s
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i:i + 1000])
        await redis.aclose()
        await nc.close()


_gc_time = [0.0, 0.0]  # seconds in collections since reset, start of the current one


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_time[1] = time.perf_counter()
    else:
        _gc_time[0] += time.perf_counter() - _gc_time[1]


async def run(args: argparse.Namespace) -> None:
    gc.callbacks.append(_on_gc)
    async with bench_stores() as urls:
        rows: dict[str, list[tuple[float, float, float, int, int, float]]] = {}
        for r in range(args.rounds):
            for search in args.search:  # interleaved
                rows.setdefault(search, []).append(
                    await one_round(args, urls, args.seed + r, search))
    print(f"{args.orders} orders (one region) x {args.couriers} couriers, {args.rounds} rounds, "
          f"a fresh namespace each, gc {args.gc}")
    for search, xs in rows.items():
        def ms(i: int, xs: list[tuple[float, float, float, int, int, float]] = xs) -> str:
            v = [x[i] * 1000 for x in xs]
            return f"p50 {statistics.median(v):7.1f} ms  max {max(v):7.1f} ms"
        print(f"  DISPATCH_SEARCH={search:<8} run_round   {ms(0)}   offers sent "
              f"{[x[3] for x in xs]}")
        print(f"  {'':24}process CPU {ms(1)}")
        print(f"  {'':24}of which in GC {ms(5)}")
        print(f"  {'':24}search alone (after the round) {ms(2)}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--search", nargs="+", default=["snapshot", "live"],
                    choices=["snapshot", "live"])
    ap.add_argument("--gc", choices=["freeze", "default"], default="freeze",
                    help="collect and freeze the heap before each timed round, as the core "
                         "does at start-up (default), or leave CPython's defaults")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
