"""Chefs and admin: onboarding rules, browse filters, the chef-index hook, admin lists,
dashboard and analytics, notifications, delivery profile and earnings, profile edits."""

from __future__ import annotations

import time
import uuid
from typing import Any

from api.commerce.chefs.services import chef_index_snapshot
from api.commerce.orders.dispatch import apply_dispatch_event
from api.resources import open_resources
from streams.events import CourierAssigned, OrderDelivered
from tests.integration.commerce.conftest import ALL_DAY, CHEF_LAT, CHEF_LNG, Api

V1 = "/api/v1"


async def test_browse_filters_sort_and_pagination(api: Api) -> None:
    """GET /chefs lists only approved chefs, filters by cuisine (case-insensitive), search
    (name or description, LIKE wildcards literal) and rating, sorts, and pages."""
    admin = await api.admin()
    tag = uuid.uuid4().hex[:8]
    await api.chef(admin, business_name=f"Alpha {tag}", cuisines=[f"Cuisine{tag}"])
    await api.chef(admin, business_name=f"Beta {tag}", cuisines=[f"Cuisine{tag}", "Thai"])
    await api.chef(approve=False, business_name=f"Gamma {tag}", cuisines=[f"Cuisine{tag}"])
    r = await api.client.get(f"{V1}/chefs", params={"cuisine": f"cuisine{tag}"})
    body = r.json()
    assert body["total"] == 2
    assert {"data", "total", "page", "limit"} == set(body)
    r = await api.client.get(f"{V1}/chefs", params={"search": f"beta {tag}"})
    assert [c["business_name"] for c in r.json()["data"]] == [f"Beta {tag}"]
    r = await api.client.get(f"{V1}/chefs", params={"search": "%"})
    assert r.json()["total"] == 0
    r = await api.client.get(f"{V1}/chefs", params={"cuisine": f"cuisine{tag}", "limit": 1,
                                                    "page": 2, "sort": "orders"})
    assert r.json()["total"] == 2
    assert len(r.json()["data"]) == 1
    assert r.json()["page"] == 2
    r = await api.client.get(f"{V1}/chefs", params={"cuisine": f"cuisine{tag}", "rating": 4})
    assert r.json()["total"] == 0
    r = await api.client.get(f"{V1}/chefs", params={"sort": "price"})
    assert r.status_code == 400


async def test_onboarding_validation(api: Api) -> None:
    """Operating hours must have the mock's shape; an unknown time zone is 422; a chef
    without a profile cannot add menu items (409) or go online (409)."""
    chef = await api.register("chef")
    base = {"business_name": "X", "latitude": CHEF_LAT, "longitude": CHEF_LNG}
    r = await api.client.put(f"{V1}/chef/profile", headers=chef["headers"], json={
        **base, "operating_hours": {"monday": {"open": "9am", "close": "5pm"}}})
    assert r.status_code == 400
    r = await api.client.put(f"{V1}/chef/profile", headers=chef["headers"], json={
        **base, "operating_hours": ALL_DAY, "timezone": "Mars/Olympus"})
    assert r.status_code == 422
    r = await api.client.post(f"{V1}/chef/menu", headers=chef["headers"],
                              json={"name": "x", "price_cents": 100})
    assert r.status_code == 409
    r = await api.client.put(f"{V1}/chef/availability", headers=chef["headers"],
                             json={"is_online": True})
    assert r.status_code == 409


async def test_chef_index_hook_sees_every_indexable_change(api: Api) -> None:
    """The hook hears profile, verification and availability changes with the chef's
    location, radius and hours; indexable only when approved, online and accepting; the
    snapshot lists indexable chefs for a rebuild."""
    chef = await api.chef(service_radius=7)
    chef_id = chef["profile"]["id"]
    mine = [h for h in api.index_events if h.chef_id == chef_id]
    assert [h.indexable for h in mine] == [False, False, True]
    assert mine[-1].service_radius_km == 7
    assert (mine[-1].latitude, mine[-1].longitude) == (CHEF_LAT, CHEF_LNG)
    assert mine[-1].operating_hours["monday"] is not None
    async with open_resources(api.settings) as res:
        assert chef_id in {s.chef_id for s in await chef_index_snapshot(res.db)}
        await api.client.put(f"{V1}/chef/availability", json={"accepting_orders": False},
                             headers=chef["headers"])
        assert [h for h in api.index_events if h.chef_id == chef_id][-1].indexable is False
        assert chef_id not in {s.chef_id for s in await chef_index_snapshot(res.db)}


async def test_admin_lists_dashboard_and_user_admin(api: Api) -> None:
    """Admin lists users (by role), chefs (by status) and orders with bounded pagination;
    the dashboard counts orders, GMV and active chefs; deactivating a user ends logins."""
    admin = await api.admin()
    pending = await api.chef(approve=False, online=False)
    r = await api.client.get(f"{V1}/admin/chefs", params={"status": "pending", "limit": 100},
                             headers=admin["headers"])
    assert pending["profile"]["id"] in {c["id"] for c in r.json()["data"]}
    r = await api.client.get(f"{V1}/admin/users", params={"role": "chef", "limit": 5},
                             headers=admin["headers"])
    assert r.json()["limit"] == 5
    assert all(u["role"] == "chef" for u in r.json()["data"])
    r = await api.client.get(f"{V1}/admin/users", params={"limit": 101},
                             headers=admin["headers"])
    assert r.status_code == 400
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 2000)
    customer = await api.register()
    address = await api.address(customer)
    before = (await api.client.get(f"{V1}/admin/dashboard", headers=admin["headers"])).json()
    order = await api.order(customer, chef, [{"item": item, "quantity": 1}], address)
    await api.pay(customer, order["id"])
    after = (await api.client.get(f"{V1}/admin/dashboard", headers=admin["headers"])).json()
    assert after["orders_total"] == before["orders_total"] + 1
    assert after["gmv_cents"] == before["gmv_cents"] + order["total_cents"]
    assert after["active_chefs"] >= 1
    r = await api.client.get(f"{V1}/admin/orders/{order['id']}", headers=admin["headers"])
    assert r.json()["payment_status"] == "paid"
    r = await api.client.get(f"{V1}/admin/orders", params={"status": "pending"},
                             headers=admin["headers"])
    assert r.json()["total"] >= 1
    r = await api.client.get(f"{V1}/admin/analytics", headers=admin["headers"])
    assert r.json()["orders_by_status"]["pending"] >= 1
    victim = await api.register(password="victim-pass-1")
    r = await api.client.delete(f"{V1}/admin/users/{victim['user']['id']}",
                                headers=admin["headers"])
    assert r.status_code == 204
    r = await api.client.post(f"{V1}/auth/login", json={"email": victim["user"]["email"],
                                                       "password": "victim-pass-1"})
    assert r.status_code == 401
    r = await api.client.post(f"{V1}/auth/refresh",
                              json={"refresh_token": victim["refresh_token"]})
    assert r.status_code == 401


async def test_admin_edits_any_menu_and_chef_profile(api: Api) -> None:
    """Admins CRUD any chef's menu items (naming the chef on create) and edit profiles."""
    admin = await api.admin()
    chef = await api.chef(admin)
    r = await api.client.post(f"{V1}/chef/menu", headers=admin["headers"],
                              json={"name": "Admin dish", "price_cents": 500})
    assert r.status_code == 422
    r = await api.client.post(f"{V1}/chef/menu", headers=admin["headers"], json={
        "name": "Admin dish", "price_cents": 500, "chef_id": chef["profile"]["id"]})
    assert r.status_code == 201
    item = r.json()
    r = await api.client.put(f"{V1}/chef/menu/{item['id']}", headers=admin["headers"],
                             json={"is_available": False})
    assert r.json()["is_available"] is False
    r = await api.client.put(f"{V1}/admin/chefs/{chef['profile']['id']}",
                             headers=admin["headers"], json={
                                 "business_name": "Renamed", "latitude": CHEF_LAT,
                                 "longitude": CHEF_LNG, "operating_hours": ALL_DAY})
    assert r.json()["business_name"] == "Renamed"
    assert r.json()["status"] == "approved"
    r = await api.client.delete(f"{V1}/chef/menu/{item['id']}", headers=admin["headers"])
    assert r.status_code == 204


async def test_earnings_notifications_and_delivery_profile(api: Api) -> None:
    """After a delivery: the courier earns fee + tip, the chef the subtotal; the customer's
    inbox has status updates newest first; profiles update; /users/me edits stick."""
    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 2000)
    customer, courier = await api.register(), await api.register("delivery")
    address = await api.address(customer)
    order = await api.order(customer, chef, [{"item": item, "quantity": 1}], address,
                            tip_cents=300)
    await api.pay(customer, order["id"])
    for status in ("accepted", "preparing", "ready"):
        await api.client.put(f"{V1}/chef/orders/{order['id']}/status", json={"status": status},
                             headers=chef["headers"])
    courier_id = courier["user"]["id"]
    now = int(time.time() * 1000)
    async with open_resources(api.settings) as res:
        for event in (CourierAssigned(order_id=order["id"], courier_id=courier_id,
                                      offer_id="o", at_ms=now),
                      OrderDelivered(order_id=order["id"], courier_id=courier_id, at_ms=now)):
            await apply_dispatch_event(res, api.client.app.state.commerce, event)
    r = await api.client.get(f"{V1}/delivery/earnings", headers=courier["headers"])
    assert r.json()["all_time"] == {"orders": 1,
                                    "earnings_cents": order["delivery_fee_cents"] + 300}
    assert r.json()["tips_cents"] == 300
    r = await api.client.get(f"{V1}/chef/analytics", headers=chef["headers"])
    body: dict[str, Any] = r.json()
    assert body["orders_by_status"] == {"delivered": 1}
    assert body["top_items"][0]["quantity"] == 1
    r = await api.client.get(f"{V1}/users/me/notifications", headers=customer["headers"])
    kinds = [(n["kind"], n["data"]["status"]) for n in r.json()["data"]]
    assert kinds[0] == ("ORDER_STATUS_UPDATE", "delivered")
    assert ("ORDER_STATUS_UPDATE", "accepted") in kinds
    note = r.json()["data"][0]["id"]
    await api.client.put(f"{V1}/users/me/notifications/{note}/read",
                         headers=customer["headers"])
    r = await api.client.get(f"{V1}/users/me/notifications", params={"unread": True},
                             headers=customer["headers"])
    assert note not in {n["id"] for n in r.json()["data"]}
    r = await api.client.put(f"{V1}/delivery/profile", json={"vehicle_type": "scooter"},
                             headers=courier["headers"])
    assert r.json()["vehicle_type"] == "scooter"
    assert r.json()["total_deliveries"] == 1
    r = await api.client.put(f"{V1}/users/me", json={"first_name": "Ada"},
                             headers=customer["headers"])
    assert r.json()["first_name"] == "Ada"
    r = await api.client.put(f"{V1}/users/me", json={"role": "admin"},
                             headers=customer["headers"])
    assert r.status_code == 400
