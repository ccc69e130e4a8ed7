"""Scaling on the local cluster: GPS ingest and dispatch rounds with 1, 2 and 3 core processes.

    python -m bench.scaling --cores 1,2,3 --devices 600 --rate 3000 --rounds 4

Starts the local Redis Cluster (3 primaries, 3 replicas) and 3-node NATS cluster with
JetStream (`api.local_cluster`, streams with 3 replicas) and PostgreSQL (``DATABASE_URL`` or
an embedded one), then for each process count N:

- **Ingest**: N real core processes (`homechef serve core`, ``REDIS_CLUSTER=true``, a fresh
  namespace), the device fleet of `bench.ingest` (`Fleet`) spread over them round-robin (one fix per
  message, as a phone sends), the same offered rate for every N. Prints fixes accepted per
  second (the sum of the processes' counters), the server's accept→index p99 (histogram
  bucket, merged), and the CPU µs per accepted fix of each core process and of the
  cluster's Redis and NATS nodes.
- **Dispatch**: N processes each run the production round (`Dispatcher.run_round`, as a
  core process runs it for a region whose lease it holds) ``--rounds`` times, each round
  on a city of its own (`bench.dispatch_round.city`: ``--round-orders`` waiting orders,
  ``--round-couriers`` couriers), all set up before a common start. Prints rounds per
  second over the N processes (rounds / wall time from the common start to the last
  round's end), each process's CPU per round, and the Redis nodes' CPU per round.

The machine has 2 cores and the load generator, the cluster's 9 servers and the processes
share them: throughput stops growing at 2 processes here. The CPU per fix and per round of
each process is what shows the line: if it stays flat as N grows, N processes on N cores do
N times the work (the stores' own cost per fix/round is printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats

from api.auth import TokenCodec
from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore
from api.local_cluster import ClusterUrls, LocalCluster
from api.migrate import migrate
from api.observability import Metrics
from api.resources import connect_redis
from api.runtime import EmbeddedStores, free_port
from api.settings import Settings, StoreSettings
from api.stores.live_index import LiveIndex
from bench.dispatch_round import city, drop_namespace, load_city
from bench.ingest import SECRET, Fleet, bucket_pct, cpu_s, rss_mb, server_counters
from streams.catalog import Names

ROOT = Path(__file__).parents[1]


def cluster_env(urls: ClusterUrls, database_url: str, ns: str) -> dict[str, str]:
    """A core process's environment on the local cluster."""
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": urls.redis_url,
            "REDIS_CLUSTER": "true", "NATS_URL": urls.nats_url, "NATS_STREAM_REPLICAS": "3",
            "JWT_SECRET": SECRET, "HOMECHEF_NAMESPACE": ns, "LOG_LEVEL": "WARNING"}


async def start_cores(env: dict[str, str], n: int) -> list[tuple[asyncio.subprocess.Process,
                                                                   str]]:
    """N core processes on ports of their own; return once each answers /health."""
    started = []
    for _ in range(n):
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "serve", "core",
            env={**env, "CORE_PORT": str(port), "COMMERCE_PORT": str(free_port())},
            cwd=ROOT, stdout=subprocess.DEVNULL)
        started.append((proc, f"http://127.0.0.1:{port}"))
    async with httpx.AsyncClient() as client:
        for _proc, url in started:
            for _ in range(900):
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"core at {url} did not become healthy")
    return started


def merged(buckets: list[dict[float, float]]) -> dict[float, float]:
    out: dict[float, float] = {}
    for b in buckets:
        for k, v in b.items():
            out[k] = out.get(k, 0.0) + v
    return out


async def ingest_step(args: argparse.Namespace, urls: ClusterUrls, database_url: str,
                      store_pids: dict[str, int], n: int) -> dict[str, Any]:
    ns = f"scale{uuid.uuid4().hex[:6]}"
    cores = await start_cores(cluster_env(urls, database_url, ns), n)
    # What each process burns with no device (leases, consumers, health checks): taken off
    # before the cost per fix is computed, so the figure is the marginal cost of a fix.
    idle0, t_idle = [cpu_s(p.pid) for p, _ in cores], time.perf_counter()
    stores_idle0 = {k: cpu_s(p) for k, p in store_pids.items()}
    await asyncio.sleep(args.idle)
    idle_s = time.perf_counter() - t_idle
    idle_per_s = [(cpu_s(p.pid) - c) / idle_s for (p, _), c in zip(cores, idle0, strict=True)]
    stores_idle_per_s = {k: (cpu_s(p) - stores_idle0[k]) / idle_s
                         for k, p in store_pids.items()}
    codec = TokenCodec(SECRET, ttl_s=3600)
    stop = asyncio.Event()
    couriers = [f"dev{i:05d}" for i in range(args.devices)]
    fleet = Fleet(couriers, 12.97, 77.59, 0.1, args.seed)
    driver: asyncio.Task[None] | None = None
    try:
        await fleet.connect([u.replace("http://", "ws://") for _, u in cores],
                            [codec.issue(c, "delivery") for c in couriers])
        driver = asyncio.create_task(fleet.drive(args.rate, 1, stop))
        await asyncio.sleep(args.warmup)
        pids = {f"core {i + 1}": p.pid for i, (p, _) in enumerate(cores)} | store_pids
        before = [await server_counters(u) for _, u in cores]
        c0 = {k: cpu_s(p) for k, p in pids.items()}
        s0, t0 = fleet.sent, time.perf_counter()
        await asyncio.sleep(args.duration)
        after = [await server_counters(u) for _, u in cores]
        cpu = {k: cpu_s(p) - c0[k] for k, p in pids.items()}
        elapsed, offered = time.perf_counter() - t0, fleet.sent - s0
        rss = [rss_mb(p.pid) for p, _ in cores]
    finally:
        stop.set()
        if driver is not None:
            await asyncio.gather(driver, return_exceptions=True)
        fleet.close()
        for proc, _ in cores:
            proc.terminate()
            await proc.wait()
    accepted = sum(a[0] for a in after) - sum(b[0] for b in before)
    rejected = sum(a[1] for a in after) - sum(b[1] for b in before)
    per_core = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    # The stores' cost per fix, likewise above their idle burn (cluster bus, RAFT heartbeats).
    above = {k: max(0.0, v - stores_idle_per_s.get(k, 0.0) * elapsed) for k, v in cpu.items()}
    redis_cpu = sum(v for k, v in above.items() if k.startswith("redis"))
    nats_cpu = sum(v for k, v in above.items() if k.startswith("nats"))
    core_cpu = [cpu[f"core {i + 1}"] for i in range(n)]
    return {
        "cores": n, "offered_per_s": offered / elapsed, "accepted_per_s": accepted / elapsed,
        "rejected_per_s": rejected / elapsed,
        "p99_ms": bucket_pct(merged([b[2] for b in before]), merged([a[2] for a in after]), 99),
        "core_us_per_fix": [max(0.0, c - i * elapsed) / max(1.0, f) * 1e6
                            for c, i, f in zip(core_cpu, idle_per_s, per_core, strict=True)],
        "core_idle_pct": [i * 100 for i in idle_per_s],
        "core_rss_mb": rss,
        "core_pct": [c / elapsed * 100 for c in core_cpu],
        "redis_us_per_fix": redis_cpu / max(1.0, accepted) * 1e6,
        "nats_us_per_fix": nats_cpu / max(1.0, accepted) * 1e6,
        # The busiest node of each: where a single stream leader or hot shard would cap it.
        "redis_max_node_pct": max(v for k, v in cpu.items() if k.startswith("redis"))
        / elapsed * 100,
        "nats_max_node_pct": max(v for k, v in cpu.items() if k.startswith("nats"))
        / elapsed * 100,
        "load": os.getloadavg()[0],
    }


# -- dispatch rounds ------------------------------------------------------------------------------


def _fixed(now_ms: int) -> Callable[[], int]:
    """A clock standing still at the city's time (the round plans as `city` meant)."""
    return lambda: now_ms


async def dispatch_worker(spec: dict[str, Any]) -> None:
    """One process's rounds: set up every round's city, say "ready", wait for "go" on stdin,
    run the rounds back to back, print the figures as one JSON line."""
    settings = Settings(stores=StoreSettings(database_url=spec["database_url"],
                                             redis_url=spec["redis_url"], redis_cluster=True,
                                             nats_url=spec["nats_url"]))
    redis = connect_redis(settings)
    nc = await nats.connect(servers=settings.stores.nats_servers)
    args = argparse.Namespace(orders=spec["orders"], couriers=spec["couriers"])
    rounds = []
    try:
        for r in range(spec["rounds"]):
            ns = f"{spec['ns']}r{r}"
            now_ms = time.time_ns() // 1_000_000
            couriers = LiveIndex(redis, f"{ns}:geo")
            store = DispatchStore(redis, ns, couriers.status_key)
            c = city(args, spec["seed"] + r, now_ms)
            region = await load_city(redis, store, couriers, c, now_ms)
            d = Dispatcher(settings.replace(server__namespace=ns), Names(ns), store, couriers,
                           nc, nc.jetstream(), DispatchMetrics(Metrics(f"bench{r}")),
                           clock=_fixed(now_ms))
            rounds.append((ns, d, region))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start, c0 = time.time(), time.process_time()
        walls, offers = [], 0
        for _, d, region in rounds:
            t0 = time.perf_counter()
            offers += await d.run_round(region)
            walls.append(time.perf_counter() - t0)
        end, cpu = time.time(), time.process_time() - c0
        print(json.dumps({"start": start, "end": end, "cpu_s": cpu, "walls": walls,
                          "offers": offers}), flush=True)
    finally:
        for ns, _, _ in rounds:
            await drop_namespace(redis, ns)
        await redis.aclose()
        await nc.close()


async def dispatch_step(args: argparse.Namespace, urls: ClusterUrls, database_url: str,
                        store_pids: dict[str, int], n: int) -> dict[str, Any]:
    procs = []
    for i in range(n):
        spec = {"database_url": database_url, "redis_url": urls.redis_url,
                "nats_url": urls.nats_url, "orders": args.round_orders,
                "couriers": args.round_couriers, "rounds": args.rounds,
                "seed": args.seed + 100 * i, "ns": f"scaled{uuid.uuid4().hex[:5]}p{i}"}
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scaling", "--dispatch-worker", json.dumps(spec),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for p in procs:
        assert p.stdout is not None
        line = (await p.stdout.readline()).decode().strip()
        if line != "ready":
            raise RuntimeError(f"a dispatch worker failed to set up: {line!r}")
    c0 = {k: cpu_s(p) for k, p in store_pids.items()}
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    results = []
    for p in procs:
        assert p.stdout is not None
        results.append(json.loads(await p.stdout.readline()))
    cpu = {k: cpu_s(p) - c0[k] for k, p in store_pids.items()}
    for p in procs:
        await p.wait()
    rounds = n * args.rounds
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "cores": n, "rounds_per_s": rounds / wall,
        "round_ms_p50": statistics.median(w * 1000 for r in results for w in r["walls"]),
        "cpu_ms_per_round": [r["cpu_s"] / args.rounds * 1000 for r in results],
        "offers_per_round": sum(r["offers"] for r in results) / rounds,
        "redis_ms_per_round": sum(v for k, v in cpu.items() if k.startswith("redis"))
        / rounds * 1000,
        "load": os.getloadavg()[0],
    }


# -- report ---------------------------------------------------------------------------------------


def _fmt(xs: list[float], spec: str) -> str:
    return " / ".join(format(x, spec) for x in xs)


def report(args: argparse.Namespace, ingest: list[dict[str, Any]],
           dispatch: list[dict[str, Any]]) -> None:
    if ingest:
        print(f"\ningest: {args.devices} devices, one fix per message, offered "
              f"{args.rate:,.0f} fixes/s, {args.duration:.0f} s measured after "
              f"{args.warmup:.0f} s warm-up (medians of {args.repeat} runs)")
        print("µs/fix: CPU above the process's (or the nodes') idle burn, per accepted fix")
        print(f"{'cores':>5} {'offered/s':>10} {'accepted/s':>11} {'x 1 core':>9} {'p99 ms':>9}  "
              f"{'core µs/fix (each)':<20} {'core % (each)':<15} {'core idle %':<15} "
              f"{'redis µs/fix':>12} "
              f"{'nats µs/fix':>11} {'busiest redis/nats node %':>26}")
        base = ingest[0]["accepted_per_s"]
        for r in ingest:
            print(f"{r['cores']:>5} {r['offered_per_s']:>10,.0f} {r['accepted_per_s']:>11,.0f} "
                  f"{r['accepted_per_s'] / base:>9.2f} {r['p99_ms']:>9}  "
                  f"{_fmt(r['core_us_per_fix'], '.0f'):<20} {_fmt(r['core_pct'], '.0f'):<15} "
                  f"{_fmt(r['core_idle_pct'], '.1f'):<15} "
                  f"{r['redis_us_per_fix']:>12.1f} {r['nats_us_per_fix']:>11.1f} "
                  f"{r['redis_max_node_pct']:>15.0f} / {r['nats_max_node_pct']:<8.0f}")
        for r in ingest:
            print(f"  {r['cores']} process(es): core RSS {_fmt(r['core_rss_mb'], '.0f')} MiB "
                  f"with {args.devices} device sockets in all")
    if dispatch:
        print(f"\ndispatch: each process runs {args.rounds} production rounds, "
              f"{args.round_orders} orders x {args.round_couriers} couriers each (medians "
              f"of {args.repeat} runs)")
        print(f"{'procs':>5} {'rounds/s':>9} {'x 1 proc':>9} {'round p50 ms':>13}  "
              f"{'CPU ms/round (each)':<26} {'offers/round':>12} {'redis ms/round':>14}")
        base = dispatch[0]["rounds_per_s"]
        for r in dispatch:
            print(f"{r['cores']:>5} {r['rounds_per_s']:>9.2f} {r['rounds_per_s'] / base:>9.2f} "
                  f"{r['round_ms_p50']:>13.0f}  {_fmt(r['cpu_ms_per_round'], '.0f'):<26} "
                  f"{r['offers_per_round']:>12.0f} {r['redis_ms_per_round']:>14.1f}")
    print(f"\nmachine: {os.cpu_count()} CPUs, load average at the end "
          f"{os.getloadavg()[0]:.1f}")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field by field median of repeated runs (lists element-wise; strings from the
    run with the median first numeric figure)."""
    out: dict[str, Any] = {}
    for k, v in runs[0].items():
        if isinstance(v, list):
            out[k] = [statistics.median(r[k][i] for r in runs) for i in range(len(v))]
        elif isinstance(v, int | float):
            out[k] = statistics.median(r[k] for r in runs)
        else:
            out[k] = sorted(runs, key=lambda r: str(r[k]))[len(runs) // 2][k]
    return out


async def run(args: argparse.Namespace) -> None:
    counts = [int(x) for x in args.cores.split(",")]
    root = Path(tempfile.mkdtemp(prefix="homechef-scaling-"))
    cluster = LocalCluster(root / "cluster")
    pg = EmbeddedStores(root / "pg")
    ingest: list[dict[str, Any]] = []
    dispatch: list[dict[str, Any]] = []
    try:
        print("starting the local Redis Cluster and NATS cluster ...", flush=True)
        urls = await cluster.start_cluster()
        database_url = os.environ.get("DATABASE_URL") or (
            await pg.start(postgres=True, redis=False, nats=False))["postgres"]
        await migrate(database_url)
        store_pids = cluster.pids
        for part in args.parts.split(","):
            for n in counts:
                runs = []
                for k in range(args.repeat):
                    print(f"{part}: {n} process(es), run {k + 1}/{args.repeat} ...", flush=True)
                    step = ingest_step if part == "ingest" else dispatch_step
                    runs.append(await step(args, urls, database_url, store_pids, n))
                (ingest if part == "ingest" else dispatch).append(median_of(runs))
    finally:
        await cluster.stop()
        cluster.remove_files()
        await pg.stop()
        pg.remove_files()
    report(args, ingest, dispatch)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cores", default="1,2,3", help="process counts, comma-separated")
    ap.add_argument("--parts", default="ingest,dispatch")
    ap.add_argument("--devices", type=int, default=600)
    ap.add_argument("--rate", type=float, default=3000, help="offered fixes/s in total")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=4)
    ap.add_argument("--idle", type=float, default=5,
                    help="seconds each step measures the core processes idle first")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per process")
    ap.add_argument("--round-orders", type=int, default=500)
    ap.add_argument("--round-couriers", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per process count (medians)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--dispatch-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dispatch_worker:
        asyncio.run(dispatch_worker(json.loads(args.dispatch_worker)))
        return
    if math.isnan(args.rate) or args.rate <= 0:
        ap.error("--rate must be positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
