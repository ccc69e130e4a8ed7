"""Chat over the sockets: a message sent through commerce's REST chat reaches, live, the
order's socket on core (customer, chef, staff) and the courier's device socket; a read
receipt does too; a stranger's order socket is refused, so it hears nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus

from tests.integration.commerce.conftest import Api
from tests.integration.commerce.test_chat import _paid_order_with_courier
from tests.integration.core.conftest import CoreServer

V1 = "/api/v1"


async def _next(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of type ``kind``; others (status, PING) are skipped."""
    for _ in range(50):
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind}")


def _bearer(party: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {party['access_token']}"}


async def test_chat_messages_and_receipts_reach_the_sockets_live(
        api: Api, core_server: CoreServer) -> None:
    """The customer on /ws/orders/{id} and the courier on /ws/courier receive the chef's
    CHAT_MESSAGE as the REST answer describes it, and the customer's CHAT_READ; another
    customer cannot open the order's socket (4403)."""
    world = await _paid_order_with_courier(api)
    order_id = world["order"]["id"]
    url = f"{V1}/orders/{order_id}/messages"
    order_ws = f"{core_server.ws_url}/ws/orders/{order_id}"
    courier_ws = f"{core_server.ws_url}/ws/courier"
    async with websockets.connect(order_ws, additional_headers=_bearer(world["customer"])) \
            as customer, websockets.connect(courier_ws,
                                            additional_headers=_bearer(world["courier"])) \
            as courier:
        await _next(customer, "ORDER_STATUS_UPDATE")  # registered with the hub
        await courier.send(json.dumps({"type": "PING"}))
        await _next(courier, "PONG")  # joined the courier hub
        r = await api.client.post(url, json={"body": "Packing it now"},
                                  headers=world["chef"]["headers"])
        assert r.status_code == 201, r.text
        sent = r.json()
        live = (await _next(customer, "CHAT_MESSAGE"))["payload"]
        assert live == {"id": sent["id"], "orderId": order_id, "senderRole": "chef",
                        "senderId": world["chef"]["user"]["id"], "body": "Packing it now",
                        "createdAt": live["createdAt"]}
        on_device = (await _next(courier, "CHAT_MESSAGE"))["payload"]  # snake_case there
        assert (on_device["id"], on_device["order_id"], on_device["sender_role"]) == (
            sent["id"], order_id, "chef")
        r = await api.client.put(f"{url}/read", json={"last_read_id": sent["id"]},
                                 headers=world["customer"]["headers"])
        assert r.status_code == 204
        receipt = (await _next(customer, "CHAT_READ"))["payload"]
        assert (receipt["readerRole"], receipt["lastReadId"]) == ("customer", sent["id"])
        receipt = (await _next(courier, "CHAT_READ"))["payload"]
        assert (receipt["reader_role"], receipt["last_read_id"]) == ("customer", sent["id"])

    stranger = await api.register("customer")
    assert await _close_code(order_ws, _bearer(stranger)) == 4403


async def _close_code(url: str, headers: dict[str, str]) -> int | str:
    """How the server ended a socket: its close code, or the handshake's HTTP status."""
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else "closed"
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"
