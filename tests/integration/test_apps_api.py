"""The apps' APIs end to end on real services (commerce's events reach core through its
outbox and JetStream): what a courier is shown of a job, and the customer's share link."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import websockets

from api.core.tracking.share import ShareKey
from api.settings import Settings
from geo.distance import haversine_m
from tests.system import CHEF_AT, DOOR_AT, running_system, until

JOB_FIELDS = ("pickup_address", "dropoff_address", "chef_name", "customer_name",
              "customer_phone_masked", "instructions", "items_count", "payout_cents",
              "pickup_distance_m", "pickup_eta_s", "dropoff_distance_m", "dropoff_eta_s")


@pytest.fixture(scope="module")
async def system(settings: Settings) -> Any:
    async with running_system(settings, dispatch__round_s=0.2, ws__share_grace_s=1.0) as s:
        yield s


async def test_offer_and_orders_carry_what_the_courier_needs(system: Any) -> None:
    """A paid, accepted order reaches a courier near the kitchen as an OFFER with the
    kitchen's and the door's addresses, the chef's name, the customer's first name and
    masked phone, the instructions, the item count, the payout (delivery fee + tip) and
    distances/ETAs to the chef and to the door; GET /delivery/offers and, once accepted,
    GET /delivery/orders say the same. The raw phone and the last name never reach core's
    courier API, and another courier sees neither the offer nor the order."""
    chef, dish = await system.chef("Nonna Rosa")
    customer = await system.register("customer", "Ada", phone="+377612345678")
    order = await system.paid_order(customer, dish, quantity=3, tip_cents=200)
    await system.chef_sets(chef, order["id"], "accepted")

    courier, other = f"cj-{uuid.uuid4().hex[:8]}", f"cj-{uuid.uuid4().hex[:8]}"
    core = system.core
    here = (CHEF_AT[0] + 0.004, CHEF_AT[1])  # ~450 m north of the kitchen
    for cid in (courier, other):
        r = await system.http.put("/api/v1/delivery/availability", headers=core.auth(
            cid, "delivery"), json={"online": True, "vehicle": "bike"})
        assert r.status_code == 200, r.text
    # The other courier is far away (outside the dispatch radius): the offer is ours.
    r = await system.http.post("/api/v1/delivery/locations", headers=core.auth(
        other, "delivery"), json={"fixes": [{"lat": 43.0, "lng": 7.0,
                                             "ts": time.time_ns() // 1_000_000}]})
    assert r.status_code == 202, r.text

    url = f"{core.ws_url}/ws/courier"
    async with websockets.connect(url, subprotocols=["bearer", core.token(courier, "delivery")]
                                  ) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "LOCATION", "payload": {
            "lat": here[0], "lng": here[1], "ts": time.time_ns() // 1_000_000}}))
        offer: dict[str, Any] = {}
        while not offer:
            msg = json.loads(await ws.recv())
            if msg["type"] == "OFFER":
                offer = msg["payload"]

    assert offer["order_id"] == order["id"]
    assert offer["pickup_address"] == "12 Rue Grimaldi, Monaco"
    assert offer["dropoff_address"].startswith("3 Avenue de la Costa, Monaco")
    assert offer["chef_name"] == "Nonna Rosa"
    assert offer["customer_name"] == "Ada"
    assert offer["customer_phone_masked"] == "•••• 5678"
    assert offer["instructions"] == "Ring twice, 3rd floor"
    assert offer["items_count"] == 3
    assert offer["payout_cents"] == order["delivery_fee_cents"] + 200
    to_chef = haversine_m(here[0], here[1], CHEF_AT[0], CHEF_AT[1])
    to_door = haversine_m(CHEF_AT[0], CHEF_AT[1], DOOR_AT[0], DOOR_AT[1])
    assert abs(offer["pickup_distance_m"] - to_chef) <= 1
    assert abs(offer["dropoff_distance_m"] - to_door) <= 1
    # Straight-line travel at bike speed (4.2 m/s) over 1.35× the distance.
    assert offer["pickup_eta_s"] == pytest.approx(to_chef * 1.35 / 4.2, abs=1)
    assert offer["dropoff_eta_s"] == pytest.approx(to_door * 1.35 / 4.2, abs=1)

    r = await system.http.get("/api/v1/delivery/offers", headers=core.auth(courier, "delivery"))
    (listed,) = r.json()["offers"]
    assert {k: listed[k] for k in JOB_FIELDS} == {k: offer[k] for k in JOB_FIELDS}
    r = await system.http.get("/api/v1/delivery/offers", headers=core.auth(other, "delivery"))
    assert r.json()["offers"] == []

    r = await system.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                               headers=core.auth(courier, "delivery"))
    assert r.status_code == 200, r.text
    r = await system.http.get("/api/v1/delivery/orders", headers=core.auth(courier, "delivery"))
    (carried,) = r.json()["orders"]
    assert {k: carried[k] for k in JOB_FIELDS} == {k: offer[k] for k in JOB_FIELDS}
    assert "612345678" not in r.text
    assert "Doe" not in r.text

    r = await system.http.get("/api/v1/delivery/orders", headers=core.auth(other, "delivery"))
    assert r.json()["orders"] == []
    r = await system.http.put(f"/api/v1/delivery/orders/{order['id']}",
                              headers=core.auth(other, "delivery"),
                              json={"status": "picked_up"})
    assert r.status_code == 404

    # Once the food is on board the door is measured from the courier.
    r = await system.http.put(f"/api/v1/delivery/orders/{order['id']}",
                              headers=core.auth(courier, "delivery"), json={"status": "picked_up"})
    assert r.status_code == 200, r.text

    async def carried_now() -> Any:
        r = await system.http.get("/api/v1/delivery/orders",
                                  headers=core.auth(courier, "delivery"))
        return r.json()["orders"]

    (on_board,) = await until(carried_now)
    assert on_board["pickup_distance_m"] == 0
    assert abs(on_board["dropoff_distance_m"]
               - haversine_m(here[0], here[1], DOOR_AT[0], DOOR_AT[1])) <= 1


async def test_share_link_shows_one_order_to_anyone_holding_it(system: Any) -> None:
    """Only the order's customer makes a share link, only while the order is active; the
    link's page and its API show that order's status, timeline and chef (nothing about the
    customer), with no login. A forged, tampered or expired token shows nothing; once the
    order ended, the link lasts SHARE_GRACE_S more."""
    chef, dish = await system.chef("Casa Lia")
    customer = await system.register("customer", "Bea", phone="+377699887766")
    stranger = await system.register("customer", "Cy")
    order = await system.paid_order(customer, dish)
    await system.chef_sets(chef, order["id"], "accepted")
    share = f"/api/v1/orders/{order['id']}/share"

    async def known_to_core() -> bool:
        r = await system.http.post(share, headers=customer.headers)
        return r.status_code != 404

    await until(known_to_core)
    assert (await system.http.post(share)).status_code == 401
    assert (await system.http.post(share, headers=stranger.headers)).status_code == 403
    assert (await system.http.post(share, headers=chef.headers)).status_code == 403
    r = await system.http.post(share, headers=customer.headers)
    assert r.status_code == 201, r.text
    link = r.json()
    token = link["url"].rsplit("/track/", 1)[1]
    assert link["url"] == f"{system.core.url}/track/{token}"
    assert link["expires_at"].endswith("Z")
    via_gateway = await system.http.post(share, headers={
        **customer.headers, "X-Forwarded-Host": "shop.example:8080",
        "X-Forwarded-Proto": "https"})
    assert via_gateway.json()["url"].startswith("https://shop.example:8080/track/")

    page = await system.http.get(f"/track/{token}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    r = await system.http.get(f"/api/v1/track/{token}")
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["order_id"] == order["id"]
    assert shown["status"] == "accepted"
    assert shown["active"] is True
    assert shown["chef_name"] == "Casa Lia"
    assert [s["status"] for s in shown["timeline"]] == ["placed", "accepted"]
    for private in ("Bea", "9887766", "Avenue", "Ring twice"):
        assert private not in r.text

    async with websockets.connect(f"{system.core.ws_url}/ws/track/{token}") as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "ORDER_STATUS_UPDATE"
        assert first["payload"]["status"] == "accepted"

    key = ShareKey(system.settings.server.jwt_secret)
    body, mac = token.split(".")
    tampered = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    forged = ShareKey("not-the-secret").issue(order["id"], int(time.time()) + 600)
    for bad in (tampered, forged, "x", "a.b.c"):
        r = await system.http.get(f"/api/v1/track/{bad}")
        assert r.status_code == 404, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    expired = key.issue(order["id"], int(time.time()) - 1)
    r = await system.http.get(f"/api/v1/track/{expired}")
    assert r.status_code == 410
    assert r.json()["type"].endswith(":share_expired")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(f"{system.core.ws_url}/ws/track/{expired}") as ws:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4410

    # Ended: no new link; the old one shows the end for SHARE_GRACE_S (1 s here), then 410.
    await system.chef_sets(chef, order["id"], "cancelled")

    async def ended() -> Any:
        r = await system.http.get(f"/api/v1/track/{token}")
        return r.status_code == 200 and not r.json()["active"] and r.json()

    assert (await until(ended))["status"] == "cancelled"
    r = await system.http.post(share, headers=customer.headers)
    assert r.status_code == 409
    assert r.json()["type"].endswith(":order_not_active")

    async def gone() -> bool:
        return (await system.http.get(f"/api/v1/track/{token}")).status_code == 410

    await until(gone, timeout_s=5)
