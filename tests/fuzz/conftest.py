"""Fuzzing fixtures: core and commerce served on loopback ports (real PostgreSQL, Redis and NATS)
and one real user of every role, registered or created the way clients and operators do it."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import build_app
from api.commerce.notifications.sinks import RecordingSink
from api.commerce.parts import commerce_parts
from api.settings import Settings
from api.simulator.system import create_staff
from tests.integration.commerce.conftest import FAST, Api
from tests.integration.core.conftest import CoreServer, serve_core
from tests.servers import serve_app

FUZZ_EXAMPLES = int(os.environ.get("HOMECHEF_FUZZ_EXAMPLES", "4"))
"""Examples per operation and role; CI keeps it small, raise it for a longer local fuzz."""

ROLES = ("anonymous", "customer", "chef", "delivery", "admin", "fleet_manager")


@pytest.fixture(scope="package")
async def core_url(settings: Settings) -> AsyncIterator[CoreServer]:
    async with serve_core(settings) as srv:
        yield srv


@pytest.fixture(scope="package")
async def commerce_url(settings: Settings) -> AsyncIterator[str]:
    app = build_app("commerce", "HomeChef commerce (fuzz)", settings, functools.partial(
        commerce_parts, messages=RecordingSink(), config=FAST))
    async with serve_app(app) as url:
        yield url


@pytest.fixture(scope="package")
async def role_headers(commerce_url: str, settings: Settings) -> dict[str, dict[str, str]]:
    """Authorization headers per role: customer, chef and delivery self-register over the API;
    admin and fleet_manager are created as the CLI does, then log in over the API."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    async with httpx.AsyncClient(base_url=commerce_url, timeout=30) as client:
        for role in ROLES[1:]:
            email, password = f"fuzz-{role}-{uuid.uuid4().hex[:8]}@example.com", "fuzz-pass-123"
            if role in ("admin", "fleet_manager"):
                assert settings.stores.database_url
                await create_staff(settings.stores.database_url, email, password, role)
                r = await client.post("/api/v1/auth/login",
                                      json={"email": email, "password": password})
                assert r.status_code == 200, r.text
            else:
                r = await client.post("/api/v1/auth/register", json={
                    "email": email, "password": password, "role": role, "first_name": "Fuzz"})
                assert r.status_code == 201, r.text
            body: dict[str, Any] = r.json()
            headers[role] = {"Authorization": f"Bearer {body['access_token']}"}
    return headers


@pytest.fixture(scope="package")
async def known_ids(commerce_url: str, core_url: CoreServer, settings: Settings,
                    role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    """Ids of real rows for the path parameters of that name, made through the API: an
    approved chef with a menu item, the fuzz customer's address, cart item, paid order, a
    promo code, a spare user (so that no fuzz user is deleted by the admin's fuzz), and a
    zone in core."""
    async with httpx.AsyncClient(base_url=commerce_url, timeout=30) as client:
        api = Api(client, RecordingSink(), settings, [])  # type: ignore[arg-type]
        admin = {"headers": role_headers["admin"]}
        customer = {"headers": role_headers["customer"]}
        chef = await api.chef(admin)
        item = await api.menu_item(chef)
        address = await api.address(customer)
        order = await api.order(customer, chef, [{"item": item, "quantity": 2}], address)
        payment = await api.pay(customer, order["id"])
        r = await client.post("/api/v1/cart/items", headers=customer["headers"],
                              json={"menu_item_id": item["id"], "quantity": 1})
        assert r.status_code == 201, r.text
        cart_item = r.json()["items"][0]["id"]
        r = await client.post("/api/v1/admin/promo-codes", headers=admin["headers"], json={
            "code": f"FUZZ{uuid.uuid4().hex[:6]}", "discount_type": "percent",
            "discount_value": 10})
        assert r.status_code == 201, r.text
        promo = r.json()["id"]
        spare = await api.register("customer")
    square = {"type": "Polygon", "coordinates": [[[77.58, 12.96], [77.60, 12.96],
                                                  [77.60, 12.98], [77.58, 12.98],
                                                  [77.58, 12.96]]]}
    async with httpx.AsyncClient(base_url=core_url.url, timeout=30) as client:
        r = await client.post("/api/v1/fleet/zones", headers=role_headers["admin"],
                              json={"name": "Fuzz", "geometry": square})
        assert r.status_code == 201, r.text
        zone = r.json()["id"]
    return {"chef_id": chef["profile"]["id"], "item_id": item["id"],
            "address_id": address["id"], "order_id": order["id"], "payment_id": payment["id"],
            "cart_item_id": cart_item, "promo_id": promo, "user_id": spare["user"]["id"],
            "zone_id": zone}
