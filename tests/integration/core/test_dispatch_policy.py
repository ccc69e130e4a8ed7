"""DISPATCH_POLICY picks the matcher of a round: on a city where nearest-first is not the
cheapest plan, `optimal` and `greedy` send different couriers; core reports its policy."""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import nats
import pytest

from api.settings import Settings
from geo.cells import region_of
from streams.catalog import Names
from streams.events import LatLng, OrderStatusChanged
from streams.jetstream import ensure_streams, publish
from tests.integration.core.conftest import CoreServer, eventually, serve_core

M_PER_DEG = 111_320.0


def north(lat: float, lng: float, metres: float) -> tuple[float, float]:
    return lat + metres / M_PER_DEG, lng


async def _online(srv: CoreServer, http: httpx.AsyncClient, at: tuple[float, float]) -> str:
    cid = f"pol-{uuid.uuid4().hex[:8]}"
    h = srv.auth(cid, "delivery")
    r = await http.post("/api/v1/delivery/locations", headers=h, json={
        "fixes": [{"lat": at[0], "lng": at[1], "ts": time.time_ns() // 1_000_000}]})
    assert r.json()["accepted"] == 1
    r = await http.put("/api/v1/delivery/availability", headers=h,
                       json={"online": True, "vehicle": "bike"})
    assert r.json()["state"] == "idle"

    async def indexed() -> bool:
        return await srv.core.couriers.position(cid) is not None  # type: ignore[attr-defined]
    await eventually(indexed)
    return cid


async def _plan(settings: Settings, policy: str) -> tuple[dict[str, str], str]:
    """Run one round by hand (the background loop sleeps for an hour) and return
    {order label: courier label} plus the policy core reports."""
    ns = f"{settings.server.namespace}y{uuid.uuid4().hex[:4]}"
    s = settings.replace(server__namespace=ns, dispatch__policy=policy, dispatch__round_s=3600.0)
    nc = await nats.connect(servers=settings.stores.nats_servers)
    names = Names(ns)
    js = nc.jetstream()
    await ensure_streams(js, names)
    lat, lng = 30.0, -100.0  # the namespace keeps other tests' couriers out
    try:
        async with serve_core(s) as srv, httpx.AsyncClient(base_url=srv.url, timeout=10) as http:
            # c1 at 0 m, c2 at +1000 m; order A's chef at +400 m, order B's at -800 m.
            c1 = await _online(srv, http, (lat, lng))
            c2 = await _online(srv, http, north(lat, lng, 1000))
            t = time.time_ns() // 1_000_000
            orders = {}
            for label, chef_m, ready_ms in (("A", 400, t - 2000), ("B", -800, t - 1000)):
                oid = str(uuid.uuid4())
                orders[oid] = label
                await publish(js, names.order_event("status", oid), OrderStatusChanged(
                    order_id=oid, order_number=label, customer_id="cust", chef_id="chef",
                    status="accepted", at_ms=t, pickup=LatLng(*north(lat, lng, chef_m)),
                    dropoff=LatLng(*north(lat, lng, chef_m + 100)), ready_at_ms=ready_ms,
                    promised_at_ms=t + 3_600_000), msg_id=oid)
            region = region_of(lat, lng)
            store = srv.core.dispatch.store  # type: ignore[attr-defined]

            async def queued() -> bool:
                due = await store.due_orders(region, time.time_ns() // 1_000_000, 10)
                return set(due) == set(orders)
            await eventually(queued)
            sent = await srv.core.dispatch.run_round(region)  # type: ignore[attr-defined]
            assert sent == 2
            plan = {}
            for label, cid in (("c1", c1), ("c2", c2)):
                offer = await store.offer_info((await store.courier(cid)).offer_id)
                plan[orders[offer.order_id]] = label
            fm = srv.auth("fm-policy", "fleet_manager")
            reported = (await http.get("/api/v1/fleet/dispatch", headers=fm)).json()["policy"]
            assert (await http.get("/api/v1/fleet/dispatch",
                                   headers=srv.auth(c1, "delivery"))).status_code == 403
            return plan, reported
    finally:
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await js.delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()


@pytest.mark.timeout(90)
async def test_policy_setting_changes_the_matcher(settings: Settings) -> None:
    """Nearest-first gives A (ready first) the nearer c1 and leaves B the far c2
    (rides 400 m + 1800 m); the optimum swaps them (600 m + 800 m)."""
    optimal, reported_o = await _plan(settings, "optimal")
    greedy, reported_g = await _plan(settings, "greedy")
    assert optimal == {"A": "c2", "B": "c1"}
    assert greedy == {"A": "c1", "B": "c2"}
    assert (reported_o, reported_g) == ("optimal", "greedy")
