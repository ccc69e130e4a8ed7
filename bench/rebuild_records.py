"""Restoring couriers' recorded availability after Redis lost its data (the rebuild's last
step, api/core/dispatch/rebuild.py): ``restore_courier.lua`` for N recorded couriers, read
from PostgreSQL, ``--per-pipeline`` script calls per Redis round trip (ours), beside the
baseline of one call per courier, 64 concurrently (as the rebuild restores orders).

    python -m bench.rebuild_records --couriers 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
import redis.asyncio as aioredis

from api.core.dispatch.records import DispatchRecords
from api.core.dispatch.store import DispatchStore
from api.migrate import migrate
from bench._stores import bench_stores
from geo.index_model import status_key


async def _wipe(r: aioredis.Redis, ns: str) -> None:
    keys = [k async for k in r.scan_iter(match=f"{ns}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await r.delete(*keys[i:i + 1000])


async def run(args: argparse.Namespace) -> None:
    async with bench_stores() as urls:
        admin = await asyncpg.connect(urls["postgres"])
        db = f"bench_records_{uuid.uuid4().hex[:6]}"
        await admin.execute(f'CREATE DATABASE "{db}"')
        pool: asyncpg.Pool | None = None
        r = aioredis.from_url(urls["redis"])
        ns = f"benchrec{uuid.uuid4().hex[:6]}"
        try:
            url = urls["postgres"].rsplit("/", 1)[0] + f"/{db}"
            await migrate(url)
            pool = await asyncpg.create_pool(url)
            records = DispatchRecords(pool, ns)
            await pool.executemany(
                "INSERT INTO courier_availability VALUES ($1, $2, $3, $4, now())",
                [(ns, f"c{i}", i % 5 != 0, "bike") for i in range(args.couriers)])
            store = DispatchStore(r, ns, status_key(f"{ns}:geo"))

            async def ours() -> int:
                rows = await records.availabilities()
                n = 0
                for i in range(0, len(rows), args.per_pipeline):
                    n += await store.restore_couriers(
                        [(x.courier_id, x.online, x.vehicle)
                         for x in rows[i:i + args.per_pipeline]], 1)
                return n

            async def baseline() -> int:
                rows = await records.availabilities()
                n = 0
                for i in range(0, len(rows), 64):
                    done = await asyncio.gather(*(store.restore_couriers(
                        [(x.courier_id, x.online, x.vehicle)], 1) for x in rows[i:i + 64]))
                    n += sum(done)
                return n

            times: dict[str, list[float]] = {"ours": [], "baseline": []}
            for _ in range(args.repeat):
                for name, fn in (("ours", ours), ("baseline", baseline)):
                    await _wipe(r, ns)
                    started = time.perf_counter()
                    n = await fn()
                    times[name].append(time.perf_counter() - started)
                    assert n == args.couriers, n
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{args.couriers} recorded couriers restored (median of {args.repeat}):")
            print(f"  ours, {args.per_pipeline} per pipeline: {med['ours']:.3f} s "
                  f"({med['ours'] / args.couriers * 1e6:.1f} µs per courier)")
            print(f"  baseline, one call each, 64 at once: {med['baseline']:.3f} s "
                  f"({med['baseline'] / args.couriers * 1e6:.1f} µs per courier)")
            print(f"  ratio ours/baseline: {med['ours'] / med['baseline']:.2f}")
        finally:
            await _wipe(r, ns)
            await r.aclose()
            if pool is not None:
                await pool.close()
            await admin.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--couriers", type=int, default=20_000)
    parser.add_argument("--per-pipeline", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
