"""GET /chefs/nearby answers from the shared H3 index: only approved, online, accepting
chefs whose own service radius covers the point and who are open now, nearest first."""

from __future__ import annotations

import random
from typing import Any

from tests.integration.commerce.conftest import Api

CLOSED_NOW = {d: {"open": "00:00", "close": "00:01"} for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}


async def nearby(api: Api, lat: float, lng: float, radius_km: float = 20) -> list[str]:
    r = await api.client.get("/api/v1/chefs/nearby",
                             params={"lat": lat, "lng": lng, "radius_km": radius_km})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"data", "total", "page", "limit"}
    return [c["id"] for c in body["data"]]


async def test_nearby_filters_by_index_radius_state_and_hours(api: Api) -> None:
    """Of six chefs around a fresh spot, only the ones that should serve the point are
    listed, nearest first; going offline or losing approval takes a chef off at once."""
    rng = random.Random()
    lat, lng = rng.uniform(-30, 30), rng.uniform(-120, 120)
    admin = await api.admin()
    near = await api.chef(admin, latitude=lat + 0.01, longitude=lng, service_radius=5)
    nearer = await api.chef(admin, latitude=lat + 0.005, longitude=lng, service_radius=5)
    small_radius = await api.chef(admin, latitude=lat + 0.02, longitude=lng, service_radius=1)
    closed = await api.chef(admin, latitude=lat + 0.01, longitude=lng + 0.001,
                            operating_hours=CLOSED_NOW)
    pending = await api.chef(admin, approve=False, latitude=lat, longitude=lng + 0.002)
    offline = await api.chef(admin, online=False, latitude=lat, longitude=lng + 0.003)
    ids = await nearby(api, lat, lng)
    assert ids == [nearer["profile"]["id"], near["profile"]["id"]]
    for other in (small_radius, closed, pending, offline):
        assert other["profile"]["id"] not in ids
    # The customer's own search radius applies too.
    assert await nearby(api, lat, lng, radius_km=0.8) == [nearer["profile"]["id"]]
    r = await api.client.put("/api/v1/chef/availability", headers=nearer["headers"],
                             json={"is_online": False, "accepting_orders": True})
    assert r.status_code == 200
    assert await nearby(api, lat, lng) == [near["profile"]["id"]]
    r = await api.client.put(f"/api/v1/admin/chefs/{near['profile']['id']}/verify",
                             json={"status": "suspended"}, headers=admin["headers"])
    assert r.status_code == 200
    assert await nearby(api, lat, lng) == []


async def test_nearby_rejects_bad_coordinates(api: Api) -> None:
    """Out-of-range or missing coordinates are a 400 problem, not a 500."""
    for params in ({"lat": 91, "lng": 0}, {"lat": 0}, {"lat": "x", "lng": 1},
                   {"lat": 1, "lng": 1, "radius_km": -1}):
        r = await api.client.get("/api/v1/chefs/nearby", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
