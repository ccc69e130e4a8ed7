"""Core and commerce together on loopback ports, in a namespace of their own, and a client
that plays the people in the loop through the public APIs (customer, chef, courier).

Commerce's outbox reaches core over JetStream as in production: nothing is published by
hand. Used by the courier-job API test and the apps' browser test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import nats

from api.app import build_app
from api.commerce.accounts.passwords import Passwords
from api.commerce.accounts.services import create_admin
from api.commerce.notifications.sinks import RecordingSink
from api.commerce.parts import commerce_parts
from api.runtime import free_port
from api.settings import Settings
from streams.catalog import Names
from streams.jetstream import ensure_streams
from tests.integration.commerce.conftest import ALL_DAY, FAST
from tests.integration.core.conftest import CoreServer, serve_core
from tests.servers import serve_app

CHEF_AT = (43.7370, 7.4210)
"""A kitchen in Monaco (inside the shipped road extract, should a test build roads)."""
DOOR_AT = (43.7340, 7.4195)
"""~355 m from the kitchen: a short ride keeps tests that drive it short."""
PASSWORD = "correct-horse-1"


@dataclass
class Person:
    user_id: str
    email: str
    headers: dict[str, str]
    token: str


class System:
    """Both services and a client of each."""

    def __init__(self, core: CoreServer, commerce_url: str, settings: Settings) -> None:
        self.core = core
        self.commerce_url = commerce_url
        self.settings = settings
        self.shop = httpx.AsyncClient(base_url=commerce_url, timeout=10)
        self.http = httpx.AsyncClient(base_url=core.url, timeout=10)

    async def register(self, role: str, first_name: str, **extra: Any) -> Person:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        r = await self.shop.post("/api/v1/auth/register", json={
            "email": email, "password": PASSWORD, "role": role, "first_name": first_name,
            "last_name": "Doe", **extra})
        assert r.status_code == 201, r.text
        body = r.json()
        return Person(body["user"]["id"], email,
                      {"Authorization": f"Bearer {body['access_token']}"}, body["access_token"])

    async def admin(self) -> Person:
        email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
        import asyncpg

        assert self.settings.stores.database_url
        pool = await asyncpg.create_pool(self.settings.stores.database_url, min_size=1,
                                         max_size=1)
        try:
            await create_admin(pool, email, PASSWORD, Passwords(FAST.argon2))
        finally:
            await pool.close()
        r = await self.shop.post("/api/v1/auth/login", json={"email": email,
                                                             "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return Person(body["user"]["id"], email,
                      {"Authorization": f"Bearer {body['access_token']}"}, body["access_token"])

    async def chef(self, name: str = "Nonna Rosa") -> tuple[Person, dict[str, Any]]:
        """An approved, online chef with one dish; (chef, dish)."""
        chef = await self.register("chef", "Rosa")
        r = await self.shop.put("/api/v1/chef/profile", headers=chef.headers, json={
            "business_name": name, "latitude": CHEF_AT[0], "longitude": CHEF_AT[1],
            "address": "12 Rue Grimaldi, Monaco", "service_radius": 10,
            "delivery_fee_cents": 450, "prep_time_minutes": 1, "operating_hours": ALL_DAY})
        assert r.status_code == 200, r.text
        profile = r.json()
        admin = await self.admin()
        r = await self.shop.put(f"/api/v1/admin/chefs/{profile['id']}/verify",
                                json={"status": "approved"}, headers=admin.headers)
        assert r.status_code == 200, r.text
        r = await self.shop.put("/api/v1/chef/availability", headers=chef.headers,
                                json={"is_online": True, "accepting_orders": True})
        assert r.status_code == 200, r.text
        r = await self.shop.post("/api/v1/chef/menu", headers=chef.headers, json={
            "name": "Lasagne", "price_cents": 1400, "category": "mains", "prep_time": 1})
        assert r.status_code == 201, r.text
        dish = r.json()
        dish["chef_id"] = profile["id"]
        return chef, dish

    async def paid_order(self, customer: Person, dish: dict[str, Any], *, quantity: int = 2,
                         tip_cents: int = 0, scheduled_for: str | None = None) -> dict[str, Any]:
        """An order of ``quantity`` dishes to the customer's door (at ``scheduled_for``, an
        ISO time, or as soon as possible), paid by card."""
        r = await self.shop.post("/api/v1/users/me/addresses", headers=customer.headers, json={
            "label": "Home", "line1": "3 Avenue de la Costa", "city": "Monaco",
            "state": "MC", "postal_code": "98000", "country": "MC",
            "latitude": DOOR_AT[0], "longitude": DOOR_AT[1]})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = {
            "chef_id": dish["chef_id"], "delivery_address_id": r.json()["id"],
            "items": [{"menu_item_id": dish["id"], "quantity": quantity}],
            "instructions": "Ring twice, 3rd floor"}
        if tip_cents:
            body["tip_cents"] = tip_cents
        if scheduled_for:
            body["scheduled_for"] = scheduled_for
        r = await self.shop.post("/api/v1/orders", headers=customer.headers, json=body)
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()
        r = await self.shop.post("/api/v1/payments/intent", json={"order_id": order["id"]},
                                 headers=customer.headers)
        assert r.status_code == 201, r.text
        r = await self.shop.post("/api/v1/payments/confirm", headers=customer.headers,
                                 json={"payment_id": r.json()["id"],
                                       "payment_method": "pm_card_visa"})
        assert r.status_code == 200, r.text
        return order

    async def chef_sets(self, chef: Person, order_id: str, status: str) -> None:
        r = await self.shop.put(f"/api/v1/chef/orders/{order_id}/status",
                                headers=chef.headers, json={"status": status})
        assert r.status_code == 200, r.text

    async def close(self) -> None:
        await self.shop.aclose()
        await self.http.aclose()


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_system(settings: Settings, **core: Any) -> AsyncIterator[System]:
    """Core and commerce in a fresh namespace; ``core`` overrides core's settings
    (``dispatch__round_s=...``)."""
    ns = f"{settings.server.namespace}s{secrets.token_hex(2)}"
    commerce_port = free_port()
    sys_settings = settings.replace(
        server__namespace=ns, server__commerce_port=commerce_port,
        console__commerce_url=f"http://127.0.0.1:{commerce_port}", **core)
    assert settings.stores.nats_url
    nc = await nats.connect(servers=settings.stores.nats_servers)
    await ensure_streams(nc.jetstream(), Names(ns))
    try:
        async with serve_core(sys_settings) as core_server:
            commerce_settings = sys_settings.replace(console__origins=core_server.url)
            app = build_app("commerce", "HomeChef commerce (test)", commerce_settings,
                            functools.partial(commerce_parts, messages=RecordingSink(),
                                              config=FAST))
            async with serve_app(app, commerce_port) as commerce_url:
                system = System(core_server, commerce_url, sys_settings)
                try:
                    yield system
                finally:
                    await system.close()
    finally:
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await nc.jetstream().delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()
