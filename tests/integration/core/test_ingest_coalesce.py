"""Device-socket fixes are coalesced per region into acked ``loc.many`` messages (real NATS,
real Redis): every accepted fix is stored, several couriers share one message, and fixes that
JetStream never acknowledges are counted as failed, not silently lost."""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis
from nats.aio.client import Client

from api.core.gps.device import CourierLink
from api.core.gps.ingest import Ingest, IngestMetrics, LastFixCache
from api.observability import Metrics
from api.runtime import free_port
from api.settings import Settings
from api.stores.live_index import LiveIndex, Position
from geo.cells import region_of
from geo.fixes import decode_fix
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocatedMany, LocRun, decode_locations
from streams.jetstream import ensure_streams


def make_ingest(nc: Client, names: Names, redis: aioredis.Redis,
                flush_s: float) -> tuple[Ingest, IngestMetrics, list[LocRun]]:
    """An ingest, its metrics and the runs it handed to be filed (JetStream acked them)."""
    metrics = IngestMetrics(Metrics("test"))
    index = LiveIndex(redis, f"{names.ns}:geo")
    filed: list[LocRun] = []
    return Ingest(nc, nc.jetstream(), names, metrics, LastFixCache(index),
                  file_stored=filed.extend, flush_s=flush_s), metrics, filed


def fix_json(lat: float, lng: float, ts: int) -> bytes:
    return f'{{"lat": {lat}, "lng": {lng}, "ts": {ts}}}'.encode()


async def test_socket_fixes_of_many_couriers_share_one_acked_message(
    nc: Client, js_names: Names, redis: aioredis.Redis
) -> None:
    js = nc.jetstream()
    await ensure_streams(js, js_names)
    ingest, metrics, filed = make_ingest(nc, js_names, redis, flush_s=0.2)
    now = time.time_ns() // 1_000_000
    lat, lng = 12.9716, 77.5946
    couriers = [f"c{i}" for i in range(10)]
    for i, c in enumerate(couriers):
        verdict = await ingest.submit(c, [decode_fix(fix_json(lat + i * 1e-4, lng, now))],
                                      wait_acks=False)
        assert verdict.accepted == 1
    await ingest.close()  # flushes the pending region and waits for its ack
    stream = js_names.stream(LOCATIONS)
    info = await js.stream_info(stream)
    assert info.state.messages == 1
    msg = await js.get_last_msg(stream, js_names.location_batch(region_of(lat, lng)))
    assert msg.data is not None
    event = decode_locations(msg.data)
    assert isinstance(event, CourierLocatedMany)
    assert [f.courier_id for f in event.newest()] == couriers
    assert [f.lat for f in event.newest()] == [lat + i * 1e-4 for i in range(10)]
    assert ingest.failed == 0
    assert metrics.failed._value.get() == 0
    assert [run.courier_id for run in filed] == couriers  # stored, so handed to the index


async def test_unacknowledged_coalesced_fixes_are_counted_as_failed(
    nc: Client, js_names: Names, redis: aioredis.Redis
) -> None:
    """No stream holds the namespace's subjects (never declared): every attempt finds no
    responder, and after the retries the fixes are counted as failed."""
    ingest, metrics, filed = make_ingest(nc, js_names, redis, flush_s=0.01)
    now = time.time_ns() // 1_000_000
    for i in range(3):
        await ingest.submit(f"d{i}", [decode_fix(fix_json(12.97, 77.59 + i * 1e-4, now))],
                            wait_acks=False)
    await ingest.close()
    assert ingest.failed == 3
    assert metrics.failed._value.get() == 3
    assert filed == []  # never stored, never filed


async def test_device_fix_gets_unavailable_when_redis_is_down_and_socket_code_survives(
    nc: Client, js_names: Names, redis: aioredis.Redis, settings: Settings
) -> None:
    """A device message whose courier's last fix cannot be read (Redis refuses connections)
    is answered ERROR ``unavailable`` instead of killing the socket handler; the same message
    with Redis up is accepted (no reply)."""
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    now = time.time_ns() // 1_000_000
    raw = f'{{"type":"LOCATION","payload":{fix_json(12.97, 77.59, now).decode()}}}'
    try:
        down, _, _ = make_ingest(nc, js_names, dead, flush_s=0.01)
        link = CourierLink("c-down", down, max_batch=settings.ingest.max_batch)
        replies = [msgspec.json.decode(m) for m in await link.handle(raw)]
        assert replies == [{"type": "ERROR", "payload": {
            "reason": "unavailable", "detail": "live index unavailable; fix not accepted"}}]
    finally:
        await dead.aclose()
    await ensure_streams(nc.jetstream(), js_names)
    up, _, _ = make_ingest(nc, js_names, redis, flush_s=0.01)
    assert await CourierLink("c-down", up, max_batch=settings.ingest.max_batch).handle(raw) == []
    await up.close()


async def test_last_fix_misses_of_one_loop_turn_share_pipelined_reads(
    js_names: Names, redis: aioredis.Redis
) -> None:
    """1,200 devices whose last fix is not cached (a connect storm) are looked up in
    ceil(1,200 / 500) pipelined reads, not one pooled connection each; every waiter gets its
    own courier's fix (or None), a repeated id shares its look-up, and a failing read reaches
    every waiter as the Redis error (answered ``unavailable`` by the socket)."""
    import asyncio

    from api.stores.live_index import Located

    prefix = f"{js_names.ns}:geo-lf"
    index = LiveIndex(redis, prefix)
    ids = [f"lf-{i}" for i in range(1200)]
    # the last 200 never sent a fix
    await index.upsert([Located(cid, 12.0 + i / 1e4, 77.5, 1_000 + i)
                        for i, cid in enumerate(ids[:1000])])
    calls: list[int] = []
    real = index.positions

    async def counted(member_ids: list[str]) -> list[Position | None]:
        calls.append(len(member_ids))
        return await real(member_ids)

    index.positions = counted  # type: ignore[method-assign]
    cache = LastFixCache(index)
    got = await asyncio.gather(*(cache.get(c) for c in [*ids, ids[3]]))
    assert calls == [500, 500, 200]
    assert got[3] is not None
    assert (got[3].lat, got[3].ts_ms) == (12.0003, 1_003)
    assert got[-1] == got[3]
    assert all(g is not None and g.ts_ms == 1_000 + i for i, g in enumerate(got[:1000]))
    assert got[1000:1200] == [None] * 200
    assert cache.cached(ids[999]) is not None  # cached: the next fix needs no Redis at all

    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        down = LastFixCache(LiveIndex(dead, prefix))
        results = await asyncio.gather(down.get("x-1"), down.get("x-2"),
                                       return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["ConnectionError"] * 2
    finally:
        await dead.aclose()
