"""The full journey against real PostgreSQL, Redis and NATS: register → chef onboarded and
verified → menu → cart → order → payment → chef status changes → dispatch events → review."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats

from geo.distance import haversine_m
from streams.catalog import Names
from streams.events import (
    CourierAssigned,
    OrderCreated,
    OrderDelivered,
    OrderPickedUp,
    OrderStatusChanged,
    decode_order_event,
)
from streams.jetstream import publish
from tests.integration.commerce.conftest import CHEF_LAT, CHEF_LNG, Api

V1 = "/api/v1"


async def _wait_status(api: Api, customer: dict[str, Any], order_id: str, status: str) -> dict[
        str, Any]:
    for _ in range(100):
        r = await api.client.get(f"{V1}/orders/{order_id}", headers=customer["headers"])
        if r.json()["status"] == status:
            body: dict[str, Any] = r.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"order never reached {status}: {r.json()['status']}")


async def test_full_journey(api: Api) -> None:
    """A customer orders from a verified chef out of the cart, pays, the chef accepts and
    prepares, dispatch picks up and delivers, and the customer reviews; events reach
    JetStream with pickup/dropoff/ready/promised on `accepted`; the chef's rating follows."""
    names = Names(api.settings.server.namespace)
    assert api.settings.stores.nats_url
    nc = await nats.connect(servers=api.settings.stores.nats_servers)
    events: list[Any] = []

    async def collect(msg: Any) -> None:
        events.append(decode_order_event(msg.data))

    sub = await nc.subscribe(names.orders_all(), cb=collect)
    try:
        admin = await api.admin()
        chef = await api.register("chef")
        onboarding = {
            "business_name": "Nonna Rosa Italian", "description": "Handmade pasta",
            "cuisines": ["Italian"], "latitude": CHEF_LAT, "longitude": CHEF_LNG,
            "service_radius": 8, "delivery_fee_cents": 399, "minimum_order_cents": 2000,
            "prep_time_minutes": 40,
            "operating_hours": {d: {"open": "00:00", "close": "24:00"} for d in (
                "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                "sunday")}}
        r = await api.client.put(f"{V1}/chef/profile", json=onboarding, headers=chef["headers"])
        assert r.status_code == 200, r.text
        profile = r.json()
        assert profile["status"] == "pending"
        chef_id = profile["id"]
        # Pending chefs are invisible to browse.
        r = await api.client.get(f"{V1}/chefs/{chef_id}")
        assert r.status_code == 404
        r = await api.client.put(f"{V1}/admin/chefs/{chef_id}/verify",
                                 json={"status": "approved"}, headers=admin["headers"])
        assert r.json()["status"] == "approved"
        r = await api.client.put(f"{V1}/chef/availability",
                                 json={"is_online": True, "accepting_orders": True},
                                 headers=chef["headers"])
        assert r.json()["is_online"]
        assert r.json()["accepting_orders"]
        chef["profile"] = r.json()
        pasta = await api.menu_item(chef, 1450, name="Tagliatelle")
        tiramisu = await api.menu_item(chef, 650, name="Tiramisu")
        r = await api.client.get(f"{V1}/chefs/{chef_id}/menu")
        assert r.json()["total"] == 2

        customer = await api.register("customer")
        # ~5.56 km north: 2 full km beyond 3 km → +100 cents.
        address = await api.address(customer, lat=CHEF_LAT + 0.05, lng=CHEF_LNG)
        for item, qty in ((pasta, 2), (tiramisu, 1)):
            r = await api.client.post(f"{V1}/cart/items", headers=customer["headers"],
                                      json={"menu_item_id": item["id"], "quantity": qty})
            assert r.status_code == 201, r.text
        assert r.json()["subtotal_cents"] == 2 * 1450 + 650

        r = await api.client.post(f"{V1}/orders", headers=customer["headers"], json={
            "delivery_address_id": address["id"], "tip_cents": 200,
            "instructions": "ring twice"})
        assert r.status_code == 201, r.text
        order = r.json()
        subtotal = 3550
        dist = haversine_m(CHEF_LAT, CHEF_LNG, CHEF_LAT + 0.05, CHEF_LNG)
        extra_km = int(dist // 1000) - 3
        assert order["subtotal_cents"] == subtotal
        assert order["delivery_fee_cents"] == 399 + 50 * extra_km
        assert order["service_fee_cents"] == (subtotal * 5 + 50) // 100
        assert order["tax_cents"] == (subtotal * 8 + 50) // 100
        assert order["total_cents"] == (subtotal + order["delivery_fee_cents"]
                                        + order["service_fee_cents"] + order["tax_cents"] + 200)
        assert order["status"] == "pending"
        assert order["payment_status"] == "unpaid"
        assert len(order["items"]) == 2
        r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
        assert r.json() == order  # the create answer is exactly what a read returns
        r = await api.client.get(f"{V1}/cart", headers=customer["headers"])
        assert r.json()["items"] == []

        # Unpaid: the chef does not see it and cannot accept it.
        r = await api.client.get(f"{V1}/chef/orders", headers=chef["headers"])
        assert r.json()["total"] == 0
        r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                                 json={"status": "accepted"}, headers=chef["headers"])
        assert r.status_code == 404

        payment = await api.pay(customer, order["id"])
        assert payment["status"] == "succeeded"
        assert payment["amount_cents"] == order["total_cents"]
        r = await api.client.get(f"{V1}/users/me/notifications", headers=chef["headers"])
        assert r.json()["data"][0]["kind"] == "NEW_ORDER"

        for status in ("accepted", "preparing", "ready"):
            r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                                     json={"status": status}, headers=chef["headers"])
            assert r.status_code == 200, r.text
            assert r.json()["status"] == status
        body = r.json()
        assert body["accepted_at"]
        assert body["preparing_at"]
        assert body["prepared_at"]
        # ready → accepted is not in the machine.
        r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                                 json={"status": "accepted"}, headers=chef["headers"])
        assert r.status_code == 409

        courier_id = "courier-" + customer["user"]["id"][:8]
        now_ms = int(time.time() * 1000)
        js = nc.jetstream()
        for kind, event in (
            ("assigned", CourierAssigned(order_id=order["id"], courier_id=courier_id,
                                         offer_id="o1", at_ms=now_ms)),
            ("picked_up", OrderPickedUp(order_id=order["id"], courier_id=courier_id,
                                        at_ms=now_ms + 1)),
            ("delivered", OrderDelivered(order_id=order["id"], courier_id=courier_id,
                                         at_ms=now_ms + 2)),
        ):
            await publish(js, names.dispatch_event(kind, order["id"]), event)
        done = await _wait_status(api, customer, order["id"], "delivered")
        assert done["delivery_id"] == courier_id
        assert done["picked_up_at"]
        assert done["delivering_at"]
        assert done["delivered_at"]

        r = await api.client.post(f"{V1}/orders/{order['id']}/review",
                                  json={"rating": 4, "comment": "lovely"},
                                  headers=customer["headers"])
        assert r.status_code == 201, r.text
        r = await api.client.post(f"{V1}/orders/{order['id']}/review",
                                  json={"rating": 5}, headers=customer["headers"])
        assert r.status_code == 409
        r = await api.client.get(f"{V1}/chefs/{chef_id}")
        assert r.json()["rating"] == 4.0
        assert r.json()["total_reviews"] == 1
        assert r.json()["total_orders"] == 1
        r = await api.client.get(f"{V1}/chefs/{chef_id}/reviews")
        assert r.json()["data"][0]["comment"] == "lovely"
        r = await api.client.get(f"{V1}/chef/earnings", headers=chef["headers"])
        assert r.json()["all_time"] == {"orders": 1, "earnings_cents": subtotal}

        # The outbox relayed order.created then each status, in order.
        for _ in range(100):
            statuses = [e.status for e in events
                        if isinstance(e, OrderStatusChanged) and e.order_id == order["id"]]
            if statuses[-1:] == ["delivered"]:
                break
            await asyncio.sleep(0.05)
        created = [e for e in events if isinstance(e, OrderCreated)
                   and e.order_id == order["id"]]
        assert len(created) == 1
        assert created[0].chef_user_id == chef["user"]["id"]
        assert sorted((i.name, i.quantity) for i in created[0].items) == [
            ("Tagliatelle", 2), ("Tiramisu", 1)]
        assert statuses == ["accepted", "preparing", "ready", "picked_up", "delivering",
                            "delivered"]
        accepted = next(e for e in events if isinstance(e, OrderStatusChanged)
                        and e.order_id == order["id"] and e.status == "accepted")
        assert (accepted.pickup.lat, accepted.pickup.lng) == (CHEF_LAT, CHEF_LNG)
        assert accepted.dropoff.lat == address["latitude"]
        assert accepted.chef_user_id == chef["user"]["id"]
        assert accepted.item_count == 3
        assert accepted.ready_at_ms is not None
        assert accepted.promised_at_ms is not None
        assert accepted.promised_at_ms > accepted.ready_at_ms >= accepted.at_ms + 40 * 60_000
    finally:
        await sub.unsubscribe()
        await nc.close()

