"""Benchmark order creation (POST /api/v1/orders) on the commerce app with real stores.

Seeds one approved, online chef with a small menu and N customers with addresses, then fires
order-create requests (two lines each, a fresh Idempotency-Key each) with a fixed number in
flight, and prints throughput and p50/p99 latency beside a baseline: GET /api/v1/chefs/{id},
a single-row read through the same app, auth and pool, at the same concurrency.

The app runs in-process (ASGI, no sockets), so the figures are the service's own cost:
validation, pricing, the order transaction (advisory lock on the key, row locks, inserts).

    DATABASE_URL=... REDIS_URL=... NATS_URL=... python -m bench.orders
    python -m bench.orders --orders 2000 --concurrency 32 --customers 64

A throw-away database is created on the DATABASE_URL server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from api.app import build_app
from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.accounts.services import create_admin
from api.commerce.context import CommerceConfig
from api.commerce.parts import commerce_parts
from api.migrate import migrate
from api.settings import ServerSettings, Settings, StoreSettings
from streams.jetstream import delete_streams

V1 = "/api/v1"
ALL_DAY = {d: {"open": "00:00", "close": "24:00"} for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
FAST = CommerceConfig(argon2=Argon2Params(time_cost=1, memory_kib=8192, parallelism=1))


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan protocol in this event loop (start-up, then shut-down)."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                   inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def _db_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(n: int, concurrency: int,
                 call: Callable[[int], Awaitable[int]]) -> tuple[float, list[float], int]:
    """Run ``call(i)`` for i < n with ``concurrency`` in flight; (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            status = await call(i)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, errors


def _line(name: str, n: int, seconds: float, lat: list[float], errors: int) -> str:
    return (f"{name:<22} {n:>6} req  {n / seconds:>8.1f} req/s  p50 {_pct(lat, .5):>7.2f} ms"
            f"  p99 {_pct(lat, .99):>7.2f} ms  errors {errors}")


async def run(args: argparse.Namespace) -> None:
    server = os.environ.get("DATABASE_URL")
    redis_url, nats_url = os.environ.get("REDIS_URL"), os.environ.get("NATS_URL")
    if not (server and redis_url and nats_url):
        sys.exit("set DATABASE_URL, REDIS_URL and NATS_URL (e.g. from `homechef up`)")
    name = f"bench_orders_{secrets.token_hex(4)}"
    namespace = "b" + secrets.token_hex(4)
    admin_conn = await asyncpg.connect(server)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(server, name)
    try:
        await migrate(url)
        settings = Settings(
            stores=StoreSettings(
                database_url=url,
                redis_url=redis_url,
                nats_url=nats_url,
                db_pool_max=args.pool,
            ),
            server=ServerSettings(jwt_secret="bench-" + secrets.token_hex(24), namespace=namespace),
        )
        app = build_app("commerce", "bench", settings,
                        functools.partial(commerce_parts, config=FAST))
        # httpx's ASGI transport keeps requests concurrent in this loop (Litestar's test
        # client serialises them and runs the lifespan in another loop).
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with _lifespan(app), httpx.AsyncClient(transport=transport,
                                                     base_url="http://commerce") as client:
            await _bench(client, settings, args)
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
        await _drop_namespace(namespace, redis_url, nats_url)


async def _drop_namespace(namespace: str, redis_url: str, nats_url: str) -> None:
    """Delete the run's JetStream streams and Redis keys."""
    import nats
    import redis.asyncio as aioredis

    nc = await nats.connect(nats_url)
    try:
        await delete_streams(nc.jetstream(), f"{namespace.upper()}_")
    finally:
        await nc.close()
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _bench(client: httpx.AsyncClient, settings: Settings,
                 args: argparse.Namespace) -> None:
    assert settings.stores.database_url
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=1)
    await create_admin(pool, "bench-admin@example.com", "bench-admin-1", Passwords(FAST.argon2))
    await pool.close()

    async def login(email: str, password: str) -> dict[str, str]:
        r = await client.post(f"{V1}/auth/login", json={"email": email, "password": password})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def register(role: str) -> dict[str, str]:
        r = await client.post(f"{V1}/auth/register", json={
            "email": f"{role}-{uuid.uuid4().hex}@example.com", "password": "bench-pass-1",
            "role": role})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    admin = await login("bench-admin@example.com", "bench-admin-1")
    chef = await register("chef")
    r = await client.put(f"{V1}/chef/profile", headers=chef, json={
        "business_name": "Bench Kitchen", "cuisines": ["Test"], "latitude": 12.9716,
        "longitude": 77.5946, "service_radius": 15, "delivery_fee_cents": 299,
        "minimum_order_cents": 500, "prep_time_minutes": 25, "operating_hours": ALL_DAY})
    chef_id = r.json()["id"]
    await client.put(f"{V1}/admin/chefs/{chef_id}/verify", json={"status": "approved"},
                     headers=admin)
    await client.put(f"{V1}/chef/availability", headers=chef,
                     json={"is_online": True, "accepting_orders": True})
    items = []
    for i in range(8):
        r = await client.post(f"{V1}/chef/menu", headers=chef, json={
            "name": f"Dish {i}", "price_cents": 800 + 75 * i, "prep_time": 10})
        items.append(r.json()["id"])
    customers: list[tuple[dict[str, str], str]] = []
    for i in range(args.customers):
        headers = await register("customer")
        r = await client.post(f"{V1}/users/me/addresses", headers=headers, json={
            "line1": f"{i} Bench Road", "city": "Bengaluru", "state": "KA",
            "postal_code": "560001", "latitude": 12.9716 + (i % 50) * 0.001,
            "longitude": 77.5946 + (i % 7) * 0.002})
        customers.append((headers, r.json()["id"]))

    async def create(i: int) -> int:
        headers, address = customers[i % len(customers)]
        r = await client.post(f"{V1}/orders", headers={
            **headers, "Idempotency-Key": uuid.uuid4().hex}, json={
            "chef_id": chef_id, "delivery_address_id": address, "tip_cents": 100,
            "items": [{"menu_item_id": items[i % 8], "quantity": 1 + i % 3},
                      {"menu_item_id": items[(i + 3) % 8], "quantity": 1}]})
        return int(r.status_code)

    async def read(i: int) -> int:
        r = await client.get(f"{V1}/chefs/{chef_id}")
        return int(r.status_code)

    await _drive(min(100, args.orders), args.concurrency, create)  # warm-up
    base = await _drive(args.orders, args.concurrency, read)
    orders = await _drive(args.orders, args.concurrency, create)
    print(f"commerce order create: {args.orders} requests, {args.concurrency} in flight, "
          f"{args.customers} customers, pool {args.pool}")
    print(_line("baseline GET chef", args.orders, *base))
    print(_line("POST /orders", args.orders, *orders))
    print(f"POST /orders latency mean {statistics.mean(orders[1]):.2f} ms "
          f"(sd {statistics.pstdev(orders[1]):.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=64)
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL pool size")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
