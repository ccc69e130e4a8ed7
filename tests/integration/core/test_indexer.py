"""The indexer files what its process stored (real Redis, real NATS JetStream): fixes stored
while Redis does not answer reach the index once it does; a backlog is filed in bounded
calls; an empty index is rebuilt from the stream by one process, and by another when the
first dies mid-replay."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from api.core.gps.indexer import OLD_DURABLE, Indexer
from api.core.gps.ingest import IngestMetrics
from api.observability import Metrics
from api.stores.live_index import LiveIndex, Located
from geo.cells import region_of
from streams.catalog import LOCATIONS, Names
from streams.events import (
    CourierLocated,
    CourierLocatedBatch,
    CourierLocatedMany,
    LocFix,
    LocRun,
    encode,
)
from streams.jetstream import ensure_streams
from tests.integration.core.conftest import eventually
from tests.servers import KillableServer

LAT, LNG = 12.9716, 77.5946


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run_of(courier: str, i: int, ts: int) -> LocRun:
    return LocRun(courier, now_ms(), (LocFix(LAT + i * 1e-4, LNG, ts),))


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


@pytest.fixture
async def streams(nc: Client, js_names: Names) -> Names:
    await ensure_streams(nc.jetstream(), js_names)
    return js_names


async def test_fixes_stored_while_redis_is_paused_reach_the_index_once_it_resumes(
    nc: Client, streams: Names, own_redis: KillableServer
) -> None:
    """A write that times out keeps its fixes waiting (a newer fix of a courier replaces its
    older one) and is retried: once Redis answers, every courier is at its newest fix."""
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=0.5)
    try:
        index = LiveIndex(client, f"{streams.ns}:geo")
        await client.set(index.epoch_key, "populated")
        metrics = Metrics("test")
        indexer = Indexer(nc.jetstream(), streams, index, IngestMetrics(metrics),
                          retry_max_s=0.2)
        couriers = [f"paused-{i}" for i in range(20)]
        async with running(indexer.run()):
            own_redis.pause()
            try:
                t = now_ms()
                indexer.offer(run_of(c, i, t) for i, c in enumerate(couriers))
                indexer.offer([run_of(couriers[0], 50, t + 1000)])  # newer, while waiting
                async def failed() -> bool:
                    return sample(metrics, "gps_index_write_failures_total") >= 2
                await eventually(failed, timeout_s=10)
            finally:
                own_redis.resume()

            async def all_filed() -> bool:
                return None not in await index.positions(couriers)
            await eventually(all_filed, timeout_s=10)
        positions = await index.positions(couriers)
        assert [p.lat for p in positions if p] == [LAT + 50e-4] + [
            LAT + i * 1e-4 for i in range(1, 20)]
        # Each fix observed once, on the write that filed it; nothing left waiting.
        assert sample(metrics, "gps_fix_to_index_seconds_count") == 21
        assert sample(metrics, "gps_index_waiting_couriers") == 0
    finally:
        await client.aclose()


class CountingIndex(LiveIndex):
    """The live index, recording how many positions each upsert was given and the most
    upserts in flight at once."""

    calls: list[int]
    in_flight = 0
    peak = 0
    entered: asyncio.Event

    async def upsert(self, items: Iterable[Located]) -> int:
        items = list(items)
        self.calls.append(len(items))
        self.entered.set()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.05)  # a slow Redis: the calls overlap
            return await super().upsert(items)
        finally:
            self.in_flight -= 1


async def test_a_backlog_is_filed_in_calls_of_at_most_batch_couriers_a_few_at_once(
    nc: Client, streams: Names, redis: aioredis.Redis
) -> None:
    index = CountingIndex(redis, f"{streams.ns}:geo")
    index.calls, index.entered = [], asyncio.Event()
    await redis.set(index.epoch_key, "populated")
    metrics = Metrics("test")
    indexer = Indexer(nc.jetstream(), streams, index, IngestMetrics(metrics), batch=10,
                      in_flight=2)
    couriers = [f"backlog-{i}" for i in range(35)]
    indexer.offer(run_of(c, i, now_ms()) for i, c in enumerate(couriers))
    async with running(indexer.run()):
        async def all_filed() -> bool:
            return None not in await index.positions(couriers)
        await eventually(all_filed)
    assert index.calls == [10, 10, 10, 5]
    assert index.peak == 2
    assert sample(metrics, "gps_fix_to_index_seconds_count") == 35


async def publish(nc: Client, names: Names, event: Any, courier: str) -> None:
    ack = await nc.jetstream().publish(names.location(region_of(LAT, LNG), courier), encode(event))
    assert ack.seq > 0


async def test_a_rebuild_whose_process_died_is_taken_over_when_its_lock_expires(
    nc: Client, streams: Names, redis: aioredis.Redis
) -> None:
    """The index is empty and a dead process holds the rebuild lock: nothing is replayed until
    the lock expires; then the stream's fixes (every message format) are filed, the sentinel
    is set and the indexer is ready."""
    t = now_ms()
    await publish(nc, streams, CourierLocated(courier_id="one", lat=LAT, lng=LNG, ts=t,
                                              received_ms=t), "one")
    await publish(nc, streams, CourierLocatedBatch(courier_id="batch", received_ms=t, fixes=(
        LocFix(LAT, LNG + 1e-4, t - 1000), LocFix(LAT, LNG + 2e-4, t))), "batch")
    await publish(nc, streams, CourierLocatedMany(runs=(
        run_of("many-0", 3, t), run_of("many-1", 4, t),
        run_of("many-0", 5, t + 10))), "_many")
    index = LiveIndex(redis, f"{streams.ns}:geo")
    lock_key = f"{index.epoch_key}:rebuild"
    await redis.set(lock_key, "a process that died", px=1500)
    indexer = Indexer(nc.jetstream(), streams, index, IngestMetrics(Metrics("test")),
                      rebuild_lock_s=5, check_s=0.1)
    couriers = ["one", "batch", "many-0", "many-1"]
    async with running(indexer.run()):
        await asyncio.sleep(0.8)
        assert await index.positions(couriers) == [None] * 4
        assert not indexer.ready.is_set()
        await asyncio.wait_for(indexer.ready.wait(), 10)
        positions = await index.positions(couriers)
        assert [(p.lat, p.lng) for p in positions if p] == [
            (LAT, LNG), (LAT, LNG + 2e-4), (LAT + 5e-4, LNG), (LAT + 4e-4, LNG)]
        assert await redis.exists(index.epoch_key)
        assert not await redis.exists(lock_key)
        assert indexer.replayed == 3


async def test_the_durable_consumer_older_versions_indexed_through_is_deleted(
    nc: Client, streams: Names, redis: aioredis.Redis
) -> None:
    """Left in place, it would keep every location message for nobody."""
    js = nc.jetstream()
    stream, durable = streams.stream(LOCATIONS), streams.consumer(OLD_DURABLE)
    await js.add_consumer(stream, ConsumerConfig(durable_name=durable,
                                                 ack_policy=AckPolicy.EXPLICIT))
    index = LiveIndex(redis, f"{streams.ns}:geo")
    await redis.set(index.epoch_key, "populated")
    indexer = Indexer(js, streams, index, IngestMetrics(Metrics("test")))
    async with running(indexer.run()):
        await asyncio.wait_for(indexer.ready.wait(), 10)
    with pytest.raises(NotFoundError):
        await js.consumer_info(stream, durable)


async def test_fixes_in_a_call_cut_short_by_shutdown_are_filed_by_the_drain(
    nc: Client, streams: Names, redis: aioredis.Redis
) -> None:
    """Shutdown cancels the writer while a call is in flight: its fixes wait again, and the
    drain that follows files them (with what was offered after)."""
    index = CountingIndex(redis, f"{streams.ns}:geo")
    index.calls, index.entered = [], asyncio.Event()
    await redis.set(index.epoch_key, "populated")
    indexer = Indexer(nc.jetstream(), streams, index, IngestMetrics(Metrics("test")))
    couriers = [f"shutdown-{i}" for i in range(5)]
    async with running(indexer.run()):
        indexer.offer(run_of(c, i, now_ms()) for i, c in enumerate(couriers[:4]))
        await asyncio.wait_for(index.entered.wait(), 10)  # it sleeps 50 ms before Redis
    indexer.offer([run_of(couriers[4], 4, now_ms())])
    assert None in await index.positions(couriers)
    await indexer.drain()
    positions = await index.positions(couriers)
    assert [p.lat for p in positions if p] == [LAT + i * 1e-4 for i in range(5)]
