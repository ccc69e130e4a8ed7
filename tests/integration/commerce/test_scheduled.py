"""Scheduled orders: accepted when the kitchen is open while it cooks for the slot, even
with the chef offline now; the chef is told when to start; the customer sees "scheduled
for" and a promise at the slot; past, too-far, too-soon and closed slots are clear 422s that
create nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.commerce.conftest import ALL_DAY, Api

V1 = "/api/v1"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _world(api: Api, **chef_profile: Any) -> dict[str, Any]:
    admin = await api.admin()
    chef = await api.chef(admin, online=False, **chef_profile)  # approved, offline now
    item = await api.menu_item(chef, 2000, name="Biryani")
    customer = await api.register("customer")
    return {"chef": chef, "item": item, "customer": customer,
            "address": await api.address(customer)}


def _body(w: dict[str, Any], slot: datetime | str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"chef_id": w["chef"]["profile"]["id"],
                            "delivery_address_id": w["address"]["id"],
                            "items": [{"menu_item_id": w["item"]["id"], "quantity": 1}]}
    if slot is not None:
        body["scheduled_for"] = slot if isinstance(slot, str) else slot.isoformat()
    return body


async def test_a_slot_for_later_is_taken_with_the_chef_offline(api: Api) -> None:
    """Three hours ahead, chef offline: 201 with the slot as the promise, cooking planned
    before it (prep 30 min); an ASAP order to the same chef is refused. Paid, the chef's
    NEW_ORDER says when to start; accepted now, the promise stays the slot and the
    customer's update says it is confirmed for then."""
    w = await _world(api)
    slot = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    r = await api.client.post(f"{V1}/orders", json=_body(w, None),
                              headers=w["customer"]["headers"])
    assert r.status_code == 422
    assert r.json()["type"].endswith(":chef_unavailable")
    r = await api.client.post(f"{V1}/orders", json=_body(w, slot),
                              headers=w["customer"]["headers"])
    assert r.status_code == 201, r.text
    order = r.json()
    assert _at(order["scheduled_for"]) == slot
    assert _at(order["estimated_delivery"]) == slot
    ready, start = _at(order["estimated_ready"]), _at(order["start_cooking_at"])
    assert ready - start == timedelta(minutes=30)
    assert timedelta(0) < slot - ready < timedelta(hours=1)  # the ride and hand-off

    await api.pay(w["customer"], order["id"])
    r = await api.client.get(f"{V1}/users/me/notifications", headers=w["chef"]["headers"])
    new = r.json()["data"][0]
    assert new["kind"] == "NEW_ORDER"
    assert _at(new["data"]["start_cooking_at"]) == start
    assert "start cooking at" in new["body"]
    r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                             json={"status": "accepted"}, headers=w["chef"]["headers"])
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert (_at(accepted["estimated_ready"]), _at(accepted["estimated_delivery"])) == (
        ready, slot)
    r = await api.client.get(f"{V1}/users/me/notifications",
                             headers=w["customer"]["headers"])
    update = r.json()["data"][0]
    assert update["body"].startswith("Your order is confirmed for")
    assert _at(update["data"]["scheduled_for"]) == slot


async def test_slots_that_cannot_be_met_are_refused_clearly(api: Api) -> None:
    """Past, eight days ahead, sooner than the kitchen can cook and ride (with the earliest
    slot), a naive time, and a slot when the kitchen is closed (open only on another
    weekday): each a 422 problem with its own code, and no order is created."""
    now = datetime.now(UTC)
    slot = now + timedelta(hours=3)
    other_day = (slot.weekday() + 3) % 7
    day_names = list(ALL_DAY)
    w = await _world(api)
    closed = await _world(api, operating_hours={day_names[other_day]: ALL_DAY["monday"]})
    cases = [
        (w, now - timedelta(minutes=5), "schedule_in_past"),
        (w, now + timedelta(days=8), "schedule_too_far"),
        (w, now + timedelta(minutes=20), "schedule_too_soon"),
        (w, slot.replace(tzinfo=None).isoformat(), "invalid_schedule"),
        (closed, slot, "chef_closed"),
    ]
    for world, when, code in cases:
        r = await api.client.post(f"{V1}/orders", json=_body(world, when),
                                  headers=world["customer"]["headers"])
        assert r.status_code == 422, (code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"] == f"urn:homechef:problem:{code}"
        if code == "schedule_too_soon":
            assert _at(r.json()["earliest"]) > now + timedelta(minutes=30)
    for world in (w, closed):
        r = await api.client.get(f"{V1}/orders", headers=world["customer"]["headers"])
        assert r.json()["total"] == 0
