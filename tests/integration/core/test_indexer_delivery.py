"""The indexer's delivery guarantees with several core processes sharing its consumer (real
NATS JetStream, real Redis): a member that dies holding messages it never applied does not
lose them, because acks are per message and the rest are redelivered to the survivors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy

from api.core.gps.indexer import Indexer
from api.core.gps.ingest import IngestMetrics
from api.observability import Metrics
from api.stores.live_index import LiveIndex
from geo.cells import region_of
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocated, encode
from streams.jetstream import ensure_streams
from tests.integration.core.conftest import eventually

LAT, LNG = 12.9716, 77.5946


class CrashingIndexer(Indexer):
    """A core process that dies right after the stream pushed it its first messages."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.held: list[str] = []

    async def apply(self, msgs: list[Msg]) -> None:
        self.held += [m.subject for m in msgs]
        raise RuntimeError("process crashed before indexing")


@pytest.fixture
async def index(nc: Client, js_names: Names, redis: aioredis.Redis) -> LiveIndex:
    """The namespace's streams and an index marked populated: nothing is replayed, so the
    indexers see only what a test publishes."""
    await ensure_streams(nc.jetstream(), js_names)
    live = LiveIndex(redis, f"{js_names.ns}:geo")
    await redis.set(live.epoch_key, "populated")
    return live


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def publish_fix(nc: Client, names: Names, courier: str, i: int) -> None:
    lat, lng = LAT + i * 1e-4, LNG
    ack = await nc.jetstream().publish(
        names.location(region_of(lat, lng), courier),
        encode(CourierLocated(courier_id=courier, lat=lat, lng=lng, ts=now_ms(),
                              received_ms=now_ms())))
    assert ack.seq > 0


async def test_a_crashed_member_s_messages_are_redelivered_to_the_others(
    nc: Client, js_names: Names, index: LiveIndex
) -> None:
    """A member that dies holding messages it never applied loses none of them: acks are
    per message, so the survivor gets them redelivered and indexes every courier."""
    js = nc.jetstream()

    def member(cls: type[Indexer]) -> Indexer:
        return cls(js, js_names, index, IngestMetrics(Metrics("test")), batch=5, ack_wait_s=2.0)

    survivor = member(Indexer)
    crasher = member(CrashingIndexer)
    assert isinstance(crasher, CrashingIndexer)

    async def consumer_ready() -> bool:
        with contextlib.suppress(Exception):
            info = await js.consumer_info(js_names.stream(LOCATIONS), js_names.consumer("indexer"))
            return info.config.ack_policy == AckPolicy.EXPLICIT
        return False

    async with running(survivor.run()):
        await eventually(consumer_ready)
        crasher_task = asyncio.create_task(crasher.run())
        for each in (survivor, crasher):  # both are in the deliver group
            await asyncio.wait_for(each.ready.wait(), 10)
        couriers = [f"c{i}" for i in range(40)]
        for i, c in enumerate(couriers):
            await publish_fix(nc, js_names, c, i)
        with pytest.raises(RuntimeError, match="crashed"):
            await asyncio.wait_for(crasher_task, 10)
        assert crasher.held, "the crashed member was never given a share"
        # The survivor acks messages published after the crash: with cumulative acks these
        # would also have covered (and so lost) what the crashed member held.
        for i in range(40, 45):
            await publish_fix(nc, js_names, f"c{i}", i)
        couriers += [f"c{i}" for i in range(40, 45)]

        async def all_indexed() -> bool:
            positions = await index.positions(couriers)
            return all(p is not None for p in positions)
        await eventually(all_indexed, timeout_s=15)
        positions = await index.positions(couriers)
        assert [p.lat for p in positions if p] == [LAT + i * 1e-4 for i in range(45)]


async def test_an_ack_all_consumer_left_by_an_older_version_is_replaced(
    nc: Client, js_names: Names, index: LiveIndex
) -> None:
    """A durable consumer with cumulative acks (an older build's) is replaced by an
    explicit-ack one, and indexing goes on."""
    js = nc.jetstream()
    indexer = Indexer(js, js_names, index, IngestMetrics(Metrics("test")))
    stream, durable = js_names.stream(LOCATIONS), js_names.consumer("indexer")
    old = dataclasses.replace(indexer._config(datetime.now(UTC)), ack_policy=AckPolicy.ALL)
    await js.add_consumer(stream, old)
    assert (await js.consumer_info(stream, durable)).config.ack_policy == AckPolicy.ALL

    async with running(indexer.run()):
        async def explicit() -> bool:
            info = await js.consumer_info(stream, durable)
            return info.config.ack_policy == AckPolicy.EXPLICIT
        await eventually(explicit)
        await publish_fix(nc, js_names, "c-after-upgrade", 0)

        async def indexed() -> bool:
            return await index.position("c-after-upgrade") is not None
        await eventually(indexed)


class CountingIndexer(Indexer):
    """An indexer that records how many messages each apply was given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.applies: list[int] = []

    async def apply(self, msgs: list[Msg]) -> None:
        self.applies.append(len(msgs))
        await super().apply(msgs)


async def test_messages_arriving_within_the_linger_are_applied_together(
    nc: Client, js_names: Names, index: LiveIndex
) -> None:
    """With ``linger_s`` the indexer waits that long after a message arrives, so messages
    published meanwhile go to Redis in the same apply (without it, each of these would be
    applied alone); every one is indexed."""
    indexer = CountingIndexer(nc.jetstream(), js_names, index, IngestMetrics(Metrics("test")),
                              linger_s=0.5)
    couriers = [f"linger-{i}" for i in range(8)]
    async def subscribed() -> bool:
        return indexer.ready.is_set()

    async with running(indexer.run()):
        await eventually(subscribed)
        for i, courier in enumerate(couriers):  # 50 ms apart: all within the linger
            await publish_fix(nc, js_names, courier, i)
            await asyncio.sleep(0.05)

        async def all_indexed() -> bool:
            return None not in await index.positions(couriers)
        await eventually(all_indexed, timeout_s=15)
    assert sum(indexer.applies) == len(couriers)
    assert len(indexer.applies) <= 2, indexer.applies
