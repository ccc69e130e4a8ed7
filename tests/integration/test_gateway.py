"""The gateway in front of a real core and commerce (loopback ports, a namespace of their own):
the seed's customer journey through it alone, and its refusals."""

from __future__ import annotations

import contextlib
import functools
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest
import redis.asyncio as aioredis
import websockets
from websockets.exceptions import InvalidStatus

from api.app import build_app, create_core_app
from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.accounts.services import create_admin
from api.commerce.context import CommerceConfig
from api.commerce.parts import commerce_parts
from api.gateway.app import create_gateway_app
from api.runtime import free_port
from api.settings import Settings
from streams.catalog import Names
from streams.jetstream import ensure_streams
from tests.integration.core.conftest import eventually
from tests.servers import ASGI_ONLY, serve_app

FAST = Argon2Params(time_cost=1, memory_kib=8192, parallelism=1)
LAT, LNG = 12.9716, 77.5946
V1 = "/api/v1"


class System:
    def __init__(self, settings: Settings, gateway_url: str, core_url: str,
                 commerce_url: str) -> None:
        self.settings = settings
        self.url = gateway_url
        self.core_url = core_url
        self.commerce_url = commerce_url


@pytest.fixture(scope="module")
async def system(settings: Settings) -> AsyncIterator[System]:
    ns = f"{settings.server.namespace}g{secrets.token_hex(2)}"
    own = settings.replace(server__namespace=ns, gateway__body_max_bytes=65_536)
    nc = await nats.connect(servers=settings.stores.nats_servers)
    await ensure_streams(nc.jetstream(), Names(ns))
    commerce = build_app("commerce", "commerce (gateway test)", own, functools.partial(
        commerce_parts, config=CommerceConfig(argon2=FAST)))
    try:
        async with serve_app(create_core_app(own)) as core_url, \
                serve_app(commerce) as commerce_url:
            gateway = create_gateway_app(own, upstreams={"core": core_url,
                                                         "commerce": commerce_url})
            async with serve_app(gateway, ws=ASGI_ONLY) as url:
                yield System(own, url, core_url, commerce_url)
    finally:
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await nc.jetstream().delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()
        client = aioredis.from_url(settings.stores.redis_url or "")
        keys = [k async for k in client.scan_iter(match=f"{ns}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _auth(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def _register(http: httpx.AsyncClient, role: str) -> dict[str, Any]:
    r = await http.post(f"{V1}/auth/register", json={
        "email": f"{role}-{uuid.uuid4().hex[:10]}@example.com", "password": "correct-horse-1",
        "role": role, "first_name": role.title()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_customer_journey_through_the_gateway_only(system: System) -> None:
    """Every call of the seed's customer journey goes to the gateway's one URL: sign-up,
    a chef onboarded and verified, browse nearby and the menu, cart, order, payment, the
    chef's status changes, the courier's fix, tracking over HTTP and the order socket
    (bearer subprotocol), and the console. The request id a client sends comes back and is
    the one the service saw."""
    async with httpx.AsyncClient(base_url=system.url, timeout=15) as http:
        r = await http.get("/health")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ok", "upstreams": {"core": 200, "commerce": 200}}

        r = await http.post(f"{V1}/auth/login", headers={"X-Request-ID": "journey-1"},
                            json={"email": "nobody@example.com", "password": "wrong-pass-1"})
        assert r.status_code == 401
        assert r.headers["x-request-id"] == "journey-1"
        assert r.headers.get_list("x-request-id") == ["journey-1"]
        assert len(r.headers.get_list("date")) == 1  # the service's is not passed on twice
        assert r.json()["request_id"] == "journey-1"  # commerce saw the gateway's id

        email, password = f"admin-{uuid.uuid4().hex[:8]}@example.com", "admin-password-1"
        pool = await asyncpg.create_pool(system.settings.stores.database_url, min_size=1,
                                         max_size=1)
        try:
            await create_admin(pool, email, password, Passwords(FAST))
        finally:
            await pool.close()
        r = await http.post(f"{V1}/auth/login", json={"email": email, "password": password})
        admin = _auth(r.json())

        chef = await _register(http, "chef")
        hours = {d: {"open": "00:00", "close": "24:00"} for d in (
            "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
        r = await http.put(f"{V1}/chef/profile", headers=_auth(chef), json={
            "business_name": "Gateway Kitchen", "description": "Dosa", "cuisines": ["Indian"],
            "latitude": LAT, "longitude": LNG, "service_radius": 10, "operating_hours": hours})
        assert r.status_code == 200, r.text
        chef_id = r.json()["id"]
        r = await http.put(f"{V1}/admin/chefs/{chef_id}/verify", headers=admin,
                           json={"status": "approved"})
        assert r.status_code == 200, r.text
        r = await http.put(f"{V1}/chef/availability", headers=_auth(chef),
                           json={"is_online": True, "accepting_orders": True})
        assert r.status_code == 200, r.text
        r = await http.post(f"{V1}/chef/menu", headers=_auth(chef), json={
            "name": "Masala Dosa", "price_cents": 1200, "category": "mains"})
        assert r.status_code == 201, r.text
        item_id = r.json()["id"]

        customer = await _register(http, "customer")
        me = _auth(customer)
        near: list[str] = []  # other tests' chefs share the spot: read every page
        for page in range(1, 100):
            r = await http.get(f"{V1}/chefs/nearby", params={
                "lat": LAT + 0.01, "lng": LNG, "page": page, "limit": 100})
            assert r.status_code == 200, r.text
            near += [c["id"] for c in r.json()["data"]]
            if len(r.json()["data"]) < 100:
                break
        assert chef_id in near
        r = await http.get(f"{V1}/chefs/{chef_id}/menu")
        assert [i["id"] for i in r.json()["data"]] == [item_id]
        r = await http.post(f"{V1}/users/me/addresses", headers=me, json={
            "label": "Home", "line1": "1 MG Road", "city": "Bengaluru", "state": "KA",
            "postal_code": "560001", "country": "IN", "latitude": LAT + 0.01, "longitude": LNG})
        assert r.status_code == 201, r.text
        address_id = r.json()["id"]
        r = await http.post(f"{V1}/cart/items", headers=me,
                            json={"menu_item_id": item_id, "quantity": 2})
        assert r.status_code == 201, r.text
        r = await http.post(f"{V1}/orders", headers=me,
                            json={"delivery_address_id": address_id})
        assert r.status_code == 201, r.text
        order = r.json()
        r = await http.post(f"{V1}/payments/intent", headers=me, json={"order_id": order["id"]})
        assert r.status_code == 201, r.text
        r = await http.post(f"{V1}/payments/confirm", headers=me, json={
            "payment_id": r.json()["id"], "payment_method": "pm_card_visa"})
        assert r.json()["status"] == "succeeded"
        r = await http.put(f"{V1}/chef/orders/{order['id']}/status", headers=_auth(chef),
                           json={"status": "accepted"})
        assert r.status_code == 200, r.text

        # Core's paths, same URL: tracking follows commerce's events.
        async def tracked_accepted() -> bool:
            r = await http.get(f"{V1}/orders/{order['id']}/track", headers=me)
            return r.status_code == 200 and r.json()["status"]["payload"]["status"] == "accepted"

        await eventually(tracked_accepted, timeout_s=10)
        ws_url = system.url.replace("http://", "ws://") + f"/ws/orders/{order['id']}"
        async with websockets.connect(ws_url, subprotocols=[
                "bearer", customer["access_token"]]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "bearer"
            first = msgspec.json.decode(await ws.recv())
        assert first["type"] == "ORDER_STATUS_UPDATE"
        assert first["payload"]["status"] == "accepted"

        r = await http.get(f"{V1}/orders/{order['id']}", headers=me)
        assert r.json()["status"] == "accepted"
        courier = await _register(http, "delivery")
        r = await http.get(f"{V1}/delivery/profile", headers=_auth(courier))  # commerce
        assert r.status_code == 200, r.text
        r = await http.post(f"{V1}/delivery/locations", headers=_auth(courier),  # core
                            json={"fixes": [{"lat": LAT, "lng": LNG, "ts": 1}]})
        assert r.status_code == 202, r.text

        r = await http.get("/console/")
        assert r.status_code == 200
        assert 'data-kpi="couriers-online"' in r.text
        r = await http.get(f"{V1}/console/config")
        assert r.json()["same_origin"] is True


async def test_refusals_are_problems(system: System) -> None:
    """No service at the path: 404; a body over GATEWAY_BODY_MAX_BYTES (or, on a photo
    upload route, GATEWAY_UPLOAD_MAX_BYTES): 413 before any service sees it (by
    Content-Length and by counting a chunked body); a socket path no
    service has: 404 at the handshake; a socket the service refuses keeps the service's
    status."""
    async with httpx.AsyncClient(base_url=system.url, timeout=15) as http:
        r = await http.get("/nothing/here")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:homechef:problem:not_found"
        r = await http.post(f"{V1}/auth/register", content=b"x" * 70_000)
        assert r.status_code == 413
        assert r.json()["limit_bytes"] == 65_536

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 10_000

        r = await http.post(f"{V1}/auth/register", content=chunks())
        assert r.status_code == 413
        # A photo upload route takes GATEWAY_UPLOAD_MAX_BYTES: the body reaches commerce
        # (which refuses the missing token), and only beyond that limit is it 413 here.
        r = await http.post(f"{V1}/chef/photos", content=b"z" * 70_000)
        assert r.status_code == 401
        over = system.settings.gateway.upload_max_bytes + 1
        r = await http.post(f"{V1}/orders/{uuid.uuid4()}/proof", content=b"z" * over)
        assert (r.status_code, r.json()["limit_bytes"]) == (413, over - 1)
    ws = system.url.replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"{ws}/ws/nowhere/else/../x"):
            pass
    assert refused.value.response.status_code in (403, 404)
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"{ws}/api/v1/orders"):
            pass
    assert refused.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as refused:  # core refuses: no token
        async with websockets.connect(f"{ws}/ws/orders/{uuid.uuid4()}"):
            pass
    assert refused.value.response.status_code in (401, 403)


async def test_rate_limits_per_ip_and_per_user(system: System) -> None:
    """Past its burst a client IP gets 429 with Retry-After; a signed-in user is limited
    across IPs by its own bucket while another user is not; pages are not limited."""
    from api.auth import TokenCodec

    settings = system.settings.replace(gateway__ip_burst=5, gateway__ip_rate_per_s=0.01,
                                       gateway__user_burst=2, gateway__user_rate_per_s=0.01)
    assert settings.server.jwt_secret
    codec = TokenCodec(settings.server.jwt_secret)
    gateway = create_gateway_app(settings, upstreams={"core": system.core_url,
                                                      "commerce": system.commerce_url})
    async with serve_app(gateway, ws=ASGI_ONLY) as url, \
            httpx.AsyncClient(base_url=url, timeout=15) as http:
        alice = {"Authorization": f"Bearer {codec.issue(str(uuid.uuid4()), 'customer')}"}
        bob = {"Authorization": f"Bearer {codec.issue(str(uuid.uuid4()), 'customer')}"}
        codes = [(await http.get(f"{V1}/users/me/addresses", headers=alice)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await http.get(f"{V1}/users/me/addresses", headers=alice)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["type"] == "urn:homechef:problem:rate_limited"
        assert (await http.get(f"{V1}/users/me/addresses", headers=bob)).status_code == 200
        # The IP's burst (5) is spent now, whoever calls.
        assert (await http.get(f"{V1}/users/me/addresses", headers=bob)).status_code == 429
        assert (await http.get("/console/")).status_code == 200


async def test_an_unreachable_service_is_503_with_retry_after(system: System) -> None:
    """Core down (nothing listens on its port): its HTTP paths answer 503 problem+json with
    Retry-After naming core, its sockets are refused with 503; commerce's paths still work
    and the gateway's /health says which one is down."""
    gateway = create_gateway_app(system.settings, upstreams={
        "core": f"http://127.0.0.1:{free_port()}", "commerce": system.commerce_url})
    async with serve_app(gateway, ws=ASGI_ONLY) as url, \
            httpx.AsyncClient(base_url=url, timeout=15) as http:
        r = await http.get(f"{V1}/fleet/stats")
        assert r.status_code == 503
        assert r.headers["retry-after"] == str(system.settings.gateway.retry_after_s)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["upstream"] == "core"
        assert (await http.get(f"{V1}/chefs")).status_code == 200
        r = await http.get("/health")
        assert r.status_code == 503
        assert r.json()["upstreams"] == {"core": "down", "commerce": 200}
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url.replace("http://", "ws://") + "/ws/console"):
                pass
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "2"


async def test_several_core_processes_one_dead_is_passed_over(system: System) -> None:
    """Core as two processes, one of them dead: every request and socket reaches the live
    one (a refused connection goes to the next process: nothing reached the dead one), and
    /health names the dead process."""
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = create_gateway_app(system.settings, upstreams={
        "core": f"{dead},{system.core_url}", "commerce": system.commerce_url})
    async with serve_app(gateway, ws=ASGI_ONLY) as url, \
            httpx.AsyncClient(base_url=url, timeout=15) as http:
        codes = [(await http.get("/console/")).status_code for _ in range(4)]
        assert codes == [200] * 4
        assert (await http.get(f"{V1}/fleet/stats")).status_code == 401  # core's answer
        for _ in range(2):  # each turn of the round-robin
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url.replace("http://", "ws://") + "/ws/console"):
                    pass
            # core's own refusal (no token), passed on: not the gateway's 503
            assert refused.value.response.status_code in (401, 403)
            assert b"core refused the socket" in (refused.value.response.body or b"")
        r = await http.get("/health")
        assert r.status_code == 503
        assert r.json()["upstreams"] == {f"core@{dead}": "down",
                                         f"core@{system.core_url}": 200, "commerce": 200}
