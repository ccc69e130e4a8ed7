"""Notifications on order events leave by e-mail (a real SMTP server on loopback), SMS (the
sandbox provider) and Web Push (a push service on loopback that receives the encrypted
message), per the user's preferences, from the delivery outbox: an order never waits on a
channel, an outage is retried with backoff, and a send cut short by a dead worker is sent
again with the same idempotency key."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import build_app
from api.commerce.notifications.deliveries import enqueue_notification
from api.commerce.notifications.devsmtp import DevSmtpServer
from api.commerce.notifications.sinks import RecordingSink
from api.commerce.notifications.sms import SandboxSms
from api.commerce.parts import commerce_parts
from api.migrate import migrate
from api.settings import Settings
from tests.integration.commerce.conftest import FAST, Api

V1 = "/api/v1"
ME = f"{V1}/users/me"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Browser:
    """A browser's push keys (what PushManager.subscribe makes) to decrypt what it gets."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": _b64(point), "auth": _b64(self.auth)}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")
        out: dict[str, Any] = json.loads(plain)
        return out


class PushService:
    """A push service on loopback: ``/push/<id>`` keeps each message (201), ``/gone/<id>``
    answers 410 like a service whose subscription expired."""

    def __init__(self) -> None:
        self.received: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def _push(self, request: web.Request) -> web.Response:
        self.received.setdefault(request.match_info["sid"], []).append(
            (dict(request.headers), await request.read()))
        return web.Response(status=201)

    async def _gone(self, request: web.Request) -> web.Response:
        return web.Response(status=410)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{sid}", self._push)
        app.router.add_post("/gone/{sid}", self._gone)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class World:
    def __init__(self, api: Api, app: Litestar, smtp: DevSmtpServer, push: PushService,
                 sms: SandboxSms, db: asyncpg.Pool) -> None:
        self.api, self.app, self.smtp, self.push, self.sms = api, app, smtp, push, sms
        self.db = db
        """The test's own pool (the app's lives on the test client's loop)."""

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.messages() if m["To"] == address]


async def until(check: Callable[[], Awaitable[Any]], what: str, tries: int = 600) -> Any:
    """Poll ``check`` until it returns something truthy (deliveries are asynchronous)."""
    for _ in range(tries):
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(scope="module")
async def world(settings: Settings, create_database: Any) -> AsyncIterator[World]:
    # A database of its own: the package's commerce app (`api`) runs a delivery worker too,
    # and on a shared database it would take some of these deliveries to its own sink.
    database_url = await create_database()
    await migrate(database_url)
    settings = settings.replace(stores__database_url=database_url)
    smtp = DevSmtpServer()
    smtp.start()
    push = PushService()
    await push.start()
    sms = SandboxSms()
    channel_settings = settings.replace(
        notify__smtp_host="127.0.0.1", notify__smtp_port=smtp.port, notify__smtp_tls="none",
        notify__push_allow_loopback=True, notify__backoff_s=0.2, notify__backoff_max_s=0.5,
        notify__max_attempts=100, notify__poll_s=0.1, notify__send_timeout_s=5.0)
    app = build_app("commerce", "HomeChef commerce (notify test)", channel_settings,
                    functools.partial(commerce_parts, config=FAST, sms=sms))
    db = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with AsyncTestClient(app) as client:
            yield World(Api(client, RecordingSink(), channel_settings, []), app, smtp, push,
                        sms, db)
    finally:
        await db.close()
        await push.stop()
        smtp.stop()


async def _verified_customer(w: World) -> dict[str, Any]:
    api = w.api
    customer = await api.register("customer")
    phone = "+1555" + str(uuid.uuid4().int)[:7]
    r = await api.client.post(f"{V1}/auth/send-otp", json={"phone": phone},
                              headers=customer["headers"])
    assert r.status_code == 202, r.text
    sent = w.app.state.commerce.messages.last("sms", phone)
    r = await api.client.post(f"{V1}/auth/verify-otp", headers=customer["headers"],
                              json={"phone": phone, "code": sent.data["code"]})
    assert r.status_code == 200, r.text
    customer["phone"] = phone
    return customer


async def _accepted_order(w: World, customer: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    api = w.api
    chef = await api.chef()
    item = await api.menu_item(chef, 2000, name="Thali")
    order = await api.order(customer, chef, [{"item": item, "quantity": 1}],
                            await api.address(customer))
    await api.pay(customer, order["id"])
    r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                             json={"status": "accepted"}, headers=chef["headers"])
    assert r.status_code == 200, r.text
    return order, chef


async def test_an_accepted_order_reaches_every_channel_the_customer_chose(world: World) -> None:
    """With e-mail, SMS and push on, the chef's accept reaches the customer as an e-mail
    over SMTP (Message-ID the delivery's key), a sandbox SMS, and a push the browser can
    decrypt, signed with the deployment's VAPID key; the chef hears of the new order by
    e-mail (the default channels)."""
    w, api = world, world.api
    customer = await _verified_customer(w)
    r = await api.client.put(f"{ME}/notification-preferences", json={"sms": True},
                             headers=customer["headers"])
    assert r.json() == {"email": True, "sms": True, "push": True}
    browser = Browser()
    r = await api.client.post(f"{ME}/push-subscriptions", headers=customer["headers"], json={
        "endpoint": f"{w.push.base}/push/{customer['user']['id']}", "keys": browser.keys(),
        "expirationTime": None})
    assert r.status_code == 201, r.text

    order, chef = await _accepted_order(w, customer)

    email = customer["user"]["email"]
    mails = await until(lambda: _async(w.mails_to(email)), "the customer's e-mail")
    assert mails[0]["Subject"] == "Order update"
    assert "accepted" in mails[0].get_content()
    assert mails[0]["Message-ID"].startswith("<hc-d")
    texts = await until(lambda: _async([t for to, t in w.sms.sent.values()
                                        if to == customer["phone"]
                                        and t.startswith("Order")]), "the SMS")
    assert texts == ["Order update: " + mails[0].get_content().strip()]
    got = await until(lambda: _async(w.push.received.get(customer["user"]["id"])), "the push")
    headers, body = got[0]
    assert headers["Content-Encoding"] == "aes128gcm"
    key = (await api.client.get(f"{ME}/push-subscriptions/key",
                                headers=customer["headers"])).json()["public_key"]
    assert headers["Authorization"].startswith("vapid t=")
    assert headers["Authorization"].endswith(f",k={key}")
    payload = browser.decrypt(body)
    assert payload["title"] == "Order update"
    assert (payload["data"]["order_id"], payload["data"]["status"]) == (order["id"], "accepted")
    assert payload["data"]["kind"] == "ORDER_STATUS_UPDATE"
    chef_mails = await until(lambda: _async(w.mails_to(chef["user"]["email"])), "chef's mail")
    assert chef_mails[0]["Subject"] == "New Order!"

    async def counted() -> bool:  # outcomes are counted once recorded, after the send
        metrics = (await api.client.get("/metrics")).text
        return all(f'notification_deliveries_total{{channel="{c}",outcome="sent"}}' in metrics
                   for c in ("email", "sms", "push"))
    await until(counted, "every channel's sends counted")


async def _async(value: Any) -> Any:
    return value


async def test_preferences_and_subscriptions_refuse_what_they_must(world: World) -> None:
    """Preferences default to e-mail and push; only the channels given change; unknown
    fields, wrong types and no token are refused; a customer cannot read another user's
    preferences through the staff route (403) while an admin can; subscriptions need a
    public https endpoint (loopback only where allowed) and real keys; nobody removes
    another user's subscription."""
    w, api = world, world.api
    alice, bob = await api.register("customer"), await api.register("customer")
    url = f"{ME}/notification-preferences"
    r = await api.client.get(url, headers=alice["headers"])
    assert r.json() == {"email": True, "sms": False, "push": True}
    r = await api.client.put(url, json={"email": False}, headers=alice["headers"])
    assert r.json() == {"email": False, "sms": False, "push": True}
    for body in ({"fax": True}, {"email": "yes"}, [True]):
        r = await api.client.put(url, json=body, headers=alice["headers"])
        assert r.status_code in (400, 422), body
        assert r.headers["content-type"] == "application/problem+json"
    assert (await api.client.get(url)).status_code == 401
    staff_url = f"{V1}/admin/users/{alice['user']['id']}/notification-preferences"
    assert (await api.client.get(staff_url, headers=bob["headers"])).status_code == 403
    admin = await api.admin()
    r = await api.client.get(staff_url, headers=admin["headers"])
    assert r.json() == {"email": False, "sms": False, "push": True}
    r = await api.client.get(f"{V1}/admin/users/{uuid.uuid4()}/notification-preferences",
                             headers=admin["headers"])
    assert r.status_code == 404
    r = await api.client.get(url, headers=alice["headers"])
    assert r.json()["email"] is False  # nothing above changed it

    subs = f"{ME}/push-subscriptions"
    keys = Browser().keys()
    bad = [
        {"endpoint": "http://push.example.com/x", "keys": keys},
        {"endpoint": "https://10.1.2.3/x", "keys": keys},
        {"endpoint": "ftp://127.0.0.1/x", "keys": keys},
        {"endpoint": f"{w.push.base}/push/a", "keys": {**keys, "p256dh": _b64(b"\x04" * 65)}},
        {"endpoint": f"{w.push.base}/push/a", "keys": {**keys, "auth": _b64(b"x" * 8)}},
        {"endpoint": f"{w.push.base}/push/a", "keys": {**keys, "auth": "not base64!"}},
        {"endpoint": f"{w.push.base}/push/a"},
    ]
    for body in bad:
        r = await api.client.post(subs, json=body, headers=alice["headers"])
        assert r.status_code in (400, 422), (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.get(subs, headers=alice["headers"])
    assert r.json() == []
    r = await api.client.post(subs, json={"endpoint": f"{w.push.base}/push/alice",
                                          "keys": keys}, headers=alice["headers"])
    sub_id = r.json()["id"]
    r = await api.client.delete(f"{subs}/{sub_id}", headers=bob["headers"])
    assert r.status_code == 404
    assert [s["id"] for s in (await api.client.get(subs, headers=alice["headers"])).json()] \
        == [sub_id]
    r = await api.client.delete(f"{subs}/{sub_id}", headers=alice["headers"])
    assert r.status_code == 204
    assert (await api.client.get(subs, headers=alice["headers"])).json() == []


async def test_a_channel_outage_is_retried_and_never_blocks_the_order(world: World) -> None:
    """With the SMTP server down the order still goes through; the e-mail waits with its
    error recorded and goes out once the server is back. A push service that says the
    subscription is gone (410) fails that delivery for good and forgets the subscription."""
    w, api = world, world.api
    customer = await api.register("customer")
    await api.client.post(f"{ME}/push-subscriptions", headers=customer["headers"], json={
        "endpoint": f"{w.push.base}/gone/{customer['user']['id']}",
        "keys": Browser().keys()})
    w.smtp.go_down()
    try:
        order, _ = await _accepted_order(w, customer)  # every step answered 2xx
        r = await api.client.get(f"{V1}/orders/{order['id']}", headers=customer["headers"])
        assert r.json()["status"] == "accepted"

        async def waiting() -> Any:
            return await w.db.fetchrow(
                """SELECT d.attempts, d.last_error FROM notification_deliveries d
                   JOIN notifications n ON n.id = d.notification_id
                   WHERE n.user_id = $1 AND d.channel = 'email' AND d.status = 'pending'
                     AND d.attempts >= 2""", uuid.UUID(customer["user"]["id"]))
        row = await until(waiting, "a failed, retried attempt")
        assert row["last_error"].startswith("SMTP unavailable")  # connection refused
    finally:
        w.smtp.come_back()
    await until(lambda: _async(w.mails_to(customer["user"]["email"])), "the late e-mail")

    async def gone() -> Any:
        return await w.db.fetchval(
            """SELECT d.last_error FROM notification_deliveries d
               JOIN notifications n ON n.id = d.notification_id
               WHERE n.user_id = $1 AND d.channel = 'push' AND d.status = 'failed'""",
            uuid.UUID(customer["user"]["id"]))
    assert "410" in await until(gone, "the push delivery failed for good")
    r = await api.client.get(f"{ME}/push-subscriptions", headers=customer["headers"])
    assert r.json() == []


async def test_a_send_cut_short_by_a_dead_worker_is_sent_again(world: World) -> None:
    """A delivery leased by a worker that died is left alone until its lease runs out, then
    sent by another with the same idempotency key (at least once, recognisably)."""
    w, api = world, world.api
    customer = await api.register("customer")
    user_id = uuid.UUID(customer["user"]["id"])
    async with w.db.acquire() as conn, conn.transaction():
        await enqueue_notification(conn, user_id, "ORDER_STATUS_UPDATE", "Order update",
                                   "Your order is on its way to you.", {"status": "delivering"})
        # As a worker leaves it when it dies after leasing (and perhaps sending).
        delivery_id = await conn.fetchval(
            """UPDATE notification_deliveries d SET attempts = 1,
                      locked_until = now() + interval '1 hour'
               FROM notifications n
               WHERE n.id = d.notification_id AND n.user_id = $1 AND d.channel = 'email'
               RETURNING d.id""", user_id)
    await asyncio.sleep(0.3)  # several worker passes (NOTIFY_POLL_S 0.1): the lease holds
    assert await w.db.fetchval("SELECT status FROM notification_deliveries WHERE id = $1",
                               delivery_id) == "pending"
    assert w.mails_to(customer["user"]["email"]) == []
    await w.db.execute("UPDATE notification_deliveries SET locked_until = now() "
                       "WHERE id = $1", delivery_id)  # the lease ran out
    try:
        mails = await until(lambda: _async(w.mails_to(customer["user"]["email"])), "the resend")
    except AssertionError:  # say where the delivery stands: lease, backoff or error
        row = await w.db.fetchrow("SELECT *, now() AS db_now FROM notification_deliveries "
                                  "WHERE id = $1", delivery_id)
        raise AssertionError(f"no resend; the delivery: {dict(row or {})}") from None
    assert mails[0]["Message-ID"] == f"<hc-d{delivery_id}@homechef.notify>"

    async def recorded() -> Any:  # the outcome is written just after the send returns
        return await w.db.fetchrow("SELECT status, attempts FROM notification_deliveries "
                                   "WHERE id = $1 AND status <> 'pending'", delivery_id)
    row = await until(recorded, "the outcome recorded")
    assert (row["status"], row["attempts"]) == ("sent", 2)
