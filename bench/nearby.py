"""Nearby search at city scale: our H3 k-ring search vs Redis GEOSEARCH on the same data.

    python -m bench.nearby --couriers 50000 --queries 2000

Loads N couriers uniformly in a disc around a city centre into the live index (through the
same Lua upsert the indexer uses) and into one Redis GEO key, then times Q searches of each
kind from the same random points (radius, limit fixed), one at a time, and prints p50/p99
latency, throughput, and how often both return the same ids in the same order.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from api.stores.live_index import LiveIndex, Located
from bench._stores import bench_stores


def _name(geosearch_row: Any) -> str:
    return str(geosearch_row[0].decode())


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _city_points(rng: random.Random, n: int, lat0: float, lng0: float,
                 radius_m: float) -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        r = radius_m * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        out.append((lat0 + r * math.cos(a) / 111_195.0,
                    lng0 + r * math.sin(a) / (111_195.0 * math.cos(math.radians(lat0)))))
    return out


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    lat0, lng0 = 12.9716, 77.5946
    points = _city_points(rng, args.couriers, lat0, lng0, args.city_radius_m)
    queries = _city_points(rng, args.queries, lat0, lng0, args.city_radius_m * 0.9)
    now_ms = time.time_ns() // 1_000_000
    async with bench_stores() as urls:
        redis = aioredis.from_url(urls["redis"])
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        index = LiveIndex(redis, f"{prefix}:geo")
        geo_key = f"{prefix}:geoadd"
        try:
            t0 = time.perf_counter()
            for i in range(0, len(points), 1000):
                await index.upsert(Located(f"c{j}", la, ln, now_ms)
                                   for j, (la, ln) in enumerate(points[i:i + 1000], start=i))
            load_ours_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(0, len(points), 1000):
                chunk: list[float | str] = []
                for j, (la, ln) in enumerate(points[i:i + 1000], start=i):
                    chunk += [ln, la, f"c{j}"]
                await redis.geoadd(geo_key, chunk)
            load_geo_s = time.perf_counter() - t0

            ours: list[float] = []
            theirs: list[float] = []
            same = 0
            round_trips: list[int] = []
            for la, ln in queries:
                t = time.perf_counter()
                members, result = await index.nearby(la, ln, radius_m=args.radius_m,
                                                     limit=args.limit, now_ms=now_ms,
                                                     stale_s=60)
                ours.append((time.perf_counter() - t) * 1000)
                round_trips.append(result.round_trips)
                t = time.perf_counter()
                got = await redis.geosearch(geo_key, longitude=ln, latitude=la,
                                            radius=args.radius_m, unit="m", sort="ASC",
                                            count=args.limit, withdist=True)
                theirs.append((time.perf_counter() - t) * 1000)
                same += [m.member_id for m in members] == [_name(g) for g in got]
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=5000)]
            for i in range(0, len(keys), 5000):
                await redis.delete(*keys[i:i + 5000])
            await redis.aclose()

    q = len(queries)
    print(f"nearby search: {args.couriers} couriers in a {args.city_radius_m / 1000:.0f} km "
          f"disc, {q} queries, radius {args.radius_m:.0f} m, limit {args.limit}")
    print(f"{'':28}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'queries/s':>11}")
    for name, lat_ms in (("ours (H3 k-ring + Lua)", ours), ("Redis GEOSEARCH (baseline)", theirs)):
        print(f"{name:28}{_pct(lat_ms, 50):9.3f}{_pct(lat_ms, 99):9.3f}"
              f"{statistics.fmean(lat_ms):9.3f}{1000 / statistics.fmean(lat_ms):11.0f}")
    print(f"ratio ours/GEOSEARCH: p50 {_pct(ours, 50) / _pct(theirs, 50):.2f}x, "
          f"p99 {_pct(ours, 99) / _pct(theirs, 99):.2f}x")
    print(f"same ids in same order as GEOSEARCH: {same}/{q} "
          f"(differences come from GEOSEARCH's 52-bit geohash positions and its Earth radius)")
    # Each ring step reads the cells, then the statuses of the members found.
    print(f"ring steps per query: median {statistics.median(round_trips):.0f}, "
          f"max {max(round_trips)} (two Redis round trips each)")
    print(f"load: ours {args.couriers / load_ours_s:,.0f} couriers/s, "
          f"GEOADD {args.couriers / load_geo_s:,.0f} couriers/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--couriers", type=int, default=50_000)
    p.add_argument("--queries", type=int, default=2_000)
    p.add_argument("--radius-m", type=float, default=3_000)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--city-radius-m", type=float, default=15_000)
    p.add_argument("--seed", type=int, default=1)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
