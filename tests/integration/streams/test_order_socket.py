"""/ws/orders/{id} and GET /orders/{id}/track against the running core: who may watch, the
snapshot on connect, live status with ids, resume with ?since=, slow consumers."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.settings import Settings
from tests.integration.streams.conftest import (
    CoreServer,
    Orders,
    eventually,
    projected,
    quiet,
    recv,
    recv_type,
    serve_core,
)
from tests.servers import ASGI_ONLY, FAST_LANE


async def close_code_of(url: str, headers: dict[str, str] | None = None) -> int | str:
    """Connect and report how the server ended it: a close code, or the HTTP status."""
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=5) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 5)
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else "closed"
            return "open"
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"


# (case, who connects as (user, role) or None, order owner?, query, expected close)
AUTH_CASES: list[tuple[str, tuple[str, str] | None, str, str, int | str]] = [
    ("no_token", None, "", "", "http 403"),
    ("courier_role", ("cour-x", "delivery"), "", "", "http 403"),
    ("other_customer", ("cust-other", "customer"), "", "", 4403),
    ("other_chef", ("chef-other", "chef"), "", "", 4403),
    ("unknown_order", ("fm-1", "fleet_manager"), "unknown", "", 4404),
    ("bad_since", ("fm-1", "fleet_manager"), "", "since=-3", 4400),
    ("bad_since_text", ("fm-1", "fleet_manager"), "", "since=abc", 4400),
]


@pytest.mark.parametrize(("case", "who", "order", "query", "expect"), AUTH_CASES,
                         ids=[c[0] for c in AUTH_CASES])
async def test_refusals(core_server: CoreServer, orders: Orders, case: str,
                        who: tuple[str, str] | None, order: str, query: str,
                        expect: int | str) -> None:
    """Nobody but the order's customer, its chef and staff may watch an order: no token and
    wrong roles are refused at the handshake, others' orders close 4403, unknown orders
    4404, a malformed since 4400."""
    order_id, _ = await orders.create()
    if order == "unknown":
        order_id = str(uuid.uuid4())
    url = f"{core_server.ws_url}/ws/orders/{order_id}" + (f"?{query}" if query else "")
    headers = core_server.auth(*who) if who else None
    assert await close_code_of(url, headers) == expect


def order_url(srv: CoreServer, order_id: str, user: str, role: str, query: str = "") -> str:
    token = srv.token(user, role)
    return f"{srv.ws_url}/ws/orders/{order_id}?token={token}" + (f"&{query}" if query else "")


async def index_courier(srv: CoreServer, courier_id: str, lat: float, lng: float) -> None:
    """Put a courier on the live index through the real ingest path (HTTP batch)."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=10) as client:
        r = await client.post("/api/v1/delivery/locations",
                              json={"fixes": [{"lat": lat, "lng": lng,
                                               "ts": time.time_ns() // 1_000_000}]},
                              headers=srv.auth(courier_id, "delivery"))
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 1
    index = srv.core.couriers  # type: ignore[attr-defined]

    async def indexed() -> bool:
        return await index.position(courier_id) is not None

    await eventually(indexed)


async def test_snapshot_on_connect(core_server: CoreServer, orders: Orders) -> None:
    """On connect the customer first gets the current status (with the id of its event) and,
    once a courier is assigned, the courier's last location with an ETA — no waiting."""
    courier = f"cour-{uuid.uuid4().hex[:8]}"
    order_id, _ = await orders.create()
    customer = orders.created(order_id).customer_id
    await orders.status(order_id, "accepted", previous="pending")
    seq = await orders.status(order_id, "preparing", previous="accepted")
    await orders.assign(order_id, courier)
    await index_courier(core_server, courier, 12.975, 77.595)
    await projected(core_server, order_id, courier_id=courier, status="preparing")

    async with websockets.connect(order_url(core_server, order_id, customer, "customer")) as ws:
        first = await recv(ws)
        second = await recv(ws)
    assert first["type"] == "ORDER_STATUS_UPDATE"
    assert first["id"] == seq
    assert first["payload"]["orderId"] == order_id
    assert first["payload"]["status"] == "preparing"
    assert first["payload"]["timestamp"].endswith("Z")
    assert first["payload"]["estimatedTime"].endswith("Z")
    assert second["type"] == "DELIVERY_LOCATION"
    p = second["payload"]
    assert p["orderId"] == order_id
    assert p["deliveryId"] == courier
    assert p["location"] == {"lat": 12.975, "lng": 77.595}
    assert p["eta"].endswith(("min", "mins"))
    assert p["eta_s"] > 0


async def test_http_track_is_the_same_snapshot(core_server: CoreServer, orders: Orders) -> None:
    """GET /orders/{id}/track answers what the socket sends first; others' orders are 403,
    unknown ones 404."""
    order_id, seq = await orders.create()
    customer = orders.created(order_id).customer_id
    async with httpx.AsyncClient(base_url=core_server.url, timeout=10) as client:
        r = await client.get(f"/api/v1/orders/{order_id}/track",
                             headers=core_server.auth(customer, "customer"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"]["type"] == "ORDER_STATUS_UPDATE"
        assert body["status"]["id"] == seq
        assert body["status"]["payload"]["status"] == "pending"
        assert body["location"] is None
        cases = [(core_server.auth("cust-other", "customer"), order_id, 403),
                 (core_server.auth("fm-1", "fleet_manager"), str(uuid.uuid4()), 404),
                 (core_server.auth("fm-1", "fleet_manager"), order_id, 200)]
        for headers, oid, expect in cases:
            r = await client.get(f"/api/v1/orders/{oid}/track", headers=headers)
            assert r.status_code == expect, (oid, r.text)


async def test_live_status_with_ids_and_chef_sees_it(core_server: CoreServer,
                                                     orders: Orders) -> None:
    """Every status event reaches the order's customer socket and the chef's socket, in order,
    each ORDER_STATUS_UPDATE carrying the stream sequence of its event as id."""
    chef = f"chef-{uuid.uuid4().hex[:8]}"
    async with websockets.connect(f"{core_server.ws_url}/ws/chef",
                                  additional_headers=core_server.auth(chef, "chef")) as chef_ws:
        hub = core_server.app.state.tracking.hub  # type: ignore[attr-defined]

        async def registered() -> bool:  # the socket registers after the handshake
            return bool(hub.chef_connected(chef))

        await eventually(registered)
        order_id, created_seq = await orders.create(chef=chef, total_cents=2599)
        new = await recv_type(chef_ws, "NEW_ORDER")
        assert new["id"] == created_seq
        assert new["payload"]["orderId"] == order_id
        assert new["payload"]["orderNumber"] == orders.created(order_id).order_number
        assert new["payload"]["total"] == 25.99
        customer = orders.created(order_id).customer_id
        async with websockets.connect(order_url(core_server, order_id, customer,
                                                "customer")) as ws:
            assert (await recv(ws))["payload"]["status"] == "pending"
            seqs = [await orders.status(order_id, s) for s in ("accepted", "preparing", "ready")]
            got = [await recv_type(ws, "ORDER_STATUS_UPDATE") for _ in seqs]
            assert [m["id"] for m in got] == seqs
            assert [m["payload"]["status"] for m in got] == ["accepted", "preparing", "ready"]
        chef_got = [await recv_type(chef_ws, "ORDER_STATUS_UPDATE") for _ in seqs]
        assert [m["id"] for m in chef_got] == seqs


async def test_resume_after_reconnect_loses_nothing(core_server: CoreServer,
                                                    orders: Orders) -> None:
    """A client that reconnects with ?since=<last id> receives exactly the status events it
    missed, in order, then live ones — no gap, no repeat."""
    order_id, _ = await orders.create()
    customer = orders.created(order_id).customer_id
    first_seq = await orders.status(order_id, "accepted")
    async with websockets.connect(order_url(core_server, order_id, customer, "customer")) as ws:
        last = (await recv(ws))["id"]
    assert last == first_seq
    missed = [await orders.status(order_id, s) for s in ("preparing", "ready", "picked_up")]
    query = f"since={last}"
    async with websockets.connect(order_url(core_server, order_id, customer, "customer",
                                            query)) as ws:
        replayed = [await recv_type(ws, "ORDER_STATUS_UPDATE") for _ in missed]
        live_seq = await orders.status(order_id, "delivering")
        live = await recv_type(ws, "ORDER_STATUS_UPDATE")
        extra = await quiet(ws, "ORDER_STATUS_UPDATE", 0.3)
    assert [m["id"] for m in replayed] == missed
    assert [m["payload"]["status"] for m in replayed] == ["preparing", "ready", "picked_up"]
    assert live["id"] == live_seq
    assert extra == []


async def test_resume_races_live_events(core_server: CoreServer, orders: Orders) -> None:
    """Events published while a resumed socket is replaying are neither lost nor repeated."""
    order_id, _ = await orders.create()
    customer = orders.created(order_id).customer_id
    statuses = ["accepted", "preparing", "ready", "picked_up", "delivering", "delivered"] * 4
    before = [await orders.status(order_id, s) for s in statuses[:6]]

    async def keep_publishing() -> list[int]:
        return [await orders.status(order_id, s) for s in statuses[6:]]

    publisher = asyncio.create_task(keep_publishing())
    async with websockets.connect(order_url(core_server, order_id, customer, "customer",
                                            f"since={before[0]}")) as ws:
        during = await publisher
        want = before[1:] + during
        got = [(await recv_type(ws, "ORDER_STATUS_UPDATE"))["id"] for _ in want]
        extra = await quiet(ws, "ORDER_STATUS_UPDATE", 0.3)
    assert got == want
    assert extra == []


async def test_slow_consumer_does_not_delay_others(core_server: CoreServer,
                                                   orders: Orders) -> None:
    """A client that stops reading holds up nobody: another socket on the same order gets
    every status event promptly."""
    order_id, _ = await orders.create()
    customer = orders.created(order_id).customer_id
    url = order_url(core_server, order_id, customer, "customer")
    async with websockets.connect(url, max_queue=1, close_timeout=0.2) as slow, \
            websockets.connect(url) as fast:
        await recv(fast)
        await recv(slow)  # then never reads again
        started = time.monotonic()
        seqs = []
        for i in range(60):
            seqs.append(await orders.status(order_id, "preparing" if i % 2 else "accepted"))
        got = [(await recv_type(fast, "ORDER_STATUS_UPDATE", 5))["id"] for _ in seqs]
        elapsed = time.monotonic() - started
    assert got == seqs
    assert elapsed < 5



@pytest.mark.parametrize("ws", [FAST_LANE, ASGI_ONLY])
async def test_slow_consumer_is_closed_4008(settings: Settings, orders: Orders, ws: str) -> None:
    """A client that stops reading while status events keep coming is closed with 4008
    "slow consumer" once its unsent backlog passes the bound (WS_QUEUE_SIZE=1 → 4 KiB), after
    the events that did fit; it resumes with ?since=. Both with the fast lane (messages go
    straight to the transport until it pauses, then queue) and through plain ASGI: ~9 MB of
    events, more than the kernel's socket buffers (tcp_wmem up to 4 MiB) and the transport's
    take while the client reads nothing."""
    small = settings.replace(ws__queue_size=1)
    async with serve_core(small, ws=ws) as srv:
        hub = srv.app.state.tracking.hub  # type: ignore[attr-defined]
        await asyncio.wait_for(hub.ready.wait(), 10)
        order_id, _ = await orders.create()
        customer = orders.created(order_id).customer_id
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window
        sock.setblocking(False)
        port = int(srv.url.rsplit(":", 1)[1])
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        url = order_url(srv, order_id, customer, "customer")
        async with websockets.connect(url, sock=sock, max_queue=1, close_timeout=1) as ws_:
            await recv(ws_)
            filler = "x" * 60_000  # big events fill the buffers quickly
            for _ in range(150):
                await orders.status(order_id, "preparing", order_number=filler)
            got, closed = await read_until_closed(ws_)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4008, "slow consumer")
        assert got < 150


async def read_until_closed(ws: Any) -> tuple[int, ConnectionClosed]:
    got = 0
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as exc:
            return got, exc
        got += 1
