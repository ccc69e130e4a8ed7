"""Chat per order (seed §8): its customer, chef and courier, and staff, read and write; a
stranger gets 404; messages page newest first with read receipts; the chat closes 24 h
after the order ended."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import nats

from streams.catalog import Names
from streams.events import CourierAssigned
from streams.jetstream import publish
from tests.integration.commerce.conftest import Api

V1 = "/api/v1"


async def _paid_order_with_courier(api: Api) -> dict[str, Any]:
    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 2000, name="Thali")
    customer = await api.register("customer")
    address = await api.address(customer)
    order = await api.order(customer, chef, [{"item": item, "quantity": 1}], address)
    await api.pay(customer, order["id"])
    courier = await api.register("delivery")
    courier_id = courier["user"]["id"]
    names = Names(api.settings.server.namespace)
    nc = await nats.connect(servers=api.settings.stores.nats_servers)
    try:
        await publish(nc.jetstream(), names.dispatch_event("assigned", order["id"]),
                      CourierAssigned(order_id=order["id"], courier_id=courier_id,
                                      offer_id="o1", at_ms=int(time.time() * 1000)))
    finally:
        await nc.close()
    for _ in range(100):
        r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
        if r.json()["delivery_id"] == courier_id:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the courier was never recorded on the order")
    return {"order": order, "customer": customer, "chef": chef, "courier": courier,
            "admin": admin}


async def test_parties_chat_and_strangers_cannot(api: Api) -> None:
    """Customer, chef, courier and staff send and read; the history pages newest first;
    read receipts move forward only; another customer, another chef and another courier
    get 404 on reading and writing; bad bodies are 422 problems."""
    world = await _paid_order_with_courier(api)
    url = f"{V1}/orders/{world['order']['id']}/messages"
    sent = []
    for who, text in (("customer", "Ring twice please"), ("chef", "Packing it now"),
                      ("courier", "Five minutes away"), ("admin", "All good here?")):
        r = await api.client.post(url, json={"body": f"  {text} "},
                                  headers=world[who]["headers"])
        assert r.status_code == 201, r.text
        sent.append(r.json())
    assert [m["sender_role"] for m in sent] == ["customer", "chef", "courier", "staff"]
    assert sent[0]["body"] == "Ring twice please"

    r = await api.client.get(url, params={"limit": 3}, headers=world["customer"]["headers"])
    page = r.json()
    assert [m["id"] for m in page["data"]] == [m["id"] for m in reversed(sent)][:3]
    assert (page["total"], page["open"]) == (4, True)
    r = await api.client.get(url, params={"limit": 3, "page": 2},
                             headers=world["courier"]["headers"])
    assert [m["id"] for m in r.json()["data"]] == [sent[0]["id"]]
    # Each sender has read its own message; the customer now reads everything.
    receipts = {x["reader_role"]: x["last_read_id"] for x in page["reads"]}
    assert receipts == {"customer": sent[0]["id"], "chef": sent[1]["id"],
                        "courier": sent[2]["id"], "staff": sent[3]["id"]}
    r = await api.client.put(f"{url}/read", json={"last_read_id": sent[3]["id"]},
                             headers=world["customer"]["headers"])
    assert r.status_code == 204
    r = await api.client.put(f"{url}/read", json={"last_read_id": sent[1]["id"]},
                             headers=world["customer"]["headers"])
    assert r.status_code == 204  # an older one does not move the receipt back
    r = await api.client.get(url, headers=world["chef"]["headers"])
    receipts = {x["reader_role"]: x["last_read_id"] for x in r.json()["reads"]}
    assert receipts["customer"] == sent[3]["id"]
    r = await api.client.put(f"{url}/read", json={"last_read_id": 2**62},
                             headers=world["customer"]["headers"])
    assert r.status_code == 422

    strangers = [(await api.register("customer"))["headers"], (await api.chef())["headers"],
                 (await api.register("delivery"))["headers"]]
    for headers in strangers:
        for method, body in (("GET", None), ("POST", {"body": "hi"})):
            r = await api.client.request(method, url, json=body, headers=headers)
            assert r.status_code == 404, (method, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    for body in ({"body": ""}, {"body": "   "}, {"body": "x" * 1001}, {"text": "hi"}):
        r = await api.client.post(url, json=body, headers=world["customer"]["headers"])
        assert r.status_code in (400, 422), body
        assert r.headers["content-type"] == "application/problem+json"


async def test_chat_closes_a_day_after_delivery(api: Api) -> None:
    """Delivered 25 h ago: the history still reads (open false), sending is 409; the
    unpaid order's chef is no party yet (404)."""
    world = await _paid_order_with_courier(api)
    url = f"{V1}/orders/{world['order']['id']}/messages"
    assert (await api.client.post(url, json={"body": "thanks!"},
                                  headers=world["customer"]["headers"])).status_code == 201
    pool = await asyncpg.create_pool(api.settings.stores.database_url, min_size=1, max_size=1)
    try:  # the clock moves a day on: the order was delivered 25 hours ago
        await pool.execute("UPDATE orders SET delivered_at = now() - interval '25 hours' "
                           "WHERE id = $1", world["order"]["id"])
    finally:
        await pool.close()
    r = await api.client.post(url, json={"body": "one more thing"},
                              headers=world["customer"]["headers"])
    assert r.status_code == 409
    assert r.json()["type"] == "urn:homechef:problem:chat_closed"
    r = await api.client.get(url, headers=world["customer"]["headers"])
    assert (r.json()["open"], r.json()["total"]) == (False, 1)

    chef = await api.chef()
    item = await api.menu_item(chef, 1500, name="Pongal")
    customer = await api.register("customer")
    unpaid = await api.order(customer, chef, [{"item": item, "quantity": 1}],
                             await api.address(customer))
    r = await api.client.get(f"{V1}/orders/{unpaid['id']}/messages", headers=chef["headers"])
    assert r.status_code == 404
    r = await api.client.get(f"{V1}/orders/{unpaid['id']}/messages",
                             headers=customer["headers"])
    assert r.status_code == 200
