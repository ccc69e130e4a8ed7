"""The streets under the maps: with ROADS, core serves the road graph as vector tiles (public:
OpenStreetMap data) and its config points the pages at them; without roads, neither."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import pytest

from api.settings import Settings
from tests.conftest import BuiltRoads
from tests.integration.core.conftest import CoreServer, serve_core
from tests.monaco import HARBOUR_SOUTH


def tile_of(lat: float, lng: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return (int((lng + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


@pytest.fixture(scope="module")
async def roads_core(settings: Settings, monaco_roads: BuiltRoads) -> AsyncIterator[CoreServer]:
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with serve_core(settings.replace(roads__path=monaco_roads.directory)) as srv:
        yield srv


async def test_streets_are_the_road_graph_as_vector_tiles(roads_core: CoreServer) -> None:
    async with httpx.AsyncClient(base_url=roads_core.url, timeout=10) as http:
        config = (await http.get("/api/v1/console/config")).json()
        assert config["streets_url"] == "/api/v1/routing/streets/{z}/{x}/{y}"
        west, south, east, north = config["streets_bounds"]
        assert west < HARBOUR_SOUTH[1] < east
        assert south < HARBOUR_SOUTH[0] < north

        x, y = tile_of(*HARBOUR_SOUTH, 15)
        r = await http.get(f"/api/v1/routing/streets/15/{x}/{y}")  # no token: public
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert r.headers["content-encoding"] == "gzip"
        assert b"speeds" in r.content  # httpx inflated it: the MVT's road-segment layer
        assert len(r.content) > 10_000  # the port's streets, not an empty tile
        plain = await http.get(f"/api/v1/routing/streets/15/{x}/{y}",
                               headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == r.content

        wide = await http.get(f"/api/v1/routing/streets/8/{x >> 7}/{y >> 7}")
        assert wide.status_code == 200
        assert wide.content == b""  # below zoom 12: an empty tile, not a region's graph
        for bad in ("15/99999/1", "19/1/1", "15/-1/3"):
            refused = await http.get(f"/api/v1/routing/streets/{bad}")
            assert refused.status_code in (400, 404), bad
            assert refused.headers["content-type"].startswith("application/problem+json"), bad


async def test_without_roads_there_are_no_streets(core_server: CoreServer,
                                                  http: httpx.AsyncClient) -> None:
    config = (await http.get("/api/v1/console/config")).json()
    assert config["streets_url"] is None
    r = await http.get("/api/v1/routing/streets/15/17060/11948")
    assert r.status_code == 404
    assert r.json()["type"].endswith("no_roads")
