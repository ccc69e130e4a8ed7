"""The indexer's write: CPU per fix of `LiveIndex.upsert` beside pipelined GEOADD, same fixes,
in this process and in Redis.

    python -m bench.index_upsert --devices 2000 --batch 30 --calls 600 --repeat 7

Devices on a random walk over a ~45 km city (a few regions) send fixes; each call files
``--batch`` of them, as the indexer does with one delivery of coalesced messages. Counted
is this process's CPU time (user + system: on loopback a write also pays for the receiver's
TCP work), which the machine's load barely moves, the Redis server's CPU time (INFO cpu,
user + system: run it on a Redis nothing else uses) and each call's latency. The baseline
writes the same positions with one pipelined GEOADD per call into one key: no newer-than
guard, no cells, no regions, what a bare geo set costs. Medians over the repeats after the
first (warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from api.stores.live_index import LiveIndex, Located
from bench._stores import bench_stores
from bench.ingest import pct

BASE_MS = 1_900_000_000_000


class Walk:
    """`devices` couriers on a random walk; `batches` yields the next calls' fixes."""

    def __init__(self, devices: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = [str(uuid.UUID(int=self.rng.getrandbits(128))) for _ in range(devices)]
        self.lat = [12.9716 + self.rng.uniform(-0.2, 0.2) for _ in range(devices)]
        self.lng = [77.5946 + self.rng.uniform(-0.2, 0.2) for _ in range(devices)]
        self.ts = BASE_MS
        self.i = 0

    def batches(self, calls: int, batch: int) -> list[list[Located]]:
        out = []
        n, u = len(self.ids), self.rng.uniform
        for _ in range(calls):
            fixes = []
            for _ in range(batch):
                i = self.i
                self.ts += 1
                self.lat[i] += u(-1e-4, 1e-4)
                self.lng[i] += u(-1e-4, 1e-4)
                fixes.append(Located(self.ids[i], self.lat[i], self.lng[i], self.ts))
                self.i = (i + 1) % n
            out.append(fixes)
        return out


async def server_cpu_s(redis: aioredis.Redis) -> float:
    """The Redis server's CPU seconds so far (user + system)."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def timed(redis: aioredis.Redis, calls: list[list[Located]],
                write: Any) -> tuple[float, float, list[float]]:
    """(this process's CPU µs per fix, Redis's CPU µs per fix, per-call latencies in ms) of
    `write(fixes)` over the calls."""
    latencies = []
    server0 = await server_cpu_s(redis)
    cpu0 = time.process_time()
    for fixes in calls:
        t = time.perf_counter()
        await write(fixes)
        latencies.append((time.perf_counter() - t) * 1000)
    cpu = time.process_time() - cpu0
    n = sum(len(f) for f in calls)
    return 1e6 * cpu / n, 1e6 * (await server_cpu_s(redis) - server0) / n, latencies


async def run(args: argparse.Namespace) -> None:
    async with bench_stores() as urls:
        redis = aioredis.from_url(urls["redis"])
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        index = LiveIndex(redis, f"{prefix}:geo")
        geo_key = f"{prefix}:geoadd"

        async def geoadd(fixes: list[Located]) -> None:
            values: list[Any] = []
            for f in fixes:
                values += (f.lng, f.lat, f.member_id)
            async with redis.pipeline(transaction=False) as pipe:
                pipe.geoadd(geo_key, values)
                await pipe.execute()

        walk = Walk(args.devices, args.seed)
        rows: dict[str, list[tuple[float, float, list[float]]]] = {"upsert": [], "geoadd": []}
        print(f"index upsert: {args.devices} devices, {args.batch} fixes per call, "
              f"{args.calls} calls per repeat, {args.repeat} repeats (first is warm-up)")
        try:
            for rep in range(args.repeat):
                calls = walk.batches(args.calls, args.batch)
                for name, write in (("upsert", index.upsert), ("geoadd", geoadd)):
                    us, server_us, lat = await timed(redis, calls, write)
                    if rep:
                        rows[name].append((us, server_us, lat))
                    print(f"  repeat {rep + 1}: {name:7} {us:6.1f} µs CPU per fix here, "
                          f"{server_us:6.1f} in Redis", flush=True)
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
            keys += [k async for k in redis.scan_iter(match=f"{{{prefix}*", count=1000)]
            for i in range(0, len(keys), 500):
                await redis.delete(*keys[i:i + 500])
            await redis.aclose()
    print(f"{'':28}{'µs CPU/fix':>11}{'fixes/s (1 core)':>18}{'Redis µs/fix':>14}"
          f"{'p50 ms/call':>13}{'p99 ms/call':>13}")
    medians, server = {}, {}
    for name, label in (("upsert", "ours: LiveIndex.upsert"),
                        ("geoadd", "baseline: pipelined GEOADD")):
        us = statistics.median(u for u, _, _ in rows[name])
        server[name] = statistics.median(s for _, s, _ in rows[name])
        lat = [x for _, _, ls in rows[name] for x in ls]
        medians[name] = us
        print(f"{label:28}{us:11.1f}{1e6 / us:18,.0f}{server[name]:14.1f}"
              f"{pct(lat, 50):13.2f}{pct(lat, 99):13.2f}")
    print(f"ratio ours/GEOADD CPU per fix: {medians['upsert'] / medians['geoadd']:.2f} here, "
          f"{server['upsert'] / server['geoadd']:.2f} in Redis")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--batch", type=int, default=30, help="fixes per call")
    p.add_argument("--calls", type=int, default=600, help="calls per repeat")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
