"""Map matching off the ingest path and live traffic, in a running core on the Monaco road
data: a courier's fixes become a snapped trail on the roads, and its slow ride becomes the
road speeds core routes with (re-customised and swapped in while it serves)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from api.settings import Settings
from api.simulator.city import Point
from api.simulator.movement import Leg, gps_jitter
from geo.distance import haversine_m
from geo.travel import Vehicle
from roads.model import RoadTravelModel
from tests.conftest import BuiltRoads
from tests.integration.core.conftest import CoreServer, serve_core
from tests.monaco import HARBOUR_NORTH, HARBOUR_SOUTH

ROUTE = "/api/v1/routing/route"
CRAWL_MPS = 2.0
CRAWL_S = 500
FIX_EVERY_S = 5


@pytest.fixture(scope="module")
async def matching_core(settings: Settings, monaco_roads: BuiltRoads
                        ) -> AsyncIterator[CoreServer]:
    """Matching every 0.2 s in batches of 5, learnt speeds applied every second (one
    sample is enough): the production cadence is seconds and minutes."""
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with serve_core(settings.replace(
            roads__path=monaco_roads.directory, roads__match_interval_s=0.2,
            roads__match_batch=5, roads__traffic_interval_s=1.0,
            roads__traffic_min_samples=1.0)) as srv:
        yield srv


def _crawl(model: RoadTravelModel) -> list[tuple[float, float, int]]:
    """A car crawling the harbour quays from the north side at 2 m/s for 500 s, a fix every
    5 s with 5 m of GPS noise, ending now: (lat, lng, ts ms)."""
    route = model.route(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.CAR)
    assert route is not None
    path = tuple(Point(lat, lng) for lng, lat in route.coordinates)
    length_m = sum(haversine_m(p.lat, p.lng, q.lat, q.lng) for p, q in itertools.pairwise(path))
    leg = Leg(start=path[0], end=path[-1], duration_s=length_m / CRAWL_MPS, path=path,
              road_speed_mps=CRAWL_MPS)
    rng = random.Random(4)
    end_ms = int(time.time() * 1000)
    out = []
    for t in range(0, CRAWL_S + 1, FIX_EVERY_S):
        p = gps_jitter(leg.position(t), rng, 5.0)
        out.append((p.lat, p.lng, end_ms - (CRAWL_S - t) * 1000))
    return out


async def test_fixes_are_matched_to_a_trail_and_slow_rides_slow_the_roads(
        matching_core: CoreServer, monaco_roads: BuiltRoads) -> None:
    """A car's 101 noisy fixes along the quays (HTTP batches): the fleet console reads its
    trail, every matched position on a car road (within 2 m; OSRM's tidy keeps one fix in
    ~10 m) and the newest near its last fix. Its crawl is learnt: within seconds the car
    route between the harbour's sides costs more than before (core re-customised its data
    and swapped it in, still serving).
    A courier never matched has no trail (404); a customer may not read trails (403)."""
    srv = matching_core
    model = RoadTravelModel.open(monaco_roads.directory)
    try:
        fixes = _crawl(model)
        fm = srv.auth("fm-1", "fleet_manager")
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as http:
            params = {"from_lat": HARBOUR_NORTH[0], "from_lng": HARBOUR_NORTH[1],
                      "to_lat": HARBOUR_SOUTH[0], "to_lng": HARBOUR_SOUTH[1], "vehicle": "car"}
            r = await http.get(ROUTE, params=params, headers=fm)
            before_s = r.json()["duration_s"]
            h = srv.auth("crawler-1", "delivery")
            body = [{"lat": lat, "lng": lng, "ts": ts, "accuracy": 5.0}
                    for lat, lng, ts in fixes]
            r = await http.post("/api/v1/delivery/locations", headers=h,
                                json={"fixes": body[:1]})
            assert r.json()["accepted"] == 1, r.text
            r = await http.put("/api/v1/delivery/availability", headers=h,
                               json={"online": True, "vehicle": "car"})
            assert r.status_code == 200, r.text
            await asyncio.sleep(1.5)  # the matcher learns the vehicle before the batches
            for k in range(1, len(body), 20):
                r = await http.post("/api/v1/delivery/locations", headers=h,
                                    json={"fixes": body[k:k + 20]})
                assert r.json()["accepted"] == len(body[k:k + 20]), r.text

            trail: dict[str, object] = {}
            for _ in range(100):
                r = await http.get("/api/v1/fleet/couriers/crawler-1/trail", headers=fm)
                # Done when the last batch is matched (OSRM's tidy drops fixes ~10 m apart).
                if r.status_code == 200 and r.json()["snapped"]["ts"] >= fixes[-6][2]:
                    trail = r.json()
                    break
                await asyncio.sleep(0.2)
            assert trail, r.text
            coords = trail["trail"]["coordinates"]  # type: ignore[index]
            assert len(coords) == trail["points"] >= 25
            for lng, lat in coords:
                near = model.nearest(lat, lng, Vehicle.CAR)
                assert near is not None
                assert near[2] < 2.0
            snapped = trail["snapped"]
            assert isinstance(snapped, dict)
            assert snapped["ts"] <= fixes[-1][2]
            assert haversine_m(snapped["lat"], snapped["lng"], *fixes[-1][:2]) < 30

            after_s = before_s
            for _ in range(50):
                r = await http.get(ROUTE, params=params, headers=fm)
                after_s = r.json()["duration_s"]
                if after_s > before_s + 20:
                    break
                await asyncio.sleep(0.2)
            assert after_s > before_s + 20, (before_s, after_s)

            r = await http.get("/api/v1/fleet/couriers/nobody/trail", headers=fm)
            assert r.status_code == 404
            assert r.json()["type"].endswith("not_found")
            r = await http.get("/api/v1/fleet/couriers/crawler-1/trail",
                               headers=srv.auth("cust-1", "customer"))
            assert r.status_code == 403
    finally:
        model.close()
