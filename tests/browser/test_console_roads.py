"""The demo on real roads, as the fleet manager sees it: the simulator's couriers (cruising
the Monaco demo city, placed on its streets) move along the streets on the console's map."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.settings import Settings
from api.simulator.agents import Behaviour
from api.simulator.cities import CITIES
from api.simulator.city import CityConfig
from api.simulator.run import Endpoints, SimConfig, simulate
from geo.distance import haversine_m
from geo.travel import Vehicle
from roads.model import RoadTravelModel
from tests.browser.conftest import Console, serve_console
from tests.conftest import BuiltRoads

COURIERS = 5
SAMPLES = 8
NEAR_ROAD_M = 25.0


@pytest.fixture(scope="module")
async def roads_console(settings: Settings, monaco_roads: BuiltRoads) -> AsyncIterator[Console]:
    """Core rides the session's Monaco road data; dispatch is quiet (no orders anyway)."""
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with serve_console(settings, dispatch__round_s=3600.0,
                             roads__path=monaco_roads.directory) as served:
        yield served


async def test_demo_couriers_move_along_the_streets(roads_console: Console, browser: Any,
                                                    monaco_roads: BuiltRoads) -> None:
    """Every courier position the console shows, sampled while the demo's couriers cruise
    the streets of Monaco (core's routes, ridden with stops and GPS noise), lies within
    25 m of a road, and the couriers really move (some by more than 25 m)."""
    monaco = CITIES["monaco"]
    config = SimConfig(
        city=CityConfig(seed=5, center=monaco.center, radius_m=600.0, chefs=1,
                        couriers=COURIERS, customers=1),
        orders_per_min=0.0, duration_s=None, drain_s=0.0, progress_s=3600.0,
        behaviour=Behaviour(wander_m=400.0, wander_pause_s=(0.2, 1.0),
                            fix_interval_s=(0.8, 1.2)),
        roads=monaco_roads.directory)
    stop = asyncio.Event()
    c = roads_console
    run = asyncio.create_task(simulate(
        Endpoints(core_url=c.core.url, commerce_url=c.commerce_url, admin_email=c.email,
                  admin_password=c.password), config, echo=lambda _line: None, stop=stop))
    model = RoadTravelModel.open(monaco_roads.directory)
    errors: list[str] = []
    try:
        context = await browser.new_context(viewport={"width": 1000, "height": 700})
        page = await context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(c.url)
        await page.fill("#login-email", c.email)
        await page.fill("#login-password", c.password)
        await page.click("#login-submit")
        await page.locator("#app").wait_for(state="visible", timeout=10_000)
        await page.wait_for_function(
            f"Number(document.getElementById('map').dataset.courierCount) >= {COURIERS}",
            timeout=30_000)
        samples: list[dict[str, tuple[float, float]]] = []
        for _ in range(SAMPLES):
            seen = await page.evaluate(
                "Array.from(window.hcConsole.scene.couriers.keys())"
                ".map((id) => [id, window.hcConsole.courier(id)])")
            samples.append({cid: (p["lat"], p["lng"]) for cid, p in seen})
            await asyncio.sleep(1.0)
        await context.close()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(run, 30)
    assert errors == [], errors

    off_road = []
    for sample in samples:
        for cid, (lat, lng) in sample.items():
            to_road = min((n[2] for n in (model.nearest(lat, lng, Vehicle.CAR),
                                         model.nearest(lat, lng, Vehicle.BIKE))
                           if n is not None), default=float("inf"))
            if to_road > NEAR_ROAD_M:
                off_road.append((cid, lat, lng, round(to_road, 1)))
    model.close()
    assert sum(len(s) for s in samples) >= COURIERS * SAMPLES
    assert off_road == []
    first, last = samples[0], samples[-1]
    moved = [haversine_m(*first[cid], *last[cid]) for cid in first if cid in last]
    assert max(moved) > NEAR_ROAD_M, moved
