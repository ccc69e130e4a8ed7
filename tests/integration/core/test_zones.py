"""Service zones: staff CRUD with validated GeoJSON; fixes outside every zone are accepted
but flagged (counted), never refused."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.integration.core.conftest import CoreServer

SQUARE = {"type": "Polygon", "coordinates": [[[77.50, 12.90], [77.70, 12.90], [77.70, 13.05],
                                              [77.50, 13.05], [77.50, 12.90]]]}


async def outside_count(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("gps_fixes_outside_zones_total "))
    return float(line.split()[1])


async def test_zone_crud_and_outside_fixes_are_flagged(core_server: CoreServer,
                                                       http: httpx.AsyncClient) -> None:
    """Create → list → get → update → delete; while the zone exists a fix outside it is
    accepted and counted as outside, a fix inside is not."""
    admin = core_server.auth("admin-1", "admin")
    r = await http.post("/api/v1/fleet/zones", json={"name": "BLR", "geometry": SQUARE},
                        headers=admin)
    assert r.status_code == 201, r.text
    zone = r.json()
    assert zone["cells"] > 1000
    zid = zone["id"]
    try:
        assert zid in {z["id"] for z in (await http.get("/api/v1/fleet/zones",
                                                         headers=admin)).json()["data"]}
        assert (await http.get(f"/api/v1/fleet/zones/{zid}", headers=admin)).json()["name"] == "BLR"
        courier = f"c-zone-{uuid.uuid4().hex[:6]}"
        t = time.time_ns() // 1_000_000
        before = await outside_count(http)
        r = await http.post("/api/v1/delivery/locations",
                            headers=core_server.auth(courier, "delivery"),
                            json={"fixes": [{"lat": 12.97, "lng": 77.59, "ts": t - 500_000},
                                            {"lat": 13.20, "lng": 77.59, "ts": t}]})
        assert r.json() == {"accepted": 2, "rejected": []}
        assert await outside_count(http) == before + 1
        r = await http.put(f"/api/v1/fleet/zones/{zid}", headers=admin,
                           json={"name": "BLR-2", "geometry": SQUARE, "active": False})
        assert r.json()["name"] == "BLR-2"
        assert r.json()["active"] is False
    finally:
        assert (await http.delete(f"/api/v1/fleet/zones/{zid}", headers=admin)).status_code == 204
    assert (await http.get(f"/api/v1/fleet/zones/{zid}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("geometry", "code"),
    [
        ({"type": "Point", "coordinates": [77.5, 12.9]}, "zone_unsupported_type"),
        ({"type": "Polygon", "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0]]]},
         "zone_ring_too_short"),
        ({"type": "Polygon", "coordinates": [[[77.5, 12.9], [77.6, 12.9], [77.6, 13.0],
                                              [77.5, 13.1]]]}, "zone_ring_not_closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
         "zone_invalid_geometry"),
        ({"type": "Polygon", "coordinates": [[[200, 0], [201, 1], [201, 0], [200, 0]]]},
         "zone_out_of_range"),
    ],
    ids=["point", "short-ring", "open-ring", "bow-tie", "out-of-range"],
)
async def test_invalid_zone_geometry_is_422(core_server: CoreServer, http: httpx.AsyncClient,
                                            geometry: dict[str, object], code: str) -> None:
    """Bad GeoJSON is refused with a reason code; nothing is stored."""
    admin = core_server.auth("admin-1", "admin")
    before = (await http.get("/api/v1/fleet/zones", headers=admin)).json()["total"]
    r = await http.post("/api/v1/fleet/zones", json={"name": "bad", "geometry": geometry},
                        headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith(code)
    assert (await http.get("/api/v1/fleet/zones", headers=admin)).json()["total"] == before


@pytest.mark.parametrize(("role", "status"), [("customer", 403), ("delivery", 403),
                                              ("chef", 403), ("fleet_manager", 200)])
async def test_zones_are_staff_only(core_server: CoreServer, http: httpx.AsyncClient,
                                    role: str, status: int) -> None:
    """Only fleet managers and admins may see or edit zones."""
    r = await http.get("/api/v1/fleet/zones", headers=core_server.auth("u", role))
    assert r.status_code == status
