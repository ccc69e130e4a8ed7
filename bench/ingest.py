"""GPS ingest end to end: simulated devices over WebSockets → core → NATS → indexer → Redis.

    python -m bench.ingest --devices 1000 --rate 20000 --batch 20 --duration 10

Starts a real core process (embedded stores unless DATABASE_URL/REDIS_URL/NATS_URL are set),
connects N device sockets with the `websockets` client and sends R fixes/s in total (each
device moves on a random walk; ``--batch K`` sends K fixes per LOCATIONS message). Prints
accepted fixes/s (server counter), fix-to-index latency p50/p99 (device send time → the fix
visible in Redis, read for a fixed sample of devices every 10 ms), the server's own
accept→index histogram, CPU per component (% of a core and µs per accepted fix: the figure
that does not depend on how busy the shared machine is) and server RSS — and, in the same
run, the baseline: the same number of positions written with raw pipelined GEOADD from
Python into the same Redis.

``--roads DIR`` runs core on that road data (``ROADS``) with the devices in the middle of
it (+-0.01 deg), so the fleet matcher matches their fixes beside ingest; ``--no-match``
turns the matcher off (``ROADS_MATCH=false``) for the side-by-side run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import websockets

from api.auth import TokenCodec
from api.migrate import migrate
from api.runtime import free_port
from bench._stores import bench_stores

SECRET = "bench-secret-" + "b" * 40


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def start_core(urls: dict[str, str], ns: str, roads: Path | None = None,
                     match: bool = True) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": urls["postgres"], "REDIS_URL": urls["redis"],
           "NATS_URL": urls["nats"], "JWT_SECRET": SECRET, "HOMECHEF_NAMESPACE": ns,
           "CORE_PORT": str(port), "COMMERCE_PORT": str(free_port()), "LOG_LEVEL": "WARNING"}
    if roads is not None:
        env |= {"ROADS": str(roads), "ROADS_MATCH": "true" if match else "false"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "serve", "core", env=env,
        cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("core did not start")


async def server_counters(url: str) -> tuple[float, float, dict[float, float]]:
    """Accepted and rejected fixes so far, and the accept→index histogram's buckets."""
    async with httpx.AsyncClient(timeout=30) as client:  # a saturated core answers late
        text = (await client.get(f"{url}/metrics")).text
    accepted, rejected = math.nan, 0.0
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("gps_fixes_accepted_total "):
            accepted = float(line.split()[1])
        elif line.startswith("gps_fixes_rejected_total{"):
            rejected += float(line.rsplit(" ", 1)[1])
        elif line.startswith("gps_fix_to_index_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[math.inf if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return accepted, rejected, buckets


def bucket_pct(before: dict[float, float], after: dict[float, float], p: float) -> str:
    """Upper bound of the histogram bucket holding the p-th percentile (in ms) of a window."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return "n/a"
    for b, c in zip(bounds, counts, strict=True):
        if c >= p / 100 * counts[-1]:
            return "> 5000" if math.isinf(b) else f"<= {b * 1000:.0f}"
    return "n/a"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by a process (NaN if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_pids() -> dict[str, int]:
    """PIDs of the local redis-server and nats-server (shared with other users: indicative)."""
    found: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        if comm in ("redis-server", "nats-server") and comm not in found:
            found[comm] = int(d.name)
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def device(ws_url: str, courier: str, token: str, interval_s: float, batch: int,
                 stop: asyncio.Event, sent: list[int], rng: random.Random,
                 lat0: float, lng0: float, connected: list[int],
                 spread_deg: float = 0.1) -> None:
    lat = lat0 + rng.uniform(-spread_deg, spread_deg)
    lng = lng0 + rng.uniform(-spread_deg, spread_deg)
    async with websockets.connect(f"{ws_url}/ws/courier?token={token}", max_queue=None) as ws:
        connected[0] += 1
        await asyncio.sleep(rng.uniform(0, interval_s))
        next_t = time.monotonic()
        spacing_ms = max(1, int(interval_s * 1000 / batch))  # a batch spans one interval
        last_ts = 0
        while not stop.is_set():
            fixes = []
            t = now_ms()
            # A late device (the generator is behind schedule) squeezes its batch into the
            # time since its last one, so ts stay strictly increasing and the speed plausible.
            gap_ms = max(1, (t - last_ts) // batch) if last_ts else spacing_ms
            spacing = min(spacing_ms, gap_ms)
            step = 8e-5 * spacing / 1000  # <= ~9 m/s per axis: always a plausible speed
            for k in range(batch):
                lat += rng.uniform(-1, 1) * step
                lng += rng.uniform(-1, 1) * step
                fixes.append({"lat": lat, "lng": lng, "ts": t - (batch - 1 - k) * spacing})
            last_ts = t
            msg = ({"type": "LOCATION", "payload": fixes[0]} if batch == 1
                   else {"type": "LOCATIONS", "payload": fixes})
            await ws.send(json.dumps(msg))
            sent[0] += batch
            next_t += interval_s
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))


async def sample_latency(redis: aioredis.Redis, ns: str, couriers: list[str],
                         stop: asyncio.Event, out: list[float], every_s: float) -> None:
    """Every ``every_s`` read the indexed ts of a fixed sample of couriers (all of them each
    round); a new ts gives send→indexed time, over-estimated by at most one round."""
    seen: dict[str, int] = {}
    while not stop.is_set():
        async with redis.pipeline(transaction=False) as pipe:
            for c in couriers:
                pipe.hget(f"{ns}:geo:pos:{c}", "ts")
            values = await pipe.execute()
        t = now_ms()
        for c, v in zip(couriers, values, strict=True):
            if v is None:
                continue
            ts = int(v)
            if seen.get(c) not in (None, ts):
                out.append(t - ts)
            seen[c] = ts
        await asyncio.sleep(every_s)


async def geoadd_baseline(redis: aioredis.Redis, key: str, n: int,
                          batch: int = 1000) -> tuple[float, list[float]]:
    rng = random.Random(5)
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(0, n, batch):
        values: list[Any] = []
        for j in range(i, min(n, i + batch)):
            values += [77.59 + rng.uniform(-0.1, 0.1), 12.97 + rng.uniform(-0.1, 0.1),
                       f"c{j % 50_000}"]
        t = time.perf_counter()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.geoadd(key, values)
            await pipe.execute()
        latencies.append((time.perf_counter() - t) * 1000)
    return n / (time.perf_counter() - started), latencies


async def run(args: argparse.Namespace) -> None:
    ns = f"bench{uuid.uuid4().hex[:6]}"
    async with bench_stores() as urls:
        await migrate(urls["postgres"])
        proc, url = await start_core(urls, ns, args.roads, match=not args.no_match)
        lat0, lng0, spread = 12.97, 77.59, 0.1
        if args.roads is not None:
            from roads.manifest import read_manifest

            lo_lng, lo_lat, hi_lng, hi_lat = read_manifest(args.roads).bbox
            lat0, lng0, spread = (lo_lat + hi_lat) / 2, (lo_lng + hi_lng) / 2, 0.01
        redis = aioredis.from_url(urls["redis"])
        codec = TokenCodec(SECRET, ttl_s=3600)
        try:
            couriers = [f"dev{i:05d}" for i in range(args.devices)]
            interval_s = args.devices * args.batch / args.rate
            stop = asyncio.Event()
            sent = [0]
            connected = [0]
            rng = random.Random(args.seed)
            tasks = [asyncio.create_task(device(
                url.replace("http://", "ws://"), c, codec.issue(c, "delivery"), interval_s,
                args.batch, stop, sent, random.Random(rng.random()), lat0, lng0,
                connected, spread)) for c in couriers]
            # Warm-up starts once every device is connected: the measured window is the
            # steady state, not 1,000 handshakes and first-fix look-ups.
            for _ in range(1200):  # at most 120 s
                if connected[0] >= len(couriers):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(args.warmup)
            latencies: list[float] = []
            sampled = random.Random(2).sample(couriers, min(args.sample, len(couriers)))
            sampler = asyncio.create_task(sample_latency(redis, ns, sampled, stop, latencies,
                                                         args.sample_every_ms / 1000))
            pids = {"core": proc.pid, "load generator + sampler (this process)": os.getpid(),
                    **store_pids()}
            c0 = {k: cpu_s(p) for k, p in pids.items()}
            (a0, r0, h0), s0, t0 = await server_counters(url), sent[0], time.perf_counter()
            await asyncio.sleep(args.duration)
            (a1, r1, h1), s1, t1 = await server_counters(url), sent[0], time.perf_counter()
            cpu = {k: cpu_s(p) - c0[k] for k, p in pids.items()}
            server_rss = rss_mb(proc.pid)
            stop.set()
            await asyncio.gather(*tasks, sampler, return_exceptions=True)
            elapsed = t1 - t0
            accepted_per_s = (a1 - a0) / elapsed
            offered_per_s = (s1 - s0) / elapsed
            base_rate, base_lat = await geoadd_baseline(redis, f"{ns}:geoadd",
                                                        max(50_000, int(a1 - a0)))
        finally:
            proc.terminate()
            await proc.wait()
            keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=5000)]
            for i in range(0, len(keys), 5000):
                await redis.delete(*keys[i:i + 5000])
            await redis.aclose()

    print(f"ingest: {args.devices} devices, target {args.rate} fixes/s, batch {args.batch}, "
          f"{args.duration:.0f} s measured after {args.warmup:.0f} s warm-up")
    print(f"{'':34}{'fixes/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'ours: WS → NATS → indexer → Redis':34}{accepted_per_s:10,.0f}"
          f"{pct(latencies, 50):9.1f}{pct(latencies, 99):9.1f}")
    print(f"{'baseline: pipelined GEOADD':34}{base_rate:10,.0f}"
          f"{pct(base_lat, 50):9.1f}{pct(base_lat, 99):9.1f}   (per 1000-fix pipeline)")
    print(f"ratio ours/GEOADD throughput: {accepted_per_s / base_rate:.2f}; sent by devices "
          f"{offered_per_s:,.0f}/s (rejected {(r1 - r0) / elapsed:,.0f}/s); "
          f"latency samples {len(latencies)} "
          f"(mean {statistics.fmean(latencies) if latencies else math.nan:.1f} ms)")
    print(f"server-side accept→index (histogram bucket): p50 {bucket_pct(h0, h1, 50)} ms, "
          f"p99 {bucket_pct(h0, h1, 99)} ms")
    print(f"core process RSS at the end: {server_rss:.0f} MiB")
    # CPU per fix does not depend on how much of the shared machine we were given: it is
    # the figure to compare between runs; 1e6 / (core µs per fix) bounds one core process.
    fixes = max(1.0, a1 - a0)
    print("CPU in the measured window (redis/nats are shared with other users: indicative):")
    for k, v in cpu.items():
        print(f"  {k:40} {v / elapsed * 100:5.0f}% of a core  {v / fixes * 1e6:7.1f} µs/fix")
    print(f"machine load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--rate", type=float, default=4000, help="total fixes per second")
    p.add_argument("--batch", type=int, default=1, help="fixes per device message")
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", type=int, default=100,
                   help="devices whose latency is sampled (all of them every round)")
    p.add_argument("--sample-every-ms", type=float, default=10,
                   help="sampling round interval: the latency resolution")
    p.add_argument("--roads", type=Path, default=None,
                   help="road data for core (ROADS); devices in its middle")
    p.add_argument("--no-match", action="store_true",
                   help="with --roads: the fleet matcher off (ROADS_MATCH=false)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
