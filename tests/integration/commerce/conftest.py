"""Commerce API fixtures: one app for the package (start-up is shared), a recording message
sink, and helpers that register users and onboard chefs through the public API (as a client
would)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import nats
import pytest
from litestar.testing import AsyncTestClient

from api.app import build_app
from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.accounts.services import create_admin
from api.commerce.chefs.index import ChefIndexState
from api.commerce.context import CommerceConfig
from api.commerce.notifications.sinks import RecordingSink
from api.commerce.parts import commerce_parts
from api.settings import Settings
from tests.integration.core.conftest import core_server  # noqa: F401  (chat over core's sockets)

ALL_DAY = {d: {"open": "00:00", "close": "24:00"} for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
CHEF_LAT, CHEF_LNG = 12.9716, 77.5946
FAST = CommerceConfig(argon2=Argon2Params(time_cost=1, memory_kib=8192, parallelism=1))
"""Cheap password hashing for tests (the algorithm is the same, only the cost is lower)."""


class Api:
    """A thin client for tests: users are created through the API with unique emails."""

    def __init__(self, client: AsyncTestClient[Any], sink: RecordingSink, settings: Settings,
                 index_events: list[ChefIndexState]):
        self.client = client
        self.sink = sink
        self.settings = settings
        self.index_events = index_events
        """What the chef-index hook heard."""

    @staticmethod
    def email(tag: str = "u") -> str:
        return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"

    async def register(self, role: str = "customer", password: str = "correct-horse-1",
                       email: str | None = None) -> dict[str, Any]:
        r = await self.client.post("/api/v1/auth/register", json={
            "email": email or self.email(role), "password": password, "role": role,
            "first_name": role.title()})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
        return body

    async def admin(self) -> dict[str, Any]:
        email, password = self.email("admin"), "admin-password-1"
        assert self.settings.stores.database_url
        pool = await asyncpg.create_pool(self.settings.stores.database_url, min_size=1, max_size=1)
        try:
            await create_admin(pool, email, password, Passwords(FAST.argon2))
        finally:
            await pool.close()
        r = await self.client.post("/api/v1/auth/login",
                                   json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
        return body

    def as_role(self, role: str) -> dict[str, str]:
        """Headers of a token for a fresh random user id of ``role`` (no DB row)."""
        from api.auth import TokenCodec

        assert self.settings.server.jwt_secret
        token = TokenCodec(self.settings.server.jwt_secret).issue(str(uuid.uuid4()), role)
        return {"Authorization": f"Bearer {token}"}

    async def chef(self, admin: dict[str, Any] | None = None, *, approve: bool = True,
                   online: bool = True, **profile: Any) -> dict[str, Any]:
        """A registered chef with a profile; approved by an admin and online by default."""
        chef = await self.register("chef")
        body = {
            "business_name": "Meena's Kitchen", "description": "South Indian home cooking",
            "cuisines": ["South Indian", "Tamil"], "latitude": CHEF_LAT, "longitude": CHEF_LNG,
            "service_radius": 10, "delivery_fee_cents": 299, "minimum_order_cents": 1500,
            "prep_time_minutes": 30, "operating_hours": ALL_DAY, **profile,
        }
        r = await self.client.put("/api/v1/chef/profile", json=body, headers=chef["headers"])
        assert r.status_code == 200, r.text
        chef["profile"] = r.json()
        if approve:
            admin = admin or await self.admin()
            r = await self.client.put(f"/api/v1/admin/chefs/{chef['profile']['id']}/verify",
                                      json={"status": "approved"}, headers=admin["headers"])
            assert r.status_code == 200, r.text
        if online:
            r = await self.client.put("/api/v1/chef/availability",
                                      json={"is_online": True, "accepting_orders": True},
                                      headers=chef["headers"])
            assert r.status_code == 200, r.text
            chef["profile"] = r.json()
        return chef

    async def menu_item(self, chef: dict[str, Any], price_cents: int = 1000,
                        **fields: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/chef/menu", headers=chef["headers"], json={
            "name": fields.pop("name", "Masala Dosa"), "price_cents": price_cents,
            "category": "mains", "dietary_tags": ["vegetarian"], "prep_time": 15, **fields})
        assert r.status_code == 201, r.text
        item: dict[str, Any] = r.json()
        return item

    async def address(self, user: dict[str, Any], lat: float = CHEF_LAT + 0.01,
                      lng: float = CHEF_LNG) -> dict[str, Any]:
        r = await self.client.post("/api/v1/users/me/addresses", headers=user["headers"], json={
            "label": "Home", "line1": "1 MG Road", "city": "Bengaluru", "state": "KA",
            "postal_code": "560001", "country": "IN", "latitude": lat, "longitude": lng})
        assert r.status_code == 201, r.text
        address: dict[str, Any] = r.json()
        return address

    async def order(self, customer: dict[str, Any], chef: dict[str, Any],
                    items: list[dict[str, Any]], address: dict[str, Any],
                    **extra: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/orders", headers=customer["headers"], json={
            "chef_id": chef["profile"]["id"], "delivery_address_id": address["id"],
            "items": [{"menu_item_id": i["id"], "quantity": q} for i, q in
                      ((x["item"], x["quantity"]) for x in items)], **extra})
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()
        return order

    async def pay(self, customer: dict[str, Any], order_id: str,
                  method: str = "pm_card_visa") -> dict[str, Any]:
        r = await self.client.post("/api/v1/payments/intent", json={"order_id": order_id},
                                   headers=customer["headers"])
        assert r.status_code == 201, r.text
        r = await self.client.post("/api/v1/payments/confirm", headers=customer["headers"],
                                   json={"payment_id": r.json()["id"], "payment_method": method})
        assert r.status_code == 200, r.text
        payment: dict[str, Any] = r.json()
        return payment


@pytest.fixture(scope="package")
async def api(settings: Settings) -> AsyncIterator[Api]:
    sink = RecordingSink()
    heard: list[ChefIndexState] = []

    async def hook(state: ChefIndexState) -> None:
        heard.append(state)

    app = build_app("commerce", "HomeChef commerce (test)", settings, functools.partial(
        commerce_parts, messages=sink, config=FAST, chef_index_hooks=[hook]))
    async with AsyncTestClient(app) as client:
        yield Api(client, sink, settings, heard)


async def dispatch_event(api: Api, event: Any, kind: str) -> None:
    """Publish a dispatch.* event as core would (commerce's consumer applies it)."""
    from streams.catalog import Names
    from streams.jetstream import publish

    nc = await nats.connect(api.settings.stores.nats_url)
    try:
        await publish(nc.jetstream(), Names(api.settings.server.namespace).dispatch_event(
            kind, event.order_id), event)
    finally:
        await nc.close()


async def wait_order(api: Api, customer: dict[str, Any], order_id: str,
                     **expect: Any) -> dict[str, Any]:
    """The order once its fields equal ``expect`` (the dispatch consumer is asynchronous)."""
    for _ in range(200):
        r = await api.client.get(f"/api/v1/orders/{order_id}", headers=customer["headers"])
        order: dict[str, Any] = r.json()
        if all(order.get(k) == v for k, v in expect.items()):
            return order
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} never reached {expect}: {order}")


async def deliver(api: Api, world: dict[str, Any], order_id: str, courier_id: str) -> None:
    """The chef accepts; core assigns the courier, who picks up and delivers."""
    from streams.events import CourierAssigned, OrderDelivered

    r = await api.client.put(f"/api/v1/chef/orders/{order_id}/status",
                             json={"status": "accepted"}, headers=world["chef"]["headers"])
    assert r.status_code == 200, r.text
    now = int(time.time() * 1000)
    await dispatch_event(api, CourierAssigned(order_id=order_id, courier_id=courier_id,
                                              offer_id="o1", at_ms=now), "assigned")
    await wait_order(api, world["customer"], order_id, delivery_id=courier_id)
    await dispatch_event(api, OrderDelivered(order_id=order_id, courier_id=courier_id,
                                             at_ms=now), "delivered")
    await wait_order(api, world["customer"], order_id, status="delivered")
