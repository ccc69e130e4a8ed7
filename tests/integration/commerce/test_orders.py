"""Orders: pricing on the wire, the 422 rules, promo codes, idempotent creation under
concurrency, the cart's one-chef rule, payments, cancellation with refund, dispatch events."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.commerce.orders.dispatch import apply_dispatch_event
from api.commerce.orders.state import CHEF_TARGETS, STATUSES, is_valid_transition
from api.resources import open_resources
from streams.events import CourierAssigned, CourierUnassigned, OrderDelivered, OrderPickedUp
from tests.integration.commerce.conftest import CHEF_LAT, CHEF_LNG, Api

V1 = "/api/v1"


@pytest.fixture(scope="module")
async def world(api: Api) -> dict[str, Any]:
    """One admin, one approved online chef with two items, one customer with an address."""
    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 1000)
    cheap = await api.menu_item(chef, 250, name="Chai")
    return {"admin": admin, "chef": chef, "item": item, "cheap": cheap}


async def _customer(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = await api.register()
    return customer, await api.address(customer)


def _body(world: dict[str, Any], address: dict[str, Any], qty: int = 2,
          **extra: Any) -> dict[str, Any]:
    return {"chef_id": world["chef"]["profile"]["id"], "delivery_address_id": address["id"],
            "items": [{"menu_item_id": world["item"]["id"], "quantity": qty}], **extra}


async def test_concurrent_duplicates_with_one_key_create_one_order(api: Api,
                                                                   world: dict[str, Any]) -> None:
    """Ten concurrent POST /orders with one Idempotency-Key: one order; every answer is it."""
    customer, address = await _customer(api)
    headers = {**customer["headers"], "Idempotency-Key": str(uuid.uuid4())}
    rs = await asyncio.gather(*(api.client.post(f"{V1}/orders", json=_body(world, address),
                                                headers=headers) for _ in range(10)))
    assert sorted(r.status_code for r in rs) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in rs}) == 1
    r = await api.client.get(f"{V1}/orders", headers=customer["headers"])
    assert r.json()["total"] == 1
    # Same key, different body: refused, not silently answered with the first order.
    r = await api.client.post(f"{V1}/orders", json=_body(world, address, qty=3), headers=headers)
    assert r.status_code == 422


async def test_rejections_are_422(api: Api, world: dict[str, Any]) -> None:
    """Below minimum, unavailable item, another chef's item, outside the radius, chef not
    approved / offline / closed: each is 422 problem+json and creates nothing."""
    customer, address = await _customer(api)
    far = await api.address(customer, lat=CHEF_LAT + 0.2, lng=CHEF_LNG)  # ~22 km
    other = await api.chef(world["admin"])
    other_item = await api.menu_item(other, 5000)
    pending = await api.chef(approve=False, online=False)
    closed = await api.chef(world["admin"], operating_hours={})
    closed_item = await api.menu_item(closed, 5000)
    gone = await api.menu_item(world["chef"], 3000, is_available=False)
    cases = [
        _body(world, address, qty=1),                                   # 1000 < 1500
        {**_body(world, address), "items": [{"menu_item_id": gone["id"], "quantity": 1}]},
        {**_body(world, address), "items": [{"menu_item_id": other_item["id"]}]},
        _body(world, far),
        {**_body(world, address), "chef_id": pending["profile"]["id"]},
        {**_body(world, address), "chef_id": closed["profile"]["id"],
         "items": [{"menu_item_id": closed_item["id"]}]},
        {**_body(world, address), "delivery_address_id": str(uuid.uuid4())},
        {**_body(world, address), "promo_code": "NO-SUCH-CODE"},
    ]
    codes = []
    for body in cases:
        r = await api.client.post(f"{V1}/orders", json=body, headers=customer["headers"])
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        codes.append(r.json()["type"].rsplit(":", 1)[1])
    assert codes == ["below_minimum_order", "item_unavailable", "item_not_on_menu",
                     "outside_service_radius", "chef_unavailable", "chef_closed",
                     "address_not_found", "promo_invalid"]
    r = await api.client.put("/api/v1/chef/availability", json={"accepting_orders": False},
                             headers=other["headers"])
    r = await api.client.post(f"{V1}/orders", headers=customer["headers"], json={
        **_body(world, address), "chef_id": other["profile"]["id"],
        "items": [{"menu_item_id": other_item["id"]}]})
    assert r.status_code == 422
    r = await api.client.get(f"{V1}/orders", headers=customer["headers"])
    assert r.json()["total"] == 0


async def test_bad_input_is_4xx_never_500(api: Api, world: dict[str, Any]) -> None:
    """Malformed bodies and parameters are 400 problem+json."""
    customer, address = await _customer(api)
    for body in ({}, {"delivery_address_id": "nope"}, _body(world, address, qty=0),
                 _body(world, address, tip_cents=-1), {**_body(world, address), "x": 1}):
        r = await api.client.post(f"{V1}/orders", json=body, headers=customer["headers"])
        assert r.status_code == 400, body
    r = await api.client.get(f"{V1}/orders?limit=1000", headers=customer["headers"])
    assert r.status_code == 400
    r = await api.client.get(f"{V1}/chefs?page=0")
    assert r.status_code == 400


async def test_promo_percent_once_per_customer_and_max_uses(api: Api,
                                                            world: dict[str, Any]) -> None:
    """A 10% code discounts the subtotal (half up), once per customer; max_uses caps it;
    an expired code is refused."""
    code = "TEN" + uuid.uuid4().hex[:6].upper()
    r = await api.client.post(f"{V1}/admin/promo-codes", headers=world["admin"]["headers"],
                              json={"code": code, "discount_type": "percent",
                                    "discount_value": 10, "max_uses": 2})
    assert r.status_code == 201, r.text
    c1, a1 = await _customer(api)
    order = await api.order(c1, world["chef"], [{"item": world["item"], "quantity": 2},
                                                {"item": world["cheap"], "quantity": 1}],
                            a1, promo_code=code.lower())
    assert order["discount_cents"] == (2250 * 10 + 50) // 100
    r = await api.client.post(f"{V1}/orders", json=_body(world, a1, promo_code=code),
                              headers=c1["headers"])
    assert r.status_code == 422
    c2, a2 = await _customer(api)
    await api.order(c2, world["chef"], [{"item": world["item"], "quantity": 2}], a2,
                    promo_code=code)
    c3, a3 = await _customer(api)
    r = await api.client.post(f"{V1}/orders", json=_body(world, a3, promo_code=code),
                              headers=c3["headers"])
    assert r.status_code == 422
    assert "used up" in r.json()["detail"]
    expired = "OLD" + uuid.uuid4().hex[:6].upper()
    await api.client.post(f"{V1}/admin/promo-codes", headers=world["admin"]["headers"], json={
        "code": expired, "discount_type": "fixed", "discount_value": 100,
        "expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    r = await api.client.post(f"{V1}/orders", json=_body(world, a3, promo_code=expired),
                              headers=c3["headers"])
    assert r.status_code == 422
    assert "expired" in r.json()["detail"]


async def test_cart_holds_one_chef(api: Api, world: dict[str, Any]) -> None:
    """Adding another chef's item to a non-empty cart is 409; after clearing it works."""
    customer, _ = await _customer(api)
    other = await api.chef(world["admin"])
    other_item = await api.menu_item(other, 2000)
    r = await api.client.post(f"{V1}/cart/items", headers=customer["headers"],
                              json={"menu_item_id": world["item"]["id"], "quantity": 1})
    assert r.status_code == 201
    r = await api.client.post(f"{V1}/cart/items", headers=customer["headers"],
                              json={"menu_item_id": other_item["id"]})
    assert r.status_code == 409
    assert r.json()["type"].endswith("cart_other_chef")
    r = await api.client.delete(f"{V1}/cart", headers=customer["headers"])
    assert r.status_code == 204
    r = await api.client.post(f"{V1}/cart/items", headers=customer["headers"],
                              json={"menu_item_id": other_item["id"], "quantity": 2})
    assert r.status_code == 201
    cart = r.json()
    assert cart["chef_id"] == other["profile"]["id"]
    line = cart["items"][0]["id"]
    r = await api.client.put(f"{V1}/cart/items/{line}", json={"quantity": 3},
                             headers=customer["headers"])
    assert r.json()["subtotal_cents"] == 6000
    r = await api.client.delete(f"{V1}/cart/items/{line}", headers=customer["headers"])
    assert r.json()["items"] == []


async def test_payment_methods_behave_like_test_mode(api: Api, world: dict[str, Any]) -> None:
    """Declined fails and leaves the order unpaid; a new intent is a new attempt row;
    authenticationRequired needs a second confirm; the intent is idempotent while open;
    a paid order cannot be paid again."""
    customer, address = await _customer(api)
    order = await api.order(customer, world["chef"], [{"item": world["item"], "quantity": 2}],
                            address)
    declined = await api.pay(customer, order["id"], "pm_card_chargeDeclined")
    assert declined["status"] == "failed"
    assert declined["failure_reason"] == "card_declined"
    r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
    assert r.json()["payment_status"] == "unpaid"
    r = await api.client.post(f"{V1}/payments/intent", json={"order_id": order["id"]},
                              headers=customer["headers"])
    assert r.status_code == 201
    intent = r.json()
    assert intent["id"] != declined["id"]
    assert intent["client_secret"]
    r = await api.client.post(f"{V1}/payments/intent", json={"order_id": order["id"]},
                              headers=customer["headers"])
    assert r.status_code == 200
    assert r.json()["id"] == intent["id"]
    confirm = {"payment_id": intent["id"], "payment_method": "pm_card_authenticationRequired"}
    r = await api.client.post(f"{V1}/payments/confirm", json=confirm,
                              headers=customer["headers"])
    assert r.json()["status"] == "requires_action"
    r = await api.client.post(f"{V1}/payments/confirm", json=confirm,
                              headers=customer["headers"])
    assert r.json()["status"] == "succeeded"
    r = await api.client.post(f"{V1}/payments/confirm", json=confirm,
                              headers=customer["headers"])
    assert r.json()["status"] == "succeeded"
    r = await api.client.get(f"{V1}/payments/{intent['id']}", headers=customer["headers"])
    assert r.json()["amount_cents"] == order["total_cents"]
    r = await api.client.post(f"{V1}/payments/intent", json={"order_id": order["id"]},
                              headers=customer["headers"])
    assert r.status_code == 409


async def test_customer_cancel_refunds_and_late_cancel_is_409(api: Api,
                                                              world: dict[str, Any]) -> None:
    """A paid, accepted order cancelled by the customer is refunded; once preparing, cancel
    is 409 and changes nothing."""
    customer, address = await _customer(api)
    chef = world["chef"]
    order = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    payment = await api.pay(customer, order["id"])
    await api.client.put(f"{V1}/chef/orders/{order['id']}/status", json={"status": "accepted"},
                         headers=chef["headers"])
    r = await api.client.put(f"{V1}/orders/{order['id']}/cancel", json={"reason": "changed"},
                             headers=customer["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["payment_status"] == "refunded"
    r = await api.client.get(f"{V1}/payments/{payment['id']}", headers=customer["headers"])
    assert r.json()["status"] == "refunded"
    assert r.json()["refunded_cents"] == order["total_cents"]

    late = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    await api.pay(customer, late["id"])
    for status in ("accepted", "preparing"):
        await api.client.put(f"{V1}/chef/orders/{late['id']}/status", json={"status": status},
                             headers=chef["headers"])
    r = await api.client.put(f"{V1}/orders/{late['id']}/cancel", headers=customer["headers"])
    assert r.status_code == 409
    r = await api.client.get(f"{V1}/orders/{late['id']}", headers=customer["headers"])
    assert r.json()["status"] == "preparing"
    assert r.json()["cancelled_at"] is None


async def test_chef_cannot_set_dispatch_statuses(api: Api, world: dict[str, Any]) -> None:
    """picked_up/delivering/delivered come from dispatch: a chef setting them gets 409."""
    customer, address = await _customer(api)
    chef = world["chef"]
    order = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    await api.pay(customer, order["id"])
    for status in ("accepted", "preparing", "ready"):
        await api.client.put(f"{V1}/chef/orders/{order['id']}/status", json={"status": status},
                             headers=chef["headers"])
    for status in ("picked_up", "delivered", "refunded", "pending"):
        r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                                 json={"status": status}, headers=chef["headers"])
        assert r.status_code == 409, status
    r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                             json={"status": "teleported"}, headers=chef["headers"])
    assert r.status_code == 400


async def test_dispatch_events_apply_once(api: Api, world: dict[str, Any]) -> None:
    """Applying each dispatch event twice changes the order once (an unassignment clears the
    courier before pick-up); delivered may skip
    delivering (the path is walked through valid steps); events for unpaid orders are
    ignored."""
    customer, address = await _customer(api)
    chef = world["chef"]
    order = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    unpaid = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    await api.pay(customer, order["id"])
    for status in ("accepted", "preparing", "ready"):
        await api.client.put(f"{V1}/chef/orders/{order['id']}/status", json={"status": status},
                             headers=chef["headers"])
    commerce = api.client.app.state.commerce
    now = int(time.time() * 1000)
    async with open_resources(api.settings) as res:
        events = [CourierAssigned(order_id=order["id"], courier_id="c1", offer_id="x",
                                  at_ms=now),
                  OrderPickedUp(order_id=order["id"], courier_id="c1", at_ms=now),
                  OrderDelivered(order_id=order["id"], courier_id="c1", at_ms=now)]
        assert await apply_dispatch_event(res, commerce, events[0]) is True
        dropped = CourierUnassigned(order_id=order["id"], courier_id="c1", at_ms=now,
                                    reason="declined")
        assert await apply_dispatch_event(res, commerce, dropped) is True
        assert await apply_dispatch_event(res, commerce, dropped) is False
        r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
        assert r.json()["delivery_id"] is None
        for event in events:
            assert await apply_dispatch_event(res, commerce, event) is True
            assert await apply_dispatch_event(res, commerce, event) is False
        assert await apply_dispatch_event(res, commerce, OrderPickedUp(
            order_id=unpaid["id"], courier_id="c1", at_ms=now)) is False
    r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
    assert r.json()["status"] == "delivered"
    assert r.json()["delivery_id"] == "c1"


async def test_admin_refund(api: Api, world: dict[str, Any]) -> None:
    """An admin refunds a delivered order's payment (status unchanged, payment refunded);
    refunding twice is 409; a paid, accepted order is cancelled and refunded."""
    customer, address = await _customer(api)
    chef, admin = world["chef"], world["admin"]
    order = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    payment = await api.pay(customer, order["id"])
    for status in ("accepted", "preparing", "ready"):
        await api.client.put(f"{V1}/chef/orders/{order['id']}/status", json={"status": status},
                             headers=chef["headers"])
    r = await api.client.post(f"{V1}/admin/payments/{payment['id']}/refund",
                              headers=admin["headers"])
    assert r.status_code == 409  # food in flight
    now = int(time.time() * 1000)
    async with open_resources(api.settings) as res:
        await apply_dispatch_event(res, api.client.app.state.commerce, OrderDelivered(
            order_id=order["id"], courier_id="c9", at_ms=now))
    r = await api.client.post(f"{V1}/admin/payments/{payment['id']}/refund",
                              json={"reason": "cold food"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded"
    r = await api.client.post(f"{V1}/admin/payments/{payment['id']}/refund",
                              headers=admin["headers"])
    assert r.status_code == 409
    r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
    assert (r.json()["status"], r.json()["payment_status"]) == ("delivered", "refunded")
    second = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}], address)
    pay2 = await api.pay(customer, second["id"])
    await api.client.put(f"{V1}/chef/orders/{second['id']}/status",
                         json={"status": "accepted"}, headers=chef["headers"])
    r = await api.client.post(f"{V1}/admin/payments/{pay2['id']}/refund",
                              headers=admin["headers"])
    assert r.json()["status"] == "refunded"
    r = await api.client.get(f"{V1}/orders/{second['id']}", headers=customer["headers"])
    assert r.json()["status"] == "cancelled"


async def test_api_never_accepts_a_transition_outside_the_machine(
        api: Api, world: dict[str, Any]) -> None:
    """From each status a chef can hold an order in, every target status is tried through the
    API: only the seed machine's edges that a chef may take succeed; every other attempt is
    409 (or 400 for the unknown) and leaves the order byte-for-byte unchanged."""
    customer, address = await _customer(api)
    chef = world["chef"]
    path_to = {"pending": [], "accepted": ["accepted"], "preparing": ["accepted", "preparing"],
               "ready": ["accepted", "preparing", "ready"], "cancelled": ["cancelled"]}
    for start, steps in path_to.items():
        order = await api.order(customer, chef, [{"item": world["item"], "quantity": 2}],
                                address)
        await api.pay(customer, order["id"])
        url = f"{V1}/chef/orders/{order['id']}/status"
        for step in steps:
            r = await api.client.put(url, json={"status": step}, headers=chef["headers"])
            assert r.status_code == 200, (start, step, r.text)
        before = (await api.client.get(url.rsplit("/", 1)[0], headers=chef["headers"])).json()
        valid = [t for t in STATUSES if is_valid_transition(start, t) and t in CHEF_TARGETS]
        for target in [t for t in STATUSES if t not in valid]:
            r = await api.client.put(url, json={"status": target}, headers=chef["headers"])
            assert r.status_code == 409, (start, target)
            after = (await api.client.get(url.rsplit("/", 1)[0], headers=chef["headers"]))
            assert after.json() == before, (start, target)
        for target in valid[:1]:
            r = await api.client.put(url, json={"status": target}, headers=chef["headers"])
            assert r.status_code == 200, (start, target)
            assert r.json()["status"] == target
