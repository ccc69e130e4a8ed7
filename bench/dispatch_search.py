"""A dispatch round's candidate search on the Redis live index: three ways, same answer.

    python -m bench.dispatch_search --orders 2000 --couriers 10000 --rounds 5

Loads N couriers (2/3 idle, 1/3 to_pickup) into the live index in a 15 km city and, per round,
searches the K nearest idle couriers of every order's chef:

  per order   baseline: `asyncio.gather` of one `LiveIndex.nearby` per order (each several
              Redis round trips);
  nearby_many all searches in lockstep, one pipeline per ring step;
  snapshot    what `Dispatcher.run_round` does now: `LiveIndex.nearest_by_status` — one read
              of the regions' fresh couriers (one pipeline, one Lua script per region), then
              every order searched in memory (`geo.grid_index`). Timed whole, and split into
              the read and the in-memory search (wall and process CPU).

All run in the same process on the same data, interleaved; results are checked equal (ids in
order). `--stack` also times the production round's search (idle K plus 4 to_pickup).
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

import numpy as np
import redis.asyncio as aioredis

from api.stores.live_index import LiveIndex, Located
from bench._gc import GcClock
from bench._stores import bench_stores
from geo.cells import region_of, regions_near
from geo.grid_index import search_box


def _city(rng: random.Random, n: int, radius_m: float) -> list[tuple[float, float]]:
    lat0, lng0 = 12.9716, 77.5946
    out = []
    for _ in range(n):
        r = radius_m * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        out.append((lat0 + r * math.cos(a) / 111_195.0,
                    lng0 + r * math.sin(a) / (111_195.0 * math.cos(math.radians(lat0)))))
    return out


async def run(args: argparse.Namespace) -> None:
    gc_clock = GcClock()
    rng = random.Random(args.seed)
    couriers = _city(rng, args.couriers, 15_000)
    chefs = _city(rng, args.orders, 14_000)
    now_ms = time.time_ns() // 1_000_000
    async with bench_stores() as urls:
        # Like production (api/resources.py): a blocking pool of REDIS_POOL_MAX (64).
        redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            urls["redis"], max_connections=64, timeout=30))
        index = LiveIndex(redis, f"bench{uuid.uuid4().hex[:6]}:geo")
        try:
            await index.upsert([Located(f"c{i}", la, ln, now_ms - 1000)
                                for i, (la, ln) in enumerate(couriers)])
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(len(couriers)):
                    pipe.hset(index.status_key, f"c{i}", "to_pickup" if i % 3 == 0 else "idle")
                await pipe.execute()
            regions = sorted({r for la, ln in chefs for r in regions_near(
                region_of(la, ln), args.radius_m)})
            qlat = np.asarray([c[0] for c in chefs])
            qlng = np.asarray([c[1] for c in chefs])
            per_order: list[float] = []
            batched: list[float] = []
            snap_s: list[float] = []
            snap_cpu_s: list[float] = []
            snap_gc_s: list[float] = []
            read_s: list[float] = []
            stack_s: list[float] = []
            trips_one: list[int] = []
            trips_many: list[int] = []
            read_n = 0
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                one = await asyncio.gather(*(
                    index.nearby(la, ln, radius_m=args.radius_m, limit=args.k, now_ms=now_ms,
                                 stale_s=600, statuses=["idle"]) for la, ln in chefs))
                per_order.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                many = await index.nearby_many(chefs, radius_m=args.radius_m, limit=args.k,
                                               now_ms=now_ms, stale_s=600, statuses=["idle"])
                batched.append(time.perf_counter() - t0)
                if args.gc == "freeze":
                    gc.collect()
                    gc.freeze()
                gc_clock.reset()
                t0, c0 = time.perf_counter(), time.process_time()
                snap = await index.nearest_by_status(
                    chefs, regions=regions, radius_m=args.radius_m,
                    limits={"idle": [args.k] * len(chefs)}, now_ms=now_ms, stale_s=600)
                snap_s.append(time.perf_counter() - t0)
                snap_cpu_s.append(time.process_time() - c0)
                snap_gc_s.append(gc_clock.seconds)
                gc.unfreeze()
                t0 = time.perf_counter()  # the read alone (part of the line above)
                read = await index.snapshot(regions, now_ms=now_ms, stale_s=600,
                                            statuses=["idle"],
                                            box=search_box(qlat, qlng, args.radius_m))
                read_s.append(time.perf_counter() - t0)
                read_n = len(read)
                if args.stack:
                    t0 = time.perf_counter()
                    await index.nearest_by_status(
                        chefs, regions=regions, radius_m=args.radius_m,
                        limits={"idle": [args.k] * len(chefs),
                                "to_pickup": [4] * len(chefs)}, now_ms=now_ms, stale_s=600)
                    stack_s.append(time.perf_counter() - t0)
                ids_one = [[m.member_id for m in ms] for ms, _ in one]
                assert ids_one == [[m.member_id for m in ms] for ms, _ in many], "many differs"
                assert ids_one == [[h[0] for h in hits] for hits in snap["idle"]], \
                    "snapshot differs"
                trips_one.append(sum(r.round_trips for _, r in one))
                trips_many.append(max(r.round_trips for _, r in many))
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{index.prefix}:*")]
            for i in range(0, len(keys), 1000):
                await redis.delete(*keys[i:i + 1000])
            await redis.aclose()

    def ms(xs: list[float]) -> str:
        return f"p50 {statistics.median(xs) * 1000:8.1f} ms   p99 {_p99(xs) * 1000:8.1f} ms"

    print(f"{args.orders} orders x {args.couriers} couriers, K={args.k} idle within "
          f"{args.radius_m:.0f} m, {args.rounds} rounds (results equal in every round), "
          f"{len(regions)} regions read by the snapshot")
    # A ring step is two round trips: the cells (region slots), then the statuses of the
    # members found (dispatch slot). A snapshot is one pipeline of region reads, then one
    # status read.
    print(f"  baseline: gather of nearby per order  {ms(per_order)}   Redis round trips "
          f"{2 * trips_one[0]}")
    print(f"  nearby_many (lockstep, pipelined)     {ms(batched)}   Redis round trips "
          f"{2 * trips_many[0]}")
    print(f"  snapshot: read once + in memory       {ms(snap_s)}   Redis round trips 2")
    print(f"    of which the read ({read_n} idle)     {ms(read_s)}")
    print(f"    process CPU of the whole search     {ms(snap_cpu_s)}")
    print(f"    of which in GC (--gc {args.gc:<7})     {ms(snap_gc_s)}")
    if stack_s:
        print(f"  snapshot, idle K + 4 to_pickup        {ms(stack_s)}   Redis round trips 1")
    print(f"  nearby_many / baseline (medians): "
          f"{statistics.median(batched) / statistics.median(per_order):.3f}   snapshot / "
          f"baseline: {statistics.median(snap_s) / statistics.median(per_order):.3f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def _p99(xs: list[float]) -> float:
    return float(np.percentile(np.asarray(xs), 99))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=10000)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--radius-m", type=float, default=5000.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--gc", choices=["freeze", "default"], default="freeze",
                    help="collect and freeze the heap before each timed snapshot, as the core "
                         "does at start-up (default: the per-order results the baselines "
                         "leave alive are not scanned by collections inside it), or leave "
                         "CPython's defaults")
    ap.add_argument("--stack", action="store_true",
                    help="also time idle K + 4 to_pickup (the production round's search)")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
