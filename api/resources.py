"""Per-process connections (one asyncpg pool, one Redis client, one NATS connection).

Created in the app's lifespan, kept on ``app.state.resources``, injected into handlers;
nothing here connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import msgspec
import nats
import nats.errors
import redis.asyncio as aioredis
from litestar.di import NamedDependency
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from api.auth import TokenCodec
from api.problems import PostgresUnreachable
from api.settings import Settings
from api.travel import TravelInfo

log = logging.getLogger("homechef.resources")


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: asyncpg.Pool
    redis: aioredis.Redis
    nats: NATS
    js: JetStreamContext
    tokens: TokenCodec


class DependencyHealth(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "up" | "down"
    latency_ms: float
    error: str | None = None


class Health(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: str  # "ok" | "degraded"
    service: str
    dependencies: dict[str, DependencyHealth]
    travel: TravelInfo | None = None
    """Core: which travel model is live (roads or straight-line)."""


def _require(url: str | None, name: str) -> str:
    if not url:
        raise RuntimeError(f"{name} is not set (homechef up starts embedded stores for you)")
    return url


async def _connect_postgres(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """The pool's connect: a socket-level failure becomes `PostgresUnreachable`, so a
    request that needed a new connection while PostgreSQL is down answers 503 naming it."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise PostgresUnreachable(f"cannot connect to PostgreSQL: {exc!r}") from exc


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Connect to the three stores; close whatever was opened, in reverse, on exit."""
    timeout_s = settings.stores.timeout_s
    tokens = TokenCodec(_require(settings.server.jwt_secret, "JWT_SECRET"))
    async with contextlib.AsyncExitStack() as stack:
        db = await asyncpg.create_pool(
            _require(settings.stores.database_url, "DATABASE_URL"),
            min_size=settings.stores.db_pool_min, max_size=settings.stores.db_pool_max,
            timeout=timeout_s, command_timeout=30, connect=_connect_postgres,
        )
        stack.push_async_callback(db.close)
        redis = connect_redis(settings)
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        events = NatsEvents()
        _require(settings.stores.nats_url, "NATS_URL")
        nc = await nats.connect(
            servers=settings.stores.nats_servers,
            connect_timeout=timeout_s, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            name=f"homechef-{settings.server.namespace}",
            error_cb=events.error, disconnected_cb=events.disconnected,
            reconnected_cb=events.reconnected,
        )
        stack.push_async_callback(_drain_quietly, nc)
        yield Resources(settings=settings, db=db, redis=redis, nats=nc, js=nc.jetstream(),
                        tokens=tokens)


_GATE_HELD: contextvars.ContextVar[bool] = contextvars.ContextVar("redis_gate_held",
                                                                  default=False)


class WaitingRedisCluster(RedisCluster):
    """A `RedisCluster` whose callers wait for a connection instead of failing.

    redis-py's cluster client keeps at most ``max_connections`` per node and raises
    `MaxConnectionsError` at once when a node's are all busy (seen under ingest load: fixes
    refused as "live index unavailable", the dispatcher crashing). At most that many
    commands and pipelines are in flight per process here, so no node's pool runs dry and a
    burst queues, as the plain client's `BlockingConnectionPool` makes it. A pipeline that
    resends a redirected command through the client already holds its place: it does not
    wait for a second one (which could deadlock a full gate)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(int(kwargs.get("max_connections") or 2**31))

    async def _gated(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if _GATE_HELD.get():
            return await call()
        async with self._gate:
            held = _GATE_HELD.set(True)
            try:
                return await call()
            finally:
                _GATE_HELD.reset(held)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        run = super().execute_command
        return await self._gated(lambda: run(*args, **kwargs))

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def gated(raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
            return await self._gated(lambda: execute(raise_on_error, allow_redirections))

        pipe.execute = gated  # type: ignore[method-assign]
        return pipe


def connect_redis(settings: Settings) -> aioredis.Redis:
    """The process's Redis client (not connected yet): a cluster client when
    ``REDIS_CLUSTER`` is set, else a plain one; both fail fast when Redis is down (callers,
    supervised workers, back off themselves)."""
    stores = settings.stores
    url = _require(stores.redis_url, "REDIS_URL")
    timeout_s = stores.timeout_s
    if stores.redis_cluster:
        # Discovers every node from this one and follows MOVED/ASK and failovers. The
        # adapters use only commands, pipelines and scripts whose keys share a hash slot,
        # which both clients serve alike: one type for them (a single Redis is a cluster of
        # one shard).
        cluster = WaitingRedisCluster.from_url(
            url, max_connections=stores.redis_pool_max, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        return cast(aioredis.Redis, cluster)
    # A blocking pool: a burst (hundreds of sockets connecting at once) waits for a free
    # connection instead of failing with "Too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=stores.redis_pool_max, timeout=timeout_s,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


class NatsEvents:
    """The NATS client's callbacks, logged without a storm.

    While NATS is down the client retries every 0.5 s and reports each failed attempt; its
    default callback logs every one with a traceback. Here a connection error is one warning
    line when it first appears (or changes), repeats are not logged, and the reconnect is one
    line with how many attempts failed. Any other error (a subscription callback's bug, a
    slow consumer) keeps its traceback.
    """

    __slots__ = ("_last", "_repeats")

    def __init__(self) -> None:
        self._last: str | None = None
        self._repeats = 0

    async def error(self, exc: Exception) -> None:
        if not isinstance(exc, _NATS_CONNECTION_ERRORS):
            log.error("nats: %r", exc, exc_info=exc)
            return
        described = f"{type(exc).__name__}: {exc}"[:200]
        if described == self._last:
            self._repeats += 1
            return
        self._last, self._repeats = described, 1
        log.warning("nats: cannot reach the server (%s); reconnecting every 0.5 s", described)

    async def disconnected(self) -> None:
        log.warning("nats: disconnected")

    async def reconnected(self) -> None:
        log.warning("nats: reconnected after %d failed attempts", self._repeats)
        self._last, self._repeats = None, 0


_NATS_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError, TimeoutError, nats.errors.NoServersError, nats.errors.StaleConnectionError,
    nats.errors.ConnectionClosedError, nats.errors.UnexpectedEOF,
)


async def _drain_quietly(nc: NATS) -> None:
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.drain(), 5)
    except Exception:  # closing anyway; a dead server must not break shutdown
        with contextlib.suppress(Exception):
            await nc.close()


async def _timed(check: Callable[[], Awaitable[object]], timeout_s: float) -> DependencyHealth:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout_s)
    except Exception as exc:
        return DependencyHealth(
            status="down",
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            error=f"{type(exc).__name__}: {exc}"[:200],
        )
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return DependencyHealth(status="up", latency_ms=elapsed_ms)


async def check_health(res: Resources, service: str, timeout_s: float = 2.0) -> Health:
    """Probe every dependency concurrently; overall "ok" only when all are up."""

    async def pg() -> None:
        async with res.db.acquire(timeout=timeout_s) as conn:
            await conn.fetchval("SELECT 1")

    async def rd() -> None:
        await res.redis.ping()

    async def nt() -> None:
        if not res.nats.is_connected:
            raise ConnectionError("not connected")
        await res.nats.flush(timeout=max(1, int(timeout_s)))
        await res.js.account_info()

    results = await asyncio.gather(*(_timed(c, timeout_s) for c in (pg, rd, nt)))
    deps = dict(zip(("postgres", "redis", "nats"), results, strict=True))
    ok = all(d.status == "up" for d in deps.values())
    return Health(status="ok" if ok else "degraded", service=service, dependencies=deps)


ResourcesDep = NamedDependency[Resources]
