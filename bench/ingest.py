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
import collections
import contextlib
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import redis.asyncio as aioredis

from api.auth import TokenCodec
from api.migrate import migrate
from api.runtime import free_port
from api.stores.live_index import LiveIndex
from bench import wsclient
from bench._stores import bench_stores
from geo.index_model import seen_key
from streams.jetstream import delete_streams

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


async def merged_counters(urls: Sequence[str]) -> tuple[float, float, dict[float, float]]:
    """`server_counters` summed over core processes."""
    accepted = rejected = 0.0
    buckets: dict[float, float] = {}
    for url in urls:
        a, r, b = await server_counters(url)
        accepted, rejected = accepted + a, rejected + r
        for le, n in b.items():
            buckets[le] = buckets.get(le, 0.0) + n
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


class Fleet:
    """Simulated devices on frame-level sockets (`bench.wsclient`): one connection each, one
    scheduler for all of them, no task per device. ``drive`` sends ``rate`` fixes/s in total,
    ``batch`` fixes per message, round-robin over the devices, so each device's fixes keep
    strictly increasing ``ts`` and a plausible speed.

    One fix per message (what a phone sends) is the hot case, and the generator shares the
    machine with what it measures, so its frames are built ahead: each device walks back
    and forth over `WALK` positions (random steps of <= ``STEP_DEG`` per axis, <= ~0.63 m),
    each one frame head (WebSocket header, zero mask, JSON up to ``"ts":``), and a message
    is that head, the ts (13 digits) and ``}}``; a device's ts advances >= ``MIN_GAP_MS`` per
    message (<= 63 m/s, under ingest's limit, even when the generator runs late). Several
    fixes per message build the JSON per message (a random walk of <= ~9 m/s per axis).

    Importable on its own: `connect` takes several core URLs (devices split round-robin)
    for runs against more than one core process.
    """

    WALK = 64
    STEP_DEG = 8e-6
    MIN_GAP_MS = 10

    def __init__(self, couriers: list[str], lat0: float, lng0: float, spread_deg: float,
                 seed: int) -> None:
        rng = random.Random(seed)
        self.couriers = couriers
        self.lat = [lat0 + rng.uniform(-spread_deg, spread_deg) for _ in couriers]
        self.lng = [lng0 + rng.uniform(-spread_deg, spread_deg) for _ in couriers]
        self.last_ts = [0] * len(couriers)
        self.conns: list[wsclient.WsClient] = []
        self.sent = 0
        """Fixes sent so far."""
        self.errors = 0
        """ERROR messages received from the server."""
        self.error_reasons: collections.Counter[str] = collections.Counter()
        self._rng = rng
        self._next = 0
        self._walks: list[list[bytes]] | None = None
        """Per device, its frame heads in walking order (there and back), built on first use."""
        self._step = [0] * len(couriers)

    def _build_walks(self) -> list[list[bytes]]:
        rng, step, walks = self._rng.random, self.STEP_DEG, []
        for y, x in zip(self.lat, self.lng, strict=True):
            heads = []
            for _ in range(self.WALK):
                y += (rng() - 0.5) * step
                x += (rng() - 0.5) * step
                text = f'{{"type":"LOCATION","payload":{{"lat":{y!r},"lng":{x!r},"ts":'.encode()
                heads.append(wsclient.text_frame_head(len(text) + 15) + text)
            walks.append(heads + heads[-2:0:-1])
        return walks

    def _send_one_fix(self, n_messages: int) -> None:
        walks = self._walks
        if walks is None:
            walks = self._walks = self._build_walks()
        now = now_ms()
        assert len(str(now)) == 13
        gap = self.MIN_GAP_MS
        last_ts, steps, conns = self.last_ts, self._step, self.conns
        n_dev, i = len(conns), self._next
        for _ in range(n_messages):
            ts = last_ts[i] + gap
            if ts < now:
                ts = now
            last_ts[i] = ts
            walk = walks[i]
            k = steps[i]
            steps[i] = k + 1 if k + 1 < len(walk) else 0
            conns[i].write(walk[k] + b"%d}}" % ts)
            i += 1
            if i == n_dev:
                i = 0
        self._next = i
        self.sent += n_messages

    def _on_text(self, raw: bytes) -> None:
        if b'"ERROR"' in raw:
            self.errors += 1
            reason = raw.partition(b'"reason":"')[2].partition(b'"')[0]
            self.error_reasons[reason.decode(errors="replace")] += 1

    async def connect(self, ws_urls: Sequence[str], tokens: Sequence[str],
                      concurrency: int = 100) -> None:
        """Open every device's socket, ``concurrency`` handshakes at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> wsclient.WsClient:
            async with gate:
                url = f"{ws_urls[i % len(ws_urls)]}/ws/courier?token={tokens[i]}"
                return await wsclient.connect(url, self._on_text)

        self.conns = list(await asyncio.gather(*(one(i) for i in range(len(self.couriers)))))

    def close(self) -> None:
        for c in self.conns:
            c.close()

    def send(self, n_messages: int, batch: int) -> None:
        """Send the next ``n_messages`` messages, round-robin over the devices."""
        if batch == 1:
            self._send_one_fix(n_messages)
            return
        now = now_ms()
        rng = self._rng.random
        lat, lng, last_ts, conns = self.lat, self.lng, self.last_ts, self.conns
        n_dev, i = len(conns), self._next
        for _ in range(n_messages):
            prev = last_ts[i]
            # ts strictly increasing per device even when the generator runs late; a batch's
            # fixes are 1 ms apart, ending now.
            first = max(now - batch + 1, prev + 1)
            dt_s = (first - prev) / 1000 if prev else 1.0
            step = 8e-5 * min(dt_s, 1.0)  # <= ~9 m/s per axis over the gap: always plausible
            parts = []
            y, x = lat[i], lng[i]
            for k in range(batch):
                y += (rng() - 0.5) * step
                x += (rng() - 0.5) * step
                parts.append(f'{{"lat":{y!r},"lng":{x!r},"ts":{first + k}}}')
                step = 8e-8  # 1 ms later: <= ~9 m/s
            lat[i], lng[i], last_ts[i] = y, x, first + batch - 1
            msg = f'{{"type":"LOCATIONS","payload":[{",".join(parts)}]}}'
            conns[i].send_text(msg.encode())
            i += 1
            if i == n_dev:
                i = 0
        self._next = i
        self.sent += n_messages * batch

    async def drive(self, rate: float, batch: int, stop: asyncio.Event,
                    tick_s: float = 0.002) -> None:
        """Send ``rate`` fixes/s until ``stop``; a late tick catches up (bounded to 1 s)."""
        msgs_per_s = rate / batch
        t0 = time.perf_counter()
        done = 0
        while not stop.is_set():
            due = int((time.perf_counter() - t0) * msgs_per_s) - done
            if due > msgs_per_s:  # more than a second behind: the generator is the limit
                done += due - int(msgs_per_s)
                due = int(msgs_per_s)
            if due > 0:
                self.send(due, batch)
                done += due
            await asyncio.sleep(tick_s)


_SCORES = """local ids = {}
for id in string.gmatch(ARGV[1], '[^\\n]+') do ids[#ids + 1] = id end
return redis.call('ZMSCORE', KEYS[1], unpack(ids))"""
"""KEYS[1] = a last-seen set, ARGV[1] = member ids, one per line: their scores (ts)."""


async def sample_latency(redis: aioredis.Redis, ns: str, couriers: list[str],
                         stop: asyncio.Event, out: list[float], every_s: float) -> None:
    """Every ``every_s`` read the indexed ts of a fixed sample of couriers (all of them each
    round); a new ts gives send→indexed time, over-estimated by at most one round.

    The ts is the courier's score in its region's last-seen set, which the upsert script
    writes with its position: one ZMSCORE per region (the regions re-read every second), in
    one pipeline, the ids passed as one argument. redis-py encodes each argument in Python,
    and reading positions (`LiveIndex.positions`) 100 rounds a second kept this process at
    13.8 % of a core with nothing sent, against 10.8 % now, on the machine it measures."""
    index = LiveIndex(redis, f"{ns}:geo")
    scores = redis.register_script(_SCORES)
    ids = "\n".join(couriers)
    seen: dict[str, int] = {}
    regions: list[str] = []
    read_regions_at = -math.inf
    while not stop.is_set():
        if time.monotonic() - read_regions_at > 1.0:
            regions = await index.regions()
            read_regions_at = time.monotonic()
        async with redis.pipeline(transaction=False) as pipe:
            for region in regions:
                await scores(keys=[seen_key(region, prefix=index.prefix)], args=[ids],
                             client=pipe)
            replies = await pipe.execute()
        t = now_ms()
        newest: dict[str, int] = {}
        for got in replies:
            for c, score in zip(couriers, got, strict=True):
                if score is not None and (ts := int(float(score))) > newest.get(c, -1):
                    newest[c] = ts
        for c, ts in newest.items():
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


@dataclass
class Step:
    """One measured window at one offered rate."""

    target: float
    """Offered fixes/s."""
    sent: float
    """Fixes/s the generator managed to send."""
    accepted: float
    """Fixes/s the core accepted (its counter)."""
    rejected: float
    p50_ms: float
    p99_ms: float
    """Device send → fix visible in Redis, over the sampled devices."""
    samples: int
    server_p99: str
    """The core's own accept→index histogram, p99 bucket."""
    core_cpu_s: float
    gen_cpu_s: float
    elapsed_s: float
    batch: int

    @property
    def messages(self) -> float:
        return self.accepted / self.batch

    def us_per_message(self, cpu_s: float) -> float:
        return cpu_s / max(1.0, self.accepted * self.elapsed_s / self.batch) * 1e6

    def sustained(self, p99_limit_ms: float) -> bool:
        """p99 within the limit, and what was offered was sent and accepted (5 % slack)."""
        return (self.samples >= 20 and self.p99_ms <= p99_limit_ms
                and self.sent >= 0.95 * self.target and self.accepted >= 0.95 * self.target)


class Rig:
    """Core processes (one unless ``--cores``; the devices split over them round-robin),
    their stores and a connected fleet: `step` measures one offered rate. The same rig
    serves every step of a knee search. Core figures are summed over the processes."""

    def __init__(self, urls: list[str], core_pids: list[int], redis: aioredis.Redis, ns: str,
                 fleet: Fleet, sample: int, sample_every_ms: float) -> None:
        self.urls = urls
        self.core_pids = core_pids
        self.redis = redis
        self.ns = ns
        self.fleet = fleet
        self.sampled = random.Random(2).sample(fleet.couriers, min(sample, len(fleet.couriers)))
        self.sample_every_s = sample_every_ms / 1000

    async def step(self, rate: float, batch: int, warmup_s: float, duration_s: float) -> Step:
        stop = asyncio.Event()
        driver = asyncio.create_task(self.fleet.drive(rate, batch, stop))
        await asyncio.sleep(warmup_s)
        latencies: list[float] = []
        sampler = asyncio.create_task(sample_latency(self.redis, self.ns, self.sampled, stop,
                                                     latencies, self.sample_every_s))
        core0, gen0 = self.core_cpu_s(), cpu_s(os.getpid())
        (a0, r0, h0), s0, t0 = await merged_counters(self.urls), self.fleet.sent, \
            time.perf_counter()
        await asyncio.sleep(duration_s)
        (a1, r1, h1), s1, t1 = await merged_counters(self.urls), self.fleet.sent, \
            time.perf_counter()
        core1, gen1 = self.core_cpu_s(), cpu_s(os.getpid())
        stop.set()
        await asyncio.gather(driver, sampler)
        elapsed = t1 - t0
        return Step(target=rate, sent=(s1 - s0) / elapsed, accepted=(a1 - a0) / elapsed,
                    rejected=(r1 - r0) / elapsed, p50_ms=pct(latencies, 50),
                    p99_ms=pct(latencies, 99), samples=len(latencies),
                    server_p99=bucket_pct(h0, h1, 99), core_cpu_s=core1 - core0,
                    gen_cpu_s=gen1 - gen0, elapsed_s=elapsed, batch=batch)

    def core_cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in self.core_pids)

    async def idle_cpu(self, seconds: float = 5.0) -> float:
        """The core's CPU share (of one core) with the sockets open and nothing sent: its
        fixed cost (timers, keep-alive pings, background loops), apart from the messages."""
        await self.settle()
        c0, t0 = self.core_cpu_s(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (self.core_cpu_s() - c0) / (time.perf_counter() - t0)

    async def settle(self, timeout_s: float = 60.0) -> None:
        """Wait (sending nothing) until every core process has filed what it accepted, so a
        step does not start with the previous one's backlog."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            counts = [await indexed_counts(url) for url in self.urls]
            if sum(i for _, i in counts) >= sum(a for a, _ in counts):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)


async def indexed_counts(url: str) -> tuple[float, float]:
    """(fixes accepted, fixes indexed) so far, from the core's counters."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    accepted = indexed = 0.0
    for line in text.splitlines():
        if line.startswith("gps_fixes_accepted_total "):
            accepted = float(line.split()[1])
        elif line.startswith("gps_fix_to_index_seconds_count "):
            indexed = float(line.split()[1])
    return accepted, indexed


async def find_knee(rig: Rig, *, start: float, batch: int, warmup_s: float,
                    duration_s: float, p99_limit_ms: float, bisect_steps: int,
                    max_rate: float, report: Callable[[Step], None],
                    min_rate: float = 100.0) -> tuple[float, list[Step]]:
    """The highest offered rate sustained (`Step.sustained`): doubling from ``start`` until a
    step fails (halving while the first ones fail, down to ``min_rate``), then
    ``bisect_steps`` bisections between the last pass and the first fail.
    Returns (knee fixes/s, 0 when nothing passed; every step in order)."""
    steps: list[Step] = []

    async def measure(rate: float) -> bool:
        await rig.settle()
        step = await rig.step(rate, batch, warmup_s, duration_s)
        steps.append(step)
        report(step)
        return step.sustained(p99_limit_ms)

    good, bad = 0.0, math.inf
    rate = start
    while rate <= max_rate:
        if not await measure(rate):
            bad = rate
            break
        good = rate
        rate *= 2
    if math.isinf(bad):
        return good, steps
    while not good and bad / 2 >= min_rate:  # even the first step failed: halve
        if await measure(bad / 2):
            good = bad / 2
        else:
            bad /= 2
    if not good:
        return 0.0, steps
    lo = good
    for _ in range(bisect_steps):
        mid = round((lo + bad) / 2, -2)
        if mid <= lo or mid >= bad:
            break
        if await measure(mid):
            good = lo = mid
        else:
            bad = mid
    return good, steps


def print_step_header(batch: int) -> None:
    unit = "fixes/s" if batch > 1 else "msgs/s"
    print(f"{'offered ' + unit:>16}{'sent':>9}{'accepted':>10}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'server p99':>12}{'core %':>8}{'core µs/msg':>13}{'above idle':>12}"
          f"{'gen µs/msg':>12}  sustained",
          flush=True)


def step_row(step: Step, p99_limit_ms: float, idle_share: float) -> str:
    b = step.batch
    above_idle = step.core_cpu_s - idle_share * step.elapsed_s
    return (f"{step.target / b:16,.0f}{step.sent / b:9,.0f}{step.accepted / b:10,.0f}"
            f"{step.p50_ms:8.1f}{step.p99_ms:8.1f}{step.server_p99:>12}"
            f"{step.core_cpu_s / step.elapsed_s * 100:8.0f}"
            f"{step.us_per_message(step.core_cpu_s):13.1f}"
            f"{step.us_per_message(above_idle):12.1f}"
            f"{step.us_per_message(step.gen_cpu_s):12.1f}  "
            f"{'yes' if step.sustained(p99_limit_ms) else 'no'}")


@contextlib.asynccontextmanager
async def rig(args: argparse.Namespace) -> AsyncIterator[Rig]:
    """Stores, a migrated database, ``--cores`` core processes and a connected fleet."""
    ns = f"bench{uuid.uuid4().hex[:6]}"
    async with bench_stores() as urls:
        await migrate(urls["postgres"])
        cores = [await start_core(urls, ns, args.roads, match=not args.no_match)
                 for _ in range(args.cores)]
        core_urls = [url for _, url in cores]
        lat0, lng0, spread = 12.97, 77.59, 0.1
        if args.roads is not None:
            from roads.manifest import read_manifest

            lo_lng, lo_lat, hi_lng, hi_lat = read_manifest(args.roads).bbox
            lat0, lng0, spread = (lo_lat + hi_lat) / 2, (lo_lng + hi_lng) / 2, 0.01
        redis = aioredis.from_url(urls["redis"])
        nc = await nats.connect(urls["nats"].split(","))
        codec = TokenCodec(SECRET, ttl_s=3600)
        couriers = [f"dev{i:05d}" for i in range(args.devices)]
        fleet = Fleet(couriers, lat0, lng0, spread, args.seed)
        try:
            await fleet.connect([url.replace("http://", "ws://") for url in core_urls],
                                [codec.issue(c, "delivery") for c in couriers])
            yield Rig(core_urls, [proc.pid for proc, _ in cores], redis, ns, fleet,
                      args.sample, args.sample_every_ms)
        finally:
            fleet.close()
            for proc, _ in cores:
                proc.terminate()
                await proc.wait()
            keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=5000)]
            for i in range(0, len(keys), 5000):
                await redis.delete(*keys[i:i + 5000])
            await redis.aclose()
            with contextlib.suppress(nats.errors.Error):  # the run's streams and their fixes
                await delete_streams(nc.jetstream(), f"{ns.upper()}_")
            await nc.close()


async def run(args: argparse.Namespace) -> None:
    async with rig(args) as r:
        if args.knee:
            print(f"ingest knee: {args.devices} devices, {args.batch} fix(es) per message, "
                  f"{args.cores} core process(es), "
                  f"steps of {args.duration:.0f} s after {args.warmup:.0f} s warm-up, "
                  f"sustained = p99 send→indexed <= {args.p99_ms:.0f} ms and >= 95 % of the "
                  f"offered rate sent and accepted", flush=True)
            idle = await r.idle_cpu()
            print(f"core idle with {args.devices} sockets open: {idle * 100:.1f}% of a core "
                  "('above idle': CPU per message less that share)", flush=True)
            knees: list[float] = []
            steps = []
            for n in range(args.searches):
                if args.searches > 1:
                    print(f"search {n + 1} of {args.searches}", flush=True)
                print_step_header(args.batch)
                found, searched = await find_knee(
                    r, start=args.rate, batch=args.batch, warmup_s=args.warmup,
                    duration_s=args.duration, p99_limit_ms=args.p99_ms,
                    bisect_steps=args.bisect, max_rate=args.max_rate,
                    report=lambda s: print(step_row(s, args.p99_ms, idle), flush=True))
                knees.append(found)
                steps += searched
            # The lower median: with an even count, the search that did worse of the two.
            knee = statistics.median_low(knees)
        else:
            await asyncio.sleep(args.warmup)
            steps = [await r.step(args.rate, args.batch, 0.0, args.duration)]
            knee = 0.0
        n_base = max(50_000, int(max(s.accepted * s.elapsed_s for s in steps)))
        base_rate, base_lat = await geoadd_baseline(r.redis, f"{r.ns}:geoadd", n_base)
        server_rss = sum(rss_mb(pid) for pid in r.core_pids)

    b = args.batch
    if args.knee:
        passed = [s for s in steps if s.sustained(args.p99_ms) and s.target == knee]
        at = passed[-1] if passed else None
        unit = "fixes/s" if b > 1 else "one-fix messages/s"
        if len(knees) > 1:
            print(f"knees of {len(knees)} searches: "
                  + ", ".join(f"{k / b:,.0f}" for k in knees)
                  + f" {unit}; lowest {min(knees) / b:,.0f}")
        print(f"knee{' (median)' if len(knees) > 1 else ''}: {knee / b:,.0f} {unit} "
              f"({knee:,.0f} fixes/s)"
              + (f", p99 {at.p99_ms:.0f} ms, core {at.us_per_message(at.core_cpu_s):.1f} "
                 f"µs per message" if at else ""))
        print(f"baseline: pipelined GEOADD {base_rate:,.0f} fixes/s "
              f"(p50 {pct(base_lat, 50):.1f} ms per 1000-fix pipeline); "
              f"knee/GEOADD {knee / base_rate:.2f}")
        med = statistics.median(s.us_per_message(s.core_cpu_s) for s in steps)
        marginal = statistics.median(s.us_per_message(s.core_cpu_s - idle * s.elapsed_s)
                                     for s in steps)
        print(f"core CPU per message, median over the steps: {med:.1f} µs, {marginal:.1f} µs "
              f"above idle" + (f" (1e6 / that = {1e6 / marginal:,.0f} messages/s on one whole "
                               "core)" if marginal > 0 else ""))
    else:
        s = steps[0]
        print(f"ingest: {args.devices} devices, target {args.rate:,.0f} fixes/s, batch {b}, "
              f"{args.duration:.0f} s measured after {args.warmup:.0f} s warm-up")
        print(f"{'':34}{'fixes/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        print(f"{'ours: WS → NATS → indexer → Redis':34}{s.accepted:10,.0f}"
              f"{s.p50_ms:9.1f}{s.p99_ms:9.1f}")
        print(f"{'baseline: pipelined GEOADD':34}{base_rate:10,.0f}"
              f"{pct(base_lat, 50):9.1f}{pct(base_lat, 99):9.1f}   (per 1000-fix pipeline)")
        print(f"ratio ours/GEOADD throughput: {s.accepted / base_rate:.2f}; sent by devices "
              f"{s.sent:,.0f}/s (rejected {s.rejected:,.0f}/s); latency samples {s.samples}")
        print(f"server-side accept→index (histogram bucket): p99 {s.server_p99} ms")
        # CPU per fix does not depend on how much of the shared machine we were given: it
        # is the figure to compare between runs; 1e6 / (core µs per fix) bounds one process.
        fixes = max(1.0, s.accepted * s.elapsed_s)
        print(f"core: {s.core_cpu_s / s.elapsed_s * 100:.0f}% of a core, "
              f"{s.core_cpu_s / fixes * 1e6:.1f} µs/fix; load generator + sampler "
              f"{s.gen_cpu_s / fixes * 1e6:.1f} µs/fix")
    print(f"core process RSS at the end (summed): {server_rss:.0f} MiB; device ERROR messages "
          f"{r.fleet.errors}"
          + (f" ({', '.join(f'{k} {v:,}' for k, v in r.fleet.error_reasons.most_common())})"
             if r.fleet.errors else "")
          + f"; machine load average {os.getloadavg()[0]:.1f} (2 cores)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--rate", type=float, default=4000,
                   help="total fixes per second (with --knee: the first step)")
    p.add_argument("--batch", type=int, default=1, help="fixes per device message")
    p.add_argument("--cores", type=int, default=1,
                   help="core processes on the same stores, devices split round-robin "
                        "(core CPU and counters summed)")
    p.add_argument("--duration", type=float, default=20, help="measured seconds (per step)")
    p.add_argument("--warmup", type=float, default=5, help="seconds before measuring (per step)")
    p.add_argument("--knee", action="store_true",
                   help="search the highest sustained rate: double from --rate, then bisect")
    p.add_argument("--p99-ms", type=float, default=250.0,
                   help="--knee: the send→indexed p99 a sustained step stays within")
    p.add_argument("--bisect", type=int, default=3, help="--knee: bisection steps")
    p.add_argument("--searches", type=int, default=1,
                   help="--knee: searches one after the other on the same system; prints "
                        "each knee and their median (how reliably a rate is held)")
    p.add_argument("--max-rate", type=float, default=1_000_000,
                   help="--knee: stop doubling above this")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", type=int, default=100,
                   help="devices whose latency is sampled (all of them every round)")
    p.add_argument("--sample-every-ms", type=float, default=10,
                   help="sampling round interval: the latency resolution")
    p.add_argument("--roads", type=Path, default=None,
                   help="road data for core (ROADS); devices in its middle")
    p.add_argument("--no-match", action="store_true",
                   help="with --roads: the fleet matcher off (ROADS_MATCH=false)")
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
