"""POST /api/v1/routing/optimize: feasible routes with per-stop ETAs; bad input is a 4xx."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest

from api.auth import TokenCodec
from api.settings import Settings
from tests.integration.core.conftest import CoreServer, eventually, spawn_core

LAT, LNG = 12.9716, 77.5946


def staff(settings: Settings, role: str = "admin") -> dict[str, str]:
    """The Authorization header of a staff user, for servers in their own process."""
    assert settings.server.jwt_secret
    return {"Authorization": f"Bearer {TokenCodec(settings.server.jwt_secret).issue('fm', role)}"}


def metric(metrics: str, line_start: str) -> float:
    return sum(float(x[len(line_start):]) for x in metrics.splitlines()
               if x.startswith(line_start))


async def admitted(client: httpx.AsyncClient, seconds: float) -> None:
    """Wait until the solver pool holds ``seconds`` of admitted solves (its queued-seconds
    gauge): the requests sent so far are admitted and waiting or running."""
    async def queued() -> bool:
        text = (await client.get("/metrics")).text
        return metric(text, "routing_solver_queued_seconds ") >= seconds

    await eventually(queued, 20)


def request(n_orders: int = 3, **extra: Any) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    orders = [{"order_id": f"o{i}", "pickup": {"lat": LAT + 0.004 * i, "lng": LNG},
               "dropoff": {"lat": LAT + 0.004 * i, "lng": LNG + 0.01},
               "ready_at": now + 300_000, "deliver_by": now + 3_600_000}
              for i in range(n_orders)]
    return {"couriers": [{"courier_id": "a", "lat": LAT, "lng": LNG - 0.005},
                         {"courier_id": "b", "lat": LAT + 0.01, "lng": LNG, "vehicle": "car"}],
            "orders": orders, "time_limit_s": 0.5, **extra}


async def test_optimize_returns_feasible_routes_with_etas(core_server: CoreServer,
                                                          http: httpx.AsyncClient) -> None:
    """Every order is served once, pickup before drop-off on the same courier, ETAs rise
    along each route, and no pickup starts before the food is ready (wait covers it)."""
    r = await http.post("/api/v1/routing/optimize", json=request(),
                        headers=core_server.auth("fm", "fleet_manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    seen: dict[str, list[str]] = {}
    for route in body["routes"]:
        etas = [s["eta_s"] for s in route["stops"]]
        assert etas == sorted(etas)
        kinds_by_order: dict[str, list[str]] = {}
        for s in route["stops"]:
            kinds_by_order.setdefault(s["order_id"], []).append(s["kind"])
            if s["kind"] == "pickup":
                assert s["eta_s"] + s["wait_s"] >= 299  # ready 300 s from the request
        for order_id, kinds in kinds_by_order.items():
            assert kinds == ["pickup", "dropoff"]
            assert order_id not in seen
            seen[order_id] = kinds
    assert set(seen) == {"o0", "o1", "o2"}
    assert body["couriers_used"] == len(body["routes"])


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b: b["couriers"][0].update(lat=100), 400),
        (lambda b: b.update(orders=[]), 422),
        (lambda b: b.update(time_limit_s=60), 400),
        (lambda b: b["orders"][0].update(deliver_by=1), 422),
        (lambda b: b["orders"][1].update(order_id="o0"), 422),
        (lambda b: b["orders"][0].update(deliver_by=b["orders"][0]["ready_at"] + 1000), 422),
    ],
    ids=["bad-lat", "no-orders", "budget-too-big", "past-deadline", "duplicate-id",
         "impossible-window"],
)
async def test_optimize_bad_input_is_4xx(core_server: CoreServer, http: httpx.AsyncClient,
                                         mutate: Any, status: int) -> None:
    """Invalid or impossible requests are a 4xx problem+json, never a 500."""
    body = request()
    mutate(body)
    r = await http.post("/api/v1/routing/optimize", json=body,
                        headers=core_server.auth("fm", "fleet_manager"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_optimize_size_limit_and_roles(core_server: CoreServer,
                                             http: httpx.AsyncClient) -> None:
    """Over 100 orders is refused with 413; couriers and customers may not optimise."""
    r = await http.post("/api/v1/routing/optimize", json=request(101),
                        headers=core_server.auth("fm", "admin"))
    assert r.status_code == 413
    for role in ("delivery", "customer"):
        r = await http.post("/api/v1/routing/optimize", json=request(),
                            headers=core_server.auth("u", role))
        assert r.status_code == 403


async def test_server_stays_responsive_while_solving(settings: Settings) -> None:
    """A 2 s solve runs in a worker process: /health still answers quickly meanwhile (OR-Tools
    holds the GIL, so a solve in a thread would freeze every handler for the whole budget).
    The server runs in its own process so the test's clock is not frozen with it."""
    auth = staff(settings, "fleet_manager")
    proc = await spawn_core(settings)
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
            solving = asyncio.create_task(client.post(
                "/api/v1/routing/optimize", json=request(8, time_limit_s=2.0),
                headers=auth))
            await admitted(client, 2.0)
            slowest, answered = 0.0, []
            while not solving.done():  # /health, again and again for the whole solve
                started = time.perf_counter()
                answered.append((await client.get("/health")).status_code)
                slowest = max(slowest, time.perf_counter() - started)
                await asyncio.sleep(0.05)
            r = await solving
    finally:
        await proc.stop()
    assert r.status_code == 200, r.text
    assert r.json()["solve_ms"] >= 1500  # the solve really used its budget meanwhile
    assert len(answered) > 1
    assert set(answered) == {200}
    assert slowest < 0.5, f"/health took {slowest:.2f} s during a solve"


async def test_a_busy_solver_refuses_with_retry_after_and_recovers(settings: Settings) -> None:
    """With ROUTING_MAX_WAIT_S=1 and one solver process, a 2 s solve in progress makes the
    next requests wait over a second: they are refused at once with 429 problem+json and a
    Retry-After, not queued. Once the solve is over, a request is served again."""
    auth = staff(settings)
    proc = await spawn_core(settings, ROUTING_MAX_WAIT_S="1")
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
            solving = asyncio.create_task(client.post(
                "/api/v1/routing/optimize", json=request(4, time_limit_s=2.0), headers=auth))
            await admitted(client, 2.0)  # it holds the solver for 2 s
            refused = await asyncio.gather(*(
                client.post("/api/v1/routing/optimize", json=request(2, time_limit_s=0.5),
                            headers=auth) for _ in range(2)))
            first = await solving
            again = await client.post("/api/v1/routing/optimize",
                                      json=request(2, time_limit_s=0.5), headers=auth)
    finally:
        await proc.stop()
    assert first.status_code == 200, first.text
    for r in refused:
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"] == "urn:homechef:problem:solver_busy"
        assert int(r.headers["retry-after"]) == r.json()["retry_after_s"] >= 1
    assert again.status_code == 200, again.text


def solves(metrics: str, outcome: str) -> float:
    return metric(metrics, f'routing_solves_total{{outcome="{outcome}"}} ')


async def test_a_client_that_leaves_gives_up_its_place_in_the_solver_queue(
    settings: Settings,
) -> None:
    """Requests whose clients disconnect while their solves wait are abandoned (counted in
    /metrics), and their queued seconds are freed: with ROUTING_MAX_WAIT_S=7, three 2 s
    solves queued behind a running 2 s one would otherwise make the next request wait 8 s."""
    auth = staff(settings)
    proc = await spawn_core(settings, ROUTING_MAX_WAIT_S="7")
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
            running = asyncio.create_task(client.post(
                "/api/v1/routing/optimize", json=request(4, time_limit_s=2.0), headers=auth))
            await admitted(client, 2.0)
            leaving = [asyncio.create_task(client.post(
                "/api/v1/routing/optimize", json=request(2, time_limit_s=2.0), headers=auth))
                for _ in range(3)]
            await admitted(client, 8.0)  # all three admitted and waiting
            for task in leaving:
                task.cancel()  # the client closes those connections
            for task in leaving:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            async def abandoned() -> bool:
                return solves((await client.get("/metrics")).text, "abandoned") == 3

            await eventually(abandoned, 10)
            # Only the solves already handed to the worker still count (the running one and
            # at most two more): 6 s of wait at most, so this one is admitted...
            served = await client.post("/api/v1/routing/optimize",
                                       json=request(2, time_limit_s=0.5), headers=auth)
            first = await running
            metrics = (await client.get("/metrics")).text
    finally:
        await proc.stop()
    assert first.status_code == 200, first.text
    assert served.status_code == 200, served.text
    assert solves(metrics, "solved") == 2
    assert solves(metrics, "busy") == 0
