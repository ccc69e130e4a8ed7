"""Live fan-out through the real path: courier device socket → NATS → hubs → client sockets
(order locations with ETA, console viewports, offers to couriers), and NATS reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import h3
import msgspec
import pytest
import websockets

from api.settings import Settings
from streams.catalog import Names
from tests.integration.streams.conftest import (
    WAIT_S,
    CoreServer,
    Orders,
    eventually,
    projected,
    quiet,
    recv,
    recv_type,
    serve_core,
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def fix(lat: float, lng: float, ts: int | None = None) -> str:
    return json.dumps({"type": "LOCATION",
                       "payload": {"lat": lat, "lng": lng, "ts": ts or now_ms()}})


async def until_latest(ws: Any, kind: str, is_latest: Callable[[dict[str, Any]], bool],
                       timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Messages of ``kind`` (with their receive time in ``_at``) up to the one whose payload
    ``is_latest``. The deadline is generous (the latest usually arrives within ~1 s): with
    three full suites at once on the 2 cores, 5 s was once not enough (latency is measured
    by bench/fanout.py, not here)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        msg = await recv_type(ws, kind, max(0.01, deadline - time.monotonic()))
        msg["_at"] = time.monotonic()
        got.append(msg)
        if is_latest(msg["payload"]):
            return got


def assert_at_most_once_per_second(msgs: list[dict[str, Any]]) -> None:
    """Coalesced: fixes sent within half a second arrive as at most 3 messages, spaced about
    a second apart (receive times jitter with the machine's load, hence the margin)."""
    assert 1 <= len(msgs) <= 3
    gaps = [b["_at"] - a["_at"] for a, b in itertools.pairwise(msgs)]
    assert all(g > 0.5 for g in gaps), gaps


def courier_url(srv: CoreServer, courier_id: str) -> str:
    return f"{srv.ws_url}/ws/courier?token={srv.token(courier_id, 'delivery')}"


async def test_delivery_location_with_eta_at_most_once_per_second(
    core_server: CoreServer, orders: Orders,
) -> None:
    """Fixes from the assigned courier's device reach the order's customer as
    DELIVERY_LOCATION with an "N mins" ETA and eta_s, at most one per second per order
    (the latest position wins)."""
    courier = f"cour-{uuid.uuid4().hex[:8]}"
    order_id, _ = await orders.create(pickup=(12.97, 77.59), dropoff=(12.99, 77.61))
    customer = orders.created(order_id).customer_id
    await orders.status(order_id, "picked_up")
    await orders.assign(order_id, courier)
    await projected(core_server, order_id, courier_id=courier)
    token = core_server.token(customer, "customer")
    async with websockets.connect(courier_url(core_server, courier)) as device, \
            websockets.connect(f"{core_server.ws_url}/ws/orders/{order_id}?token={token}") as ws:
        await recv_type(ws, "ORDER_STATUS_UPDATE")
        t0 = now_ms() - 10_000
        for i in range(8):  # 8 fixes within ~0.4 s (device times 1 s apart), moving north-east
            await device.send(fix(12.971 + i * 0.0001, 77.591 + i * 0.0001, t0 + i * 1000))
            await asyncio.sleep(0.05)
        got = await until_latest(
            ws, "DELIVERY_LOCATION",
            lambda p: p["location"]["lat"] == pytest.approx(12.971 + 7e-4))
    assert_at_most_once_per_second(got)
    last = got[-1]["payload"]
    assert last["deliveryId"] == courier
    assert last["location"] == pytest.approx({"lat": 12.971 + 7e-4, "lng": 77.591 + 7e-4})
    # ~2.5 km straight line × 1.35 circuity at bike speed: 13-14 minutes.
    assert 600 < last["eta_s"] < 1000
    assert last["eta"] == f"{-(-last['eta_s'] // 60)} mins"
    stamps = [m["payload"]["ts"] for m in got]
    assert stamps == sorted(stamps)


async def test_console_viewport_positions_markers_and_heat(core_server: CoreServer,
                                                          orders: Orders) -> None:
    """A console subscribed to cells gets the couriers and order markers in them (positions
    coalesced per courier) and supply/demand per cell; bad SUBSCRIBEs get an ERROR."""
    lat, lng = -23.55 + (uuid.uuid4().int % 1000) / 1e5, -46.63
    cell = h3.latlng_to_cell(lat, lng, 7)
    courier = f"cour-{uuid.uuid4().hex[:8]}"
    order_id, _ = await orders.create(pickup=(lat, lng), dropoff=(lat + 0.01, lng))
    url = f"{core_server.ws_url}/ws/console?token={core_server.token('fm-1', 'fleet_manager')}"
    async with websockets.connect(url) as console, \
            websockets.connect(courier_url(core_server, courier)) as device:
        cases: list[tuple[dict[str, object], str, str]] = [
            ({"type": "SUBSCRIBE", "payload": {"cells": ["nope"]}}, "ERROR", "bad_cell"),
            ({"type": "SUBSCRIBE", "payload": {"cells": [h3.latlng_to_cell(lat, lng, 9)]}},
             "ERROR", "bad_cell"),
            ({"type": "SUBSCRIBE", "payload": {"bbox": [10, 10, 5, 5]}}, "ERROR", "bad_bbox"),
            ({"type": "SUBSCRIBE", "payload": {"bbox": [-60, -40, 0, 10]}}, "ERROR",
             "viewport_too_large"),
            ({"type": "SUBSCRIBE", "payload": {}}, "ERROR", "bad_viewport"),
            ({"type": "HELLO"}, "ERROR", "malformed"),
        ]
        for send, kind, reason in cases:
            await console.send(json.dumps(send))
            msg = await recv(console)
            assert (msg["type"], msg["payload"]["reason"]) == (kind, reason), send
        await console.send(json.dumps({"type": "PING"}))
        assert json.loads(await asyncio.wait_for(console.recv(), WAIT_S)) == {"type": "PONG"}

        await console.send(json.dumps({"type": "SUBSCRIBE", "payload": {"cells": [cell]}}))
        assert (await recv(console)) == {"type": "SUBSCRIBED", "payload": {"cells": 1}}
        marker = await recv_type(console, "ORDER_MARKER")
        assert marker["payload"]["orderId"] == order_id
        assert marker["payload"]["cell"] == cell
        t0 = now_ms() - 10_000
        for i in range(5):
            await device.send(fix(lat + i * 1e-4, lng, t0 + i * 1000))
        mine = await until_latest(
            console, "COURIER_POSITION",
            lambda p: p["courierId"] == courier and p["location"]["lat"] == pytest.approx(
                lat + 4e-4))
        assert_at_most_once_per_second(mine)
        # Re-subscribing (a bbox around the point) sends the heat map of the view at once.
        bbox = [lng - 0.01, lat - 0.01, lng + 0.01, lat + 0.01]
        await console.send(json.dumps({"type": "SUBSCRIBE", "payload": {"bbox": bbox}}))
        heat = await recv_type(console, "SUPPLY_DEMAND")
        by_cell = {c["cell"]: c for c in heat["payload"]["cells"]}
        assert by_cell[cell]["supply"] >= 1
        assert by_cell[cell]["demand"] >= 1


async def test_offers_reach_the_courier_device(core_server: CoreServer, orders: Orders,
                                              settings: Settings) -> None:
    """A message published (plain NATS) on the courier's inbox subject is forwarded as is to
    that courier's device socket, and to nobody else's."""
    import nats

    names = Names(settings.server.namespace)
    courier, other = f"cour-{uuid.uuid4().hex[:8]}", f"cour-{uuid.uuid4().hex[:8]}"
    offer = {"type": "OFFER", "payload": {"offerId": "o-1", "orderId": "x", "expiresInS": 30}}
    assert settings.stores.nats_url
    nc = await nats.connect(servers=settings.stores.nats_servers)
    try:
        async with websockets.connect(courier_url(core_server, courier)) as device, \
                websockets.connect(courier_url(core_server, other)) as bystander:
            hub = core_server.app.state.tracking.couriers  # type: ignore[attr-defined]

            async def attached() -> bool:
                return bool(hub.connected(courier) and hub.connected(other))

            await eventually(attached)
            await nc.publish(names.courier_inbox(courier), json.dumps(offer).encode())
            assert json.loads(await asyncio.wait_for(device.recv(), 3)) == offer
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bystander.recv(), 0.3)
    finally:
        await nc.close()


class CuttableProxy:
    """A TCP proxy to NATS whose connections can be cut, forcing the client to reconnect."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.host, self.port = upstream_host, upstream_port
        self._writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self._writers:
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def proxied_core(settings: Settings) -> AsyncIterator[tuple[CoreServer, CuttableProxy]]:
    from urllib.parse import urlsplit

    assert settings.stores.nats_url
    parts = urlsplit(settings.stores.nats_servers[0])  # on a cluster, its first node
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 4222)
    port = await proxy.start()
    proxied = settings.replace(stores__nats_url=f"nats://127.0.0.1:{port}")
    async with serve_core(proxied) as srv:
        yield srv, proxy
    await proxy.stop()


async def test_nats_reconnect_loses_no_status_event(
    proxied_core: tuple[CoreServer, CuttableProxy], orders: Orders,
) -> None:
    """core's NATS connection is cut twice while status events keep coming: the server
    reconnects by itself and the order socket still receives every event, in order, once."""
    srv, proxy = proxied_core
    hub = srv.app.state.tracking.hub  # type: ignore[attr-defined]
    await asyncio.wait_for(hub.ready.wait(), 10)
    order_id, _ = await orders.create()
    customer = orders.created(order_id).customer_id
    token = srv.token(customer, "customer")
    statuses = ["accepted", "preparing", "ready"]
    async with websockets.connect(f"{srv.ws_url}/ws/orders/{order_id}?token={token}") as ws:
        await recv_type(ws, "ORDER_STATUS_UPDATE", 5)
        nats_client = srv.app.state.resources.nats  # type: ignore[attr-defined]
        seqs: list[int] = []
        for i in range(30):
            if i in (8, 19):
                cuts = i // 10

                async def reconnected(cuts: int = cuts) -> bool:
                    return bool(nats_client.is_connected
                                and nats_client.stats["reconnects"] >= cuts)

                await eventually(reconnected)
                proxy.cut()
            seqs.append(await orders.status(order_id, statuses[i % 3]))  # type: ignore[arg-type]
            await asyncio.sleep(0.02)
        got: list[int] = []
        with contextlib.suppress(TimeoutError):
            while len(got) < len(seqs):
                got.append((await recv_type(ws, "ORDER_STATUS_UPDATE", 10))["id"])
        extra = await quiet(ws, "ORDER_STATUS_UPDATE", 0.3)
    assert got == seqs, f"missing {sorted(set(seqs) - set(got))}"
    assert extra == []
    assert nats_client.stats["reconnects"] >= 2


async def test_a_hub_takes_fixes_only_while_a_socket_there_watches(settings: Settings) -> None:
    """A core process no console or order socket watches through decodes no courier fix. A
    console opening there is first shown the couriers the live index holds (the fix was
    never taken by its hub), then live fixes; a while after it closes (`fixes_linger_s`),
    the process stops taking fixes again."""
    lat, lng = -33.86 + (uuid.uuid4().int % 1000) / 1e5, 151.20
    cell = h3.latlng_to_cell(lat, lng, 7)
    courier = f"cour-{uuid.uuid4().hex[:8]}"
    async with serve_core(settings) as srv:
        hub = srv.app.state.tracking.hub  # type: ignore[attr-defined]
        hub.limits = msgspec.structs.replace(hub.limits, fixes_linger_s=0.5)
        index = srv.core.couriers  # type: ignore[attr-defined]
        await asyncio.wait_for(hub.ready.wait(), 10)

        async def indexed_at(want_lat: float) -> bool:
            pos = await index.position(courier)
            return pos is not None and pos.lat == pytest.approx(want_lat)

        url = f"{srv.ws_url}/ws/console?token={srv.token('fm-1', 'fleet_manager')}"
        t0 = now_ms() - 10_000  # fixes 5 s apart (device time): a plausible walk
        async with websockets.connect(courier_url(srv, courier)) as device:
            await device.send(fix(lat, lng, t0))
            await eventually(lambda: indexed_at(lat), timeout_s=WAIT_S)
            assert not hub.is_taking_fixes
            assert hub.fix_messages == 0
            async with websockets.connect(url) as console:
                await console.send(json.dumps({"type": "SUBSCRIBE",
                                               "payload": {"cells": [cell]}}))
                assert (await recv(console)) == {"type": "SUBSCRIBED", "payload": {"cells": 1}}
                first = await recv_type(console, "COURIER_POSITION")
                assert first["payload"]["courierId"] == courier
                assert first["payload"]["location"]["lat"] == pytest.approx(lat)
                await device.send(fix(lat + 2e-4, lng, t0 + 5000))
                await until_latest(
                    console, "COURIER_POSITION",
                    lambda p: p["location"]["lat"] == pytest.approx(lat + 2e-4))
                assert hub.fix_messages >= 1

            async def stopped() -> bool:
                return not hub.is_taking_fixes

            await eventually(stopped, timeout_s=WAIT_S)
            taken = hub.fix_messages
            await device.send(fix(lat + 4e-4, lng, t0 + 10_000))
            await eventually(lambda: indexed_at(lat + 4e-4), timeout_s=WAIT_S)
            assert hub.fix_messages == taken
