"""A dispatch round's candidate search on the Redis live index: batched vs one per order.

    python -m bench.dispatch_search --orders 2000 --couriers 10000 --rounds 5

Loads N couriers (2/3 idle, 1/3 to_pickup) into the live index in a 15 km city and, per round,
searches the K nearest idle couriers of every order's chef the way `Dispatcher.run_round`
does: baseline `asyncio.gather` of one `LiveIndex.nearby` per order (each several Redis round
trips), vs `LiveIndex.nearby_many` (all searches in lockstep, one pipeline per ring step).
Both run in the same process on the same data, alternating; results are checked equal.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
import uuid

import redis.asyncio as aioredis

from api.core.live_index import LiveIndex, Located
from bench._stores import bench_stores


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
            per_order: list[float] = []
            batched: list[float] = []
            trips_one: list[int] = []
            trips_many: list[int] = []
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
                assert [[m.member_id for m in ms] for ms, _ in one] == \
                    [[m.member_id for m in ms] for ms, _ in many], "results differ"
                trips_one.append(sum(r.round_trips for _, r in one))
                trips_many.append(max(r.round_trips for _, r in many))
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{index.prefix}:*")]
            for i in range(0, len(keys), 1000):
                await redis.delete(*keys[i:i + 1000])
            await redis.aclose()

    def ms(xs: list[float]) -> str:
        return f"p50 {statistics.median(xs) * 1000:8.1f} ms   max {max(xs) * 1000:8.1f} ms"

    print(f"{args.orders} orders x {args.couriers} couriers, K={args.k} idle within "
          f"{args.radius_m:.0f} m, {args.rounds} rounds (results equal in every round)")
    print(f"  baseline: gather of nearby per order  {ms(per_order)}   Redis round trips "
          f"{trips_one[0]}")
    print(f"  nearby_many (lockstep, pipelined)     {ms(batched)}   Redis round trips "
          f"{trips_many[0]}")
    print(f"  batched / baseline (medians): "
          f"{statistics.median(batched) / statistics.median(per_order):.3f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=10000)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--radius-m", type=float, default=5000.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
