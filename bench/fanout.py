"""Live fan-out through the real path: courier device sockets → NATS → hubs → client sockets.

    python -m bench.fanout --subscribers 5000 --couriers 5500 --fix-interval-s 1.1

Starts a real core server (uvicorn, its own process, its own namespace and database) on the
stores in DATABASE_URL / REDIS_URL / NATS_URL (embedded ones otherwise). Publishes one paid,
picked-up order per customer subscriber, each assigned to a courier (round robin), opens the
subscriber sockets (``/ws/orders/{id}``, plus ``--consoles`` consoles each watching one res-7
cell), then opens one device socket per courier (``/ws/courier``) and sends one fix per
courier every ``--fix-interval-s`` (R = couriers / interval fixes/s), each stamped with the
send time. Every DELIVERY_LOCATION / COURIER_POSITION received carries its fix's ``ts``:
latency is receive time minus send time (same clock, same process).

Prints the rate of fixes sent and of messages delivered, latency p50/p99/max, the server's
RSS per subscriber connection, and the same figures for a baseline run (1 courier, 1
subscriber) measured first in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import h3
import httpx
import nats
import redis.asyncio as aioredis
import websockets
from nats.js import JetStreamContext

from api.auth import TokenCodec
from api.migrate import migrate
from api.runtime import free_port
from bench._stores import bench_stores
from streams.catalog import Names
from streams.events import CourierAssigned, LatLng, OrderCreated, OrderStatusChanged, encode
from streams.jetstream import ensure_streams

LAT0, LNG0 = 12.9716, 77.5946
SECRET = "bench-secret-" + "x" * 40


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def city_point(rng: random.Random, radius_m: float) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return (LAT0 + r * math.cos(a) / 111_195.0,
            LNG0 + r * math.sin(a) / (111_195.0 * math.cos(math.radians(LAT0))))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Stats:
    measuring: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    received: int = 0
    sent: int = 0
    closed: int = 0
    errors: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)

    def closed_with(self, exc: websockets.ConnectionClosed) -> None:
        if self.measuring:
            self.closed += 1
            code = str(exc.rcvd.code if exc.rcvd else None)
            self.close_codes[code] = self.close_codes.get(code, 0) + 1


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    names: Names
    codec: TokenCodec


@contextlib.asynccontextmanager
async def core_server(urls: dict[str, str], ns: str, profile: str = "") -> Any:
    """A core process on its own database and namespace; stopped and dropped on exit."""
    db_name = f"bench_fanout_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(urls["postgres"])
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    db_url = urls["postgres"].rsplit("/", 1)[0] + f"/{db_name}"
    await migrate(db_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": urls["redis"],
           "NATS_URL": urls["nats"], "JWT_SECRET": SECRET, "HOMECHEF_NAMESPACE": ns,
           "CORE_PORT": str(port), "LOG_LEVEL": "WARNING", "WS_QUEUE_SIZE": "1024"}
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    proc = subprocess.Popen(  # noqa: ASYNC220  (started once, before any load)
        [sys.executable, *prefix, "-m", "uvicorn", "--factory", "api.app:create_core_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level",
         "warning", "--ws-ping-interval", "0", "--backlog", "8192"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("core did not start")
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the hub's consumers start
        yield Server(url, proc, Names(ns), TokenCodec(SECRET))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        admin = await asyncpg.connect(urls["postgres"])
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
        redis = aioredis.from_url(urls["redis"])
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=5000)]
        for i in range(0, len(keys), 5000):
            await redis.delete(*keys[i:i + 5000])
        await redis.aclose()
        nc = await nats.connect(urls["nats"])
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"{ns.upper()}_"):
                await js.delete_stream(info.config.name)
        await nc.close()


async def publish_orders(js: JetStreamContext, names: Names, n: int, couriers: list[str],
                         rng: random.Random, radius_m: float) -> list[str]:
    """n paid, picked-up orders, order i carried by courier i % len(couriers)."""
    order_ids: list[str] = []
    futures = []
    t = now_ms()
    for i in range(n):
        oid = str(uuid.uuid4())
        order_ids.append(oid)
        pick, drop = city_point(rng, radius_m), city_point(rng, radius_m)
        common: dict[str, Any] = {
            "order_id": oid, "order_number": f"HC{i:06d}", "customer_id": f"cust-{i}",
            "chef_id": f"chef-{i % 500}", "pickup": LatLng(*pick), "dropoff": LatLng(*drop)}
        futures.append(await js.publish_async(names.order_event("created", oid), encode(
            OrderCreated(**common, total_cents=2000, created_at_ms=t))))
        futures.append(await js.publish_async(names.order_event("status", oid), encode(
            OrderStatusChanged(**common, status="picked_up", previous_status="ready",
                               at_ms=t))))
        futures.append(await js.publish_async(names.dispatch_event("assigned", oid), encode(
            CourierAssigned(order_id=oid, courier_id=couriers[i % len(couriers)],
                            offer_id=f"f{i}", at_ms=t))))
        if len(futures) > 3000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    return order_ids


async def wait_projected(redis_url: str, ns: str, order_ids: list[str]) -> None:
    redis = aioredis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 120
        for oid in (order_ids[0], order_ids[-1]):
            while not await redis.hget(f"{ns}:view:order:{oid}", "courier_id"):
                if time.monotonic() > deadline:
                    raise RuntimeError("orders were not projected in time")
                await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


async def subscriber(url: str, stats: Stats, ready: asyncio.Event, first: str | None) -> None:
    try:
        async with websockets.connect(url, max_queue=None, open_timeout=60,
                                      ping_interval=None) as ws:
            if first is not None:
                await ws.send(first)
            ready.set()
            async for raw in ws:
                if isinstance(raw, str) and raw.startswith('{"type":"PING"'):
                    await ws.send('{"type":"PONG"}')
                    continue
                if not stats.measuring:
                    continue
                msg = json.loads(raw)
                if msg["type"] in ("DELIVERY_LOCATION", "COURIER_POSITION"):
                    stats.received += 1
                    stats.latencies_ms.append(time.time() * 1000 - msg["payload"]["ts"])
    except websockets.ConnectionClosed as exc:
        stats.closed_with(exc)
    except (OSError, TimeoutError):
        stats.errors += 1


async def courier(url: str, stats: Stats, interval_s: float, rng: random.Random,
                  stop: asyncio.Event, ready: asyncio.Event) -> None:
    lat, lng = city_point(rng, 8_000)
    heading = rng.uniform(0, 2 * math.pi)
    try:
        async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
            ready.set()

            async def drain() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for _ in ws:  # rejections or offers; not measured
                        pass

            reader = asyncio.create_task(drain())
            await asyncio.sleep(rng.uniform(0, interval_s))
            while not stop.is_set():
                step_m = 6.0 * interval_s  # ~22 km/h
                lat += step_m * math.cos(heading) / 111_195.0
                lng += step_m * math.sin(heading) / 111_195.0
                await ws.send(json.dumps({"type": "LOCATION", "payload": {
                    "lat": lat, "lng": lng, "ts": now_ms()}}))
                if stats.measuring:
                    stats.sent += 1
                await asyncio.sleep(interval_s)
            reader.cancel()
    except websockets.ConnectionClosed as exc:
        stats.closed_with(exc)
    except (OSError, TimeoutError):
        stats.errors += 1


async def connect_all(factories: list[Any], concurrency: int) -> list[asyncio.Task[None]]:
    """Start every connection, at most ``concurrency`` handshakes in flight."""
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(concurrency)
    for make in factories:
        await gate.acquire()
        ready = asyncio.Event()
        task = asyncio.create_task(make(ready))
        tasks.append(task)

        def release(_: object, ready: asyncio.Event = ready) -> None:
            gate.release()

        waiter = asyncio.create_task(ready.wait())
        waiter.add_done_callback(release)
        def cancel_waiter(_: object, w: asyncio.Task[bool] = waiter) -> None:
            w.cancel()

        task.add_done_callback(cancel_waiter)
    for _ in range(concurrency):
        await gate.acquire()
    return tasks


async def scenario(srv: Server, urls: dict[str, str], *, customers: int, consoles: int,
                   couriers: int, interval_s: float, warmup_s: float, measure_s: float,
                   seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    courier_ids = [f"bc{seed}-{i}" for i in range(couriers)]
    nc = await nats.connect(urls["nats"])
    js = nc.jetstream()
    await ensure_streams(js, srv.names)
    order_ids = await publish_orders(js, srv.names, customers, courier_ids, rng, 8_000)
    await nc.close()
    if order_ids:
        await wait_projected(urls["redis"], srv.names.ns, order_ids)
    progress(f"{customers} orders published and projected")
    stats = Stats()
    stop = asyncio.Event()
    ws_url = srv.url.replace("http://", "ws://")
    rss0 = rss_kib(srv.proc.pid)

    def order_sub(i: int, oid: str) -> Any:
        url = f"{ws_url}/ws/orders/{oid}?token={srv.codec.issue(f'cust-{i}', 'customer')}"
        return lambda ready: subscriber(url, stats, ready, None)

    def console_sub() -> Any:
        lat, lng = city_point(rng, 6_000)
        cell = h3.latlng_to_cell(lat, lng, 7)
        url = f"{ws_url}/ws/console?token={srv.codec.issue('fm-bench', 'fleet_manager')}"
        first = json.dumps({"type": "SUBSCRIBE", "payload": {"cells": [cell]}})
        return lambda ready: subscriber(url, stats, ready, first)

    subs = [order_sub(i, oid) for i, oid in enumerate(order_ids)]
    subs += [console_sub() for _ in range(consoles)]
    sub_tasks = await connect_all(subs, 100)
    progress(f"{len(subs)} subscribers connected")
    await asyncio.sleep(1.0)
    rss1 = rss_kib(srv.proc.pid)
    def courier_conn(cid: str) -> Any:
        url = f"{ws_url}/ws/courier?token={srv.codec.issue(cid, 'delivery')}"
        return lambda ready: courier(url, stats, interval_s, random.Random(f"{seed}-{cid}"),
                                     stop, ready)

    couriers_f = [courier_conn(cid) for cid in courier_ids]
    courier_tasks = await connect_all(couriers_f, 100)
    progress(f"{len(couriers_f)} couriers connected")
    await asyncio.sleep(warmup_s)
    stats.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(measure_s)
    stats.measuring = False
    elapsed = time.perf_counter() - started
    progress("measured")
    stop.set()
    for t in sub_tasks + courier_tasks:
        t.cancel()
    await asyncio.gather(*sub_tasks, *courier_tasks, return_exceptions=True)
    n_subs = max(1, customers + consoles)
    return {
        "fixes_per_s": stats.sent / elapsed,
        "delivered_per_s": stats.received / elapsed,
        "p50_ms": pct(stats.latencies_ms, 50),
        "p99_ms": pct(stats.latencies_ms, 99),
        "max_ms": max(stats.latencies_ms, default=math.nan),
        "rss_per_sub_kib": (rss1 - rss0) / n_subs,
        "closed": stats.closed,
        "errors": stats.errors,
        "close_codes": stats.close_codes,  # type: ignore[dict-item]
    }


def progress(what: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def show(name: str, r: dict[str, float]) -> None:
    print(f"{name:<10} fixes/s {r['fixes_per_s']:8.0f}  delivered/s {r['delivered_per_s']:8.0f}"
          f"  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms"
          f"  server RSS/sub {r['rss_per_sub_kib']:6.1f} KiB  closed {r['closed']:.0f}"
          f" {r['close_codes'] or ''}  errors {r['errors']:.0f}")


async def run(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    async with bench_stores() as urls:
        ns = f"bf{secrets.token_hex(3)}"
        async with core_server(urls, ns, args.profile) as srv:
            print(f"core on {srv.url} (pid {srv.proc.pid}), namespace {ns}; "
                  f"{os.cpu_count()} CPUs shared by server, stores and clients")
            base = await scenario(srv, urls, customers=1, consoles=0, couriers=1,
                                  interval_s=args.fix_interval_s, warmup_s=2,
                                  measure_s=min(10.0, args.measure_s), seed=args.seed + 1)
            show("baseline", base)
            main = await scenario(srv, urls, customers=args.subscribers, consoles=args.consoles,
                                  couriers=args.couriers, interval_s=args.fix_interval_s,
                                  warmup_s=args.warmup_s, measure_s=args.measure_s,
                                  seed=args.seed)
            show("fanout", main)
            print(f"  subscribers {args.subscribers} customers + {args.consoles} consoles, "
                  f"couriers {args.couriers} @ {args.fix_interval_s} s "
                  f"(target R = {args.couriers / args.fix_interval_s:.0f} fixes/s)")
            print(f"  p50 latency over baseline: {main['p50_ms'] / max(base['p50_ms'], 1e-3):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000,
                        help="customer order sockets (one order each)")
    parser.add_argument("--consoles", type=int, default=0,
                        help="console sockets, each watching one res-7 cell")
    parser.add_argument("--couriers", type=int, default=1100)
    parser.add_argument("--fix-interval-s", type=float, default=1.1,
                        help="seconds between one courier's fixes (>1 s: no throttle delay)")
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--measure-s", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", default="",
                        help="write the server's cProfile stats to this file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
