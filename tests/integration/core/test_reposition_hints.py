"""Repositioning hints in production (DISPATCH_REPOSITION_HINTS) on real Redis and NATS: idle
couriers with fresh fixes in a cell without orders are hinted toward the neighbouring cell
whose kitchen's orders just entered dispatch; a courier reads only its own hint, the console
all of them; switched off, nobody gets one."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import h3
import httpx
import nats
import pytest

from api.settings import Settings
from dispatch.reposition import RepositionParams
from geo.cells import cell_center, cell_of
from streams.catalog import Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import ensure_streams, publish
from tests.integration.core.conftest import CoreServer, eventually, serve_core

P = RepositionParams()  # what production uses with the setting on
HOME = cell_of(45.4642, 9.19, P.cell_res)  # a city of its own
KITCHEN_CELL = sorted(h3.grid_ring(HOME, 1))[0]
KITCHEN = cell_center(KITCHEN_CELL)
STAFF = ("fm-r", "fleet_manager")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class World:
    def __init__(self, srv: CoreServer, http: httpx.AsyncClient, js: Any, names: Names) -> None:
        self.srv, self.http, self.js, self.names = srv, http, js, names

    async def idle_courier(self, i: int) -> str:
        cid = f"r-{uuid.uuid4().hex[:8]}"
        lat, lng = cell_center(HOME)
        h = self.srv.auth(cid, "delivery")
        r = await self.http.post("/api/v1/delivery/locations", headers=h, json={
            "fixes": [{"lat": lat + i * 1e-4, "lng": lng, "ts": now_ms()}]})
        assert r.json()["accepted"] == 1, r.text
        r = await self.http.put("/api/v1/delivery/availability", headers=h,
                                json={"online": True})
        assert r.json()["state"] == "idle", r.text
        return cid

    async def order(self) -> None:
        oid = str(uuid.uuid4())
        t = now_ms()
        ev = OrderStatusChanged(
            order_id=oid, order_number=f"HC{oid[:6]}", customer_id="cust-r", chef_id="chef-r",
            status="accepted", previous_status="pending", at_ms=t,
            pickup=LatLng(*KITCHEN), dropoff=LatLng(KITCHEN[0] + 0.01, KITCHEN[1]),
            ready_at_ms=t + 1_800_000, promised_at_ms=t + 3_600_000)
        await publish(self.js, self.names.order_event("status", oid), ev, msg_id=f"{oid}:acc")

    async def hints(self) -> dict[str, Any]:
        r = await self.http.get("/api/v1/fleet/hints", headers=self.srv.auth(*STAFF))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@contextlib.asynccontextmanager
async def hinted_core(settings: Settings, tag: str, **overrides: Any) -> AsyncIterator[World]:
    """A core of its own namespace with hints on (or as `overrides` say) and matching
    effectively off (orders stay waiting, couriers idle); its streams are deleted after."""
    ns = f"{settings.server.namespace}{tag}{uuid.uuid4().hex[:4]}"
    own = settings.replace(**{"server__namespace": ns, "dispatch__round_s": 3600.0,
                              "dispatch__reposition_hints": True, **overrides})
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


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    async with hinted_core(settings, "r") as w:
        yield w


async def test_idle_couriers_are_hinted_toward_new_demand_each_sees_its_own(
        world: World) -> None:
    """Four idle couriers in a cell without orders; six orders enter dispatch from a kitchen
    in the next cell (demand ~2.8 couriers' worth over the horizon): two couriers are hinted
    there (the deficit left after them is below one courier), each reads its own hint, the
    others read null; the console reads all of them with the demand behind them; a courier
    cannot read the console's list and staff have no courier hint."""
    couriers = [await world.idle_courier(i) for i in range(4)]
    for _ in range(6):
        await world.order()

    async def hinted() -> dict[str, Any] | None:
        body = await world.hints()
        return body if len(body["hints"]) == 2 else None

    body = await eventually(hinted, 10)
    assert isinstance(body, dict)
    assert body["enabled"] is True
    # Six orders of age ~0 over a 30-minute window with a 15-minute half-life predict
    # 6 x 900 / 974 orders in the next 15 minutes (`predict_demand`).
    assert body["demand"][KITCHEN_CELL] == pytest.approx(6 * 900 / 974, rel=0.02)
    hinted_ids = {h["courier_id"] for h in body["hints"]}
    assert hinted_ids < set(couriers)
    for h in body["hints"]:
        assert (h["cell"], h["from_cell"], h["supply"], h["from_supply"]) == (
            KITCHEN_CELL, HOME, 0, 4)
        assert P.min_move_m <= h["dist_m"] <= P.max_move_m

    for cid in couriers:
        r = await world.http.get("/api/v1/delivery/hint",
                                 headers=world.srv.auth(cid, "delivery"))
        assert r.status_code == 200, r.text
        hint = r.json()["hint"]
        if cid in hinted_ids:
            assert hint["courier_id"] == cid
            assert hint["cell"] == KITCHEN_CELL
        else:
            assert hint is None

    r = await world.http.get("/api/v1/fleet/hints",
                             headers=world.srv.auth(couriers[0], "delivery"))
    assert r.status_code == 403
    r = await world.http.get("/api/v1/delivery/hint", headers=world.srv.auth(*STAFF))
    assert r.status_code == 403
    r = await world.http.get("/api/v1/delivery/hint")
    assert r.status_code == 401


async def test_hints_are_on_by_default_and_switched_off_nobody_gets_one(
        settings: Settings, core_server: CoreServer, http: httpx.AsyncClient) -> None:
    """The default core serves hints; with DISPATCH_REPOSITION_HINTS off the console's list
    is empty and says so, and a courier reads null."""
    r = await http.get("/api/v1/fleet/hints", headers=core_server.auth(*STAFF))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True
    async with hinted_core(settings, "o", dispatch__reposition_hints=False) as w:
        cid = await w.idle_courier(0)
        await w.order()
        r = await w.http.get("/api/v1/fleet/hints", headers=w.srv.auth(*STAFF))
        assert r.status_code == 200, r.text
        assert r.json() == {"enabled": False, "hints": [], "demand": {}}
        r = await w.http.get("/api/v1/delivery/hint", headers=w.srv.auth(cid, "delivery"))
        assert r.status_code == 200, r.text
        assert r.json()["hint"] is None
