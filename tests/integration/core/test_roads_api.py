"""Core with ROADS set: /health names the live travel model, GET /api/v1/routing/route
answers one leg along the roads (for staff and couriers) with problem+json for bad input,
and the simulator's couriers ride those routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.settings import Settings
from api.simulator.agents import Behaviour, CourierAgent
from api.simulator.city import CourierSpec, Point
from api.simulator.clients import Account
from api.simulator.run import rides_roads
from api.simulator.world import World
from geo.travel import HaversineTravelModel, Vehicle
from tests.conftest import BuiltRoads
from tests.integration.core.conftest import CoreServer, serve_core
from tests.monaco import FAR_OUT, HARBOUR_NORTH, HARBOUR_SOUTH

ROUTE = "/api/v1/routing/route"


@pytest.fixture(scope="module")
async def roads_server(settings: Settings, monaco_roads: BuiltRoads) -> AsyncIterator[CoreServer]:
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with serve_core(settings.replace(roads__path=monaco_roads.directory)) as srv:
        yield srv


@pytest.fixture
async def roads_http(roads_server: CoreServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=roads_server.url, timeout=10) as client:
        yield client


def leg(a: tuple[float, float], b: tuple[float, float], **extra: str) -> dict[str, object]:
    return {"from_lat": a[0], "from_lng": a[1], "to_lat": b[0], "to_lng": b[1], **extra}


async def test_health_says_which_travel_model_is_live(
        roads_http: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    roads = (await roads_http.get("/health")).json()["travel"]
    assert roads["model"] == "roads"
    assert "monaco.osm.pbf" in roads["detail"]
    straight = (await http.get("/health")).json()["travel"]
    assert straight["model"] == "straight-line"


async def test_a_courier_gets_the_leg_round_the_harbour(roads_server: CoreServer,
                                                        roads_http: httpx.AsyncClient) -> None:
    """289 m across the water, ~12 min by bike along the quays; the geometry is a GeoJSON
    LineString from the first point to the second, over the roads."""
    r = await roads_http.get(ROUTE, params=leg(HARBOUR_NORTH, HARBOUR_SOUTH, vehicle="bike"),
                             headers=roads_server.auth("courier-1", "delivery"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "roads"
    assert body["vehicle"] == "bike"
    assert body["duration_s"] > 600
    assert body["distance_m"] > 1000
    geometry = body["geometry"]
    assert geometry["type"] == "LineString"
    coords = geometry["coordinates"]
    assert len(coords) > 10
    assert coords[0] == [HARBOUR_NORTH[1], HARBOUR_NORTH[0]]
    assert coords[-1] == [HARBOUR_SOUTH[1], HARBOUR_SOUTH[0]]
    assert all(7.40 < lng < 7.45 and 43.72 < lat < 43.75 for lng, lat in coords)


async def test_staff_may_ask_customers_may_not(roads_server: CoreServer,
                                               roads_http: httpx.AsyncClient) -> None:
    params = leg(HARBOUR_NORTH, HARBOUR_SOUTH)
    ok = await roads_http.get(ROUTE, params=params,
                              headers=roads_server.auth("fm", "fleet_manager"))
    assert ok.status_code == 200
    assert ok.json()["vehicle"] == "bike"  # the default
    refused = await roads_http.get(ROUTE, params=params,
                                   headers=roads_server.auth("c1", "customer"))
    assert refused.status_code == 403
    anonymous = await roads_http.get(ROUTE, params=params)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(("params", "status", "code"), [
    (leg((95.0, 7.42), HARBOUR_SOUTH), 400, None),
    (leg(HARBOUR_NORTH, HARBOUR_SOUTH, vehicle="boat"), 400, None),
    ({"from_lat": 43.73, "from_lng": 7.42}, 400, None),
    (leg((float("nan"), 7.42), HARBOUR_SOUTH), 400, None),
    (leg(HARBOUR_NORTH, FAR_OUT), 422, "unreachable"),
])
async def test_bad_input_is_a_problem(roads_server: CoreServer, roads_http: httpx.AsyncClient,
                                      params: dict[str, object], status: int,
                                      code: str | None) -> None:
    r = await roads_http.get(ROUTE, params=params, headers=roads_server.auth("fm", "admin"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert r.json()["type"] == f"urn:homechef:problem:{code}"


async def test_without_roads_the_leg_is_the_straight_line(core_server: CoreServer,
                                                          http: httpx.AsyncClient) -> None:
    r = await http.get(ROUTE, params=leg(HARBOUR_NORTH, HARBOUR_SOUTH, vehicle="car"),
                       headers=core_server.auth("courier-1", "delivery"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "straight-line"
    assert body["duration_s"] < 100
    assert body["geometry"]["coordinates"] == [[HARBOUR_NORTH[1], HARBOUR_NORTH[0]],
                                               [HARBOUR_SOUTH[1], HARBOUR_SOUTH[0]]]


async def test_simulated_couriers_ride_core_routes(roads_server: CoreServer,
                                                   core_server: CoreServer) -> None:
    """The simulator sees from /health that core rides the roads, and a courier's ride is
    then core's route (as that courier): round the harbour, ending at the door."""
    async with httpx.AsyncClient(base_url=roads_server.url, timeout=10) as core, \
            httpx.AsyncClient(base_url=core_server.url, timeout=10) as straight:
        assert await rides_roads(core)
        assert not await rides_roads(straight)
        spec = CourierSpec(index=0, vehicle=Vehicle.BIKE, start=Point(*HARBOUR_NORTH))
        agent = CourierAgent(spec, core, core, roads_server.ws_url, World(), Behaviour(), 1,
                             HaversineTravelModel(), roads=True)
        agent.account = Account(core, {"user": {"id": "sim-c0", "role": "delivery"},
                                       "access_token": roads_server.token("sim-c0", "delivery"),
                                       "refresh_token": ""})
        leg = await agent._plan_ride(Point(*HARBOUR_NORTH), Point(*HARBOUR_SOUTH))
    assert len(leg.path) > 10
    assert leg.start == Point(*HARBOUR_NORTH)
    assert leg.end == Point(*HARBOUR_SOUTH)
    assert leg.duration_s > 600  # the straight line would take ~90 s
    assert leg.distance_m > 1000
