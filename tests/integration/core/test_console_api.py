"""Core's reads for the fleet console (KPIs from live state, chefs, hexagon outlines, order
timeline, public config and static shell), the console socket's courier states, and the CORS
that lets the console (on core's origin) sign in at commerce."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import h3
import httpx
import nats
import pytest
import websockets
from litestar.testing import AsyncTestClient

from api.app import create_commerce_app
from api.settings import Settings
from api.stores.live_index import Located
from streams.catalog import Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import ensure_streams, publish
from tests.integration.core.conftest import CoreServer, eventually, serve_core

LAT, LNG = 48.8566, 2.3522  # a city of its own: nothing else in this namespace anyway
STAFF = ("fm-1", "fleet_manager")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class World:
    def __init__(self, srv: CoreServer, http: httpx.AsyncClient, js: Any, names: Names) -> None:
        self.srv, self.http, self.js, self.names = srv, http, js, names

    @property
    def staff(self) -> dict[str, str]:
        return self.srv.auth(*STAFF)

    async def courier(self, lat: float, lng: float, online: bool) -> str:
        cid = f"k-{uuid.uuid4().hex[:8]}"
        h = self.srv.auth(cid, "delivery")
        r = await self.http.post("/api/v1/delivery/locations", headers=h,
                                 json={"fixes": [{"lat": lat, "lng": lng, "ts": now_ms()}]})
        assert r.json()["accepted"] == 1, r.text
        if online:
            r = await self.http.put("/api/v1/delivery/availability", headers=h,
                                    json={"online": True})
            assert r.json()["state"] == "idle", r.text
        return cid

    async def order(self, promised_in_s: float = 2400) -> str:
        oid = str(uuid.uuid4())
        t = now_ms()
        ev = OrderStatusChanged(
            order_id=oid, order_number=f"HC{oid[:6]}", customer_id="cust-k", chef_id="chef-k",
            status="accepted", previous_status="pending", at_ms=t,
            pickup=LatLng(LAT + 0.001, LNG), dropoff=LatLng(LAT + 0.01, LNG + 0.01),
            ready_at_ms=t, promised_at_ms=t + round(promised_in_s * 1000))
        await publish(self.js, self.names.order_event("status", oid), ev, msg_id=f"{oid}:acc")
        return oid

    async def stats(self) -> dict[str, Any]:
        r = await self.http.get("/api/v1/fleet/stats", headers=self.staff)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    """A core of its own namespace with matching effectively off (orders stay waiting)."""
    ns = f"{settings.server.namespace}k{uuid.uuid4().hex[:4]}"
    own = settings.replace(
        server__namespace=ns,
        dispatch__round_s=3600.0,
        console__tile_url="https://tiles.example.com/{z}/{x}/{y}.png",
    )
    nc = await nats.connect(servers=settings.stores.nats_servers)
    names = Names(ns)
    await ensure_streams(nc.jetstream(), names)
    try:
        async with serve_core(own) as srv, httpx.AsyncClient(base_url=srv.url, timeout=10) as h:
            yield World(srv, h, nc.jetstream(), names)
    finally:
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await nc.jetstream().delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()


async def test_stats_count_live_couriers_and_dispatch_orders(world: World) -> None:
    """KPIs follow live state: online/idle couriers, waiting and late orders, and the median
    wait to assignment once an order is assigned by hand."""
    before = await world.stats()
    idle = [await world.courier(LAT, LNG + 0.001 * i, online=True) for i in range(3)]
    await world.courier(LAT, LNG - 0.002, online=False)  # fixes only: online, not idle
    on_time = await world.order()
    late = await world.order(promised_in_s=-60)

    async def counted() -> dict[str, Any] | None:
        k = await world.stats()
        ok = (k["couriers_online"] == before["couriers_online"] + 4
              and k["couriers_idle"] == before["couriers_idle"] + 3
              and k["orders_waiting"] == before["orders_waiting"] + 2
              and k["orders_late"] == before["orders_late"] + 1)
        return k if ok else None

    k = await eventually(counted, 10)
    assert isinstance(k, dict)
    lng0, lat0, lng1, lat1 = k["bbox"]
    assert lat0 <= LAT <= lat1
    assert lng0 <= LNG + 0.002 <= lng1

    async def waited_a_second() -> bool:
        """The order was queued over a second ago, so its wait to assignment shows (the KPI
        counts from its latest step, entering the queue)."""
        r = await world.http.get(f"/api/v1/fleet/orders/{on_time}/timeline",
                                 headers=world.staff)
        queued = max(s["at_ms"] for s in r.json()["steps"])
        return now_ms() - queued > 1000

    await eventually(waited_a_second, 10)
    r = await world.http.post(f"/api/v1/fleet/orders/{on_time}/assign", headers=world.staff,
                              json={"courier_id": idle[0]})
    assert r.status_code == 200, r.text
    k = await world.stats()
    assert k["orders_waiting"] == before["orders_waiting"] + 1
    assert k["couriers_idle"] == before["couriers_idle"] + 2
    assert k["median_assign_s"] is not None
    assert k["median_assign_s"] >= 1.0

    # The drawer's timeline: entered, queued, assigned, in time order.
    r = await world.http.get(f"/api/v1/fleet/orders/{on_time}/timeline", headers=world.staff)
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["state"], t["courier_id"]) == ("assigned", idle[0])
    assert [s["step"] for s in t["steps"]][-1] == "assigned"
    assert [s["at_ms"] for s in t["steps"]] == sorted(s["at_ms"] for s in t["steps"])
    # Ready at acceptance, not yet marked: expected by the time it entered dispatch.
    assert t["food_ready"] is False
    assert 0 < t["ready_at"] <= t["steps"][0]["at_ms"]
    r = await world.http.get(f"/api/v1/fleet/orders/{late}/timeline", headers=world.staff)
    assert r.json()["state"] == "waiting"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/fleet/stats"),
    ("GET", "/api/v1/fleet/chefs/nearby?lat=1&lng=1"),
    ("GET", "/api/v1/fleet/cells?cells=872a1072bffffff"),
    ("GET", "/api/v1/fleet/orders/x/timeline"),
])
@pytest.mark.parametrize(("role", "code"), [(None, 401), ("delivery", 403), ("customer", 403),
                                            ("chef", 403)])
async def test_console_reads_are_staff_only(world: World, method: str, path: str,
                                            role: str | None, code: int) -> None:
    """Every console read needs a staff token: none is 401, any other role 403."""
    headers = world.srv.auth("u-1", role) if role else {}
    r = await world.http.request(method, path, headers=headers)
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("query", "code"), [
    ("cells=", "bad_cells"),
    ("cells=nope", "bad_cell"),
    (f"cells={h3.latlng_to_cell(LAT, LNG, 9)}", "bad_cell"),  # res 9, not the heat res
    ("cells=" + ",".join([h3.latlng_to_cell(LAT, LNG, 7)] * 501), "bad_cells"),
])
async def test_cell_outlines_refuse_bad_cells(world: World, query: str, code: str) -> None:
    """Bad cell lists are a 400 problem naming the rule, never a 500."""
    r = await world.http.get(f"/api/v1/fleet/cells?{query}", headers=world.staff)
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith(code)


async def test_cell_outlines_and_chefs_nearby(world: World) -> None:
    """Outlines are the H3 boundary of each res-7 cell; chefs come from the chefs' index."""
    cell = h3.latlng_to_cell(LAT, LNG, 7)
    r = await world.http.get(f"/api/v1/fleet/cells?cells={cell}", headers=world.staff)
    assert r.status_code == 200, r.text
    (outline,) = r.json()["cells"]
    assert outline["cell"] == cell
    assert len(outline["boundary"]) == 6
    assert all(h3.latlng_to_cell(a, b, 5) == h3.cell_to_parent(cell, 5)
               for a, b in outline["boundary"])
    chef = f"chef-{uuid.uuid4().hex[:6]}"
    await world.srv.core.chefs.upsert([Located(chef, LAT + 0.003, LNG, now_ms())])  # type: ignore[attr-defined]
    r = await world.http.get(f"/api/v1/fleet/chefs/nearby?lat={LAT}&lng={LNG}&radius_m=2000",
                             headers=world.staff)
    assert r.status_code == 200, r.text
    found = [c for c in r.json()["couriers"] if c["courier_id"] == chef]
    assert found
    assert 300 < found[0]["distance_m"] < 370
    r = await world.http.get(f"/api/v1/fleet/chefs/nearby?lat=91&lng={LNG}", headers=world.staff)
    assert r.status_code == 400


async def test_timeline_of_unknown_order_is_404(world: World) -> None:
    """An order dispatch never saw is a 404 problem."""
    r = await world.http.get(f"/api/v1/fleet/orders/{uuid.uuid4()}/timeline",
                             headers=world.staff)
    assert r.status_code == 404
    assert r.json()["type"].endswith("not_found")


async def test_static_shell_and_config_are_public(world: World) -> None:
    """/console/ serves the shell without a token (it holds no data); the config names the
    commerce port and the optional tile URL; data endpoints still need the token."""
    r = await world.http.get("/console/")
    assert r.status_code == 200
    assert 'data-kpi="couriers-online"' in r.text
    r = await world.http.get("/console/js/map.js")
    assert r.status_code == 200
    assert "requestAnimationFrame" in r.text
    r = await world.http.get("/api/v1/console/config")
    assert r.status_code == 200
    assert r.json() == {"commerce_url": None,
                        "commerce_port": world.srv.settings.server.commerce_port,
                        "tile_url": "https://tiles.example.com/{z}/{x}/{y}.png",
                        "same_origin": False, "streets_url": None, "streets_bounds": None}
    assert (await world.http.get("/console/no-such-file.js")).status_code == 404


async def test_console_socket_positions_carry_courier_state(world: World) -> None:
    """On /ws/console a courier's position carries its dispatch state, and going offline
    (no new fix) re-sends it with the new state."""
    cid = await world.courier(LAT + 0.02, LNG + 0.02, online=True)
    url = f"{world.srv.ws_url}/ws/console?token={world.srv.token(*STAFF)}"
    d = 0.01
    bbox = [LNG + 0.02 - d, LAT + 0.02 - d, LNG + 0.02 + d, LAT + 0.02 + d]
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "SUBSCRIBE", "payload": {"bbox": bbox}}))

        async def status_of_courier(want: str) -> None:
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                p = m.get("payload", {})
                if m["type"] == "COURIER_POSITION" and p["courierId"] == cid and \
                        p.get("status") == want:
                    return

        await status_of_courier("idle")
        r = await world.http.put("/api/v1/delivery/availability",
                                 headers=world.srv.auth(cid, "delivery"), json={"online": False})
        assert r.json()["state"] == "offline"
        await status_of_courier("offline")


@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://127.0.0.1:8000", True),      # core's own origin: the default
    ("http://localhost:8000", True),
    ("https://evil.example.com", False),
])
async def test_commerce_answers_cors_for_the_console_origin_only(
    settings: Settings, origin: str, allowed: bool
) -> None:
    """Commerce lets the console's origin (core's, by default) call the login endpoint across
    origins; any other origin gets no Access-Control-Allow-Origin."""
    own = settings.replace(server__core_port=8000, console__origins="")
    async with AsyncTestClient(create_commerce_app(own)) as client:
        r = await client.options("/api/v1/auth/login", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        got = r.headers.get("access-control-allow-origin")
        assert (got == origin) is allowed, (r.status_code, dict(r.headers))
        r = await client.post("/api/v1/auth/login", headers={"Origin": origin},
                              json={"email": "nobody@example.com", "password": "x" * 10})
        assert r.status_code == 401
        assert (r.headers.get("access-control-allow-origin") == origin) is allowed
