"""The people in the loop, in headless Chromium on real services: a customer orders and pays
through the API; the kitchen screen (phone width, keyboard only) shows the order live and
the chef moves it along; a courier (a device on /ws/courier moving along a path) takes the
offer; the customer's share link shows the courier moving with an ETA that drops, and the
delivery completes on both screens. A wrong password and an expired link show clear
messages; no page logs an error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from api.core.tracking.share import ShareKey
from api.settings import Settings
from geo.distance import haversine_m
from tests.browser.conftest import ARTIFACTS
from tests.system import CHEF_AT, DOOR_AT, PASSWORD, System, running_system, until

PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
async def system(settings: Settings) -> AsyncIterator[System]:
    async with running_system(settings, dispatch__round_s=0.3) as s:
        yield s


class Device:
    """A courier's phone: sends its position every 0.3 s over /ws/courier; ``at`` moves it.
    Collects what core pushes (OFFER)."""

    def __init__(self, system: System, courier_id: str, at: tuple[float, float]) -> None:
        self.system = system
        self.courier_id = courier_id
        self.at = at
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Device]:
        core = self.system.core
        token = core.token(self.courier_id, "delivery")
        async with websockets.connect(f"{core.ws_url}/ws/courier",
                                      subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
            async def send() -> None:
                while True:
                    await ws.send(json.dumps({"type": "LOCATION", "payload": {
                        "lat": self.at[0], "lng": self.at[1],
                        "ts": time.time_ns() // 1_000_000}}))
                    await asyncio.sleep(0.3)

            async def receive() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "OFFER":
                        await self.offers.put(msg["payload"])

            tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
            try:
                yield self
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def drive_to(self, to: tuple[float, float], speed_mps: float = 50.0) -> None:
        """Move to ``to`` at ``speed_mps`` (ingest rejects fixes implying over 70 m/s), then
        hold there long enough for a fix to be sent."""
        start, tick_s = self.at, 0.1
        steps = max(1, math.ceil(haversine_m(*start, *to) / (speed_mps * tick_s)))
        for i in range(1, steps + 1):
            f = i / steps
            self.at = (start[0] + (to[0] - start[0]) * f, start[1] + (to[1] - start[1]) * f)
            await asyncio.sleep(tick_s)
        await asyncio.sleep(0.35)

    async def report(self, order_id: str, status: str) -> Any:
        return await self.system.http.put(
            f"/api/v1/delivery/orders/{order_id}", json={"status": status},
            headers=self.system.core.auth(self.courier_id, "delivery"))


async def open_page(browser: Any, url: str, errors: list[str]) -> Any:
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(f"{url}: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"{url}: {m.text}"))
    await page.goto(url)
    return page


async def eta_s(page: Any) -> int | None:
    raw: str = await page.locator("#eta").get_attribute("data-eta-s") or ""
    return int(raw) if raw else None


async def test_order_cooked_carried_and_tracked_on_three_screens(system: System,
                                                                 browser: Any) -> None:
    """The loop of the module docstring, at 360 px wide."""
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    chef, dish = await system.chef("Trattoria Zia")
    customer = await system.register("customer", "Dee")
    order = await system.paid_order(customer, dish)
    oid = order["id"]

    # Kitchen: a wrong password, then signing in with the keyboard only.
    kitchen = await open_page(browser, f"{system.core.url}/kitchen/", errors)
    await kitchen.locator("#login").wait_for(state="visible")
    await kitchen.keyboard.press("Tab")
    await kitchen.keyboard.type(chef.email)
    await kitchen.keyboard.press("Tab")
    await kitchen.keyboard.type("not-the-password")
    await kitchen.keyboard.press("Enter")
    await kitchen.locator("#login-error").wait_for(state="visible")
    assert "Wrong e-mail or password" in await kitchen.locator("#login-error").inner_text()
    assert all("401" in e for e in errors), errors  # the browser logs the refused sign-in
    errors.clear()
    await kitchen.fill("#password", "")
    await kitchen.focus("#password")
    await kitchen.keyboard.type(PASSWORD)
    await kitchen.keyboard.press("Enter")
    card = kitchen.locator(f'article[data-order-id="{oid}"]')
    await card.wait_for()
    assert await card.get_attribute("data-status") == "pending"
    await card.locator('button[data-target="accepted"]').focus()
    await kitchen.keyboard.press("Enter")
    await kitchen.locator(f'article[data-order-id="{oid}"][data-status="accepted"]').wait_for()

    # The customer shares the order; the page shows it.
    async def share() -> Any:
        r = await system.http.post(f"/api/v1/orders/{oid}/share", headers=customer.headers)
        return r.status_code == 201 and r.json()

    link = await until(share)
    track = await open_page(browser, link["url"], errors)
    await track.locator('#status-text[data-status="accepted"]').wait_for()
    assert await track.locator("#chef").inner_text() == "Trattoria Zia"

    # A courier north of the kitchen goes online and takes the offer.
    courier_id = f"bc-{uuid.uuid4().hex[:8]}"
    r = await system.http.put("/api/v1/delivery/availability", json={
        "online": True, "vehicle": "bike"}, headers=system.core.auth(courier_id, "delivery"))
    assert r.status_code == 200, r.text
    device = Device(system, courier_id, (CHEF_AT[0] + 0.0011, CHEF_AT[1]))  # 120 m north
    async with device.running():
        offer = await asyncio.wait_for(device.offers.get(), 15)
        assert offer["order_id"] == oid
        assert offer["chef_name"] == "Trattoria Zia"
        r = await system.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                                   headers=system.core.auth(courier_id, "delivery"))
        assert r.status_code == 200, r.text

        # The chef cooks; the customer sees the courier on the map with an ETA, and the
        # kitchen sees when the courier will be there.
        await kitchen.locator(f'article[data-order-id="{oid}"] button[data-target="preparing"]'
                              ).click()
        await kitchen.locator(f'article[data-order-id="{oid}"] button[data-target="ready"]'
                              ).click()
        await kitchen.locator(f'article[data-order-id="{oid}"][data-status="ready"]').wait_for()
        await track.wait_for_function("document.querySelector('#eta').dataset.etaS !== ''",
                                      timeout=15000)
        first_eta = await eta_s(track)
        await device.drive_to(CHEF_AT)
        eta = kitchen.locator(f'article[data-order-id="{oid}"] .courier-eta')
        await kitchen.wait_for_function(
            "(el) => el.dataset.courierEtaS !== ''", arg=await eta.element_handle(),
            timeout=15000)
        assert "Courier arrives in" in await eta.inner_text()
        r = await device.report(oid, "picked_up")
        assert r.status_code == 200, r.text
        await track.locator('#status-text[data-status="picked_up"]').wait_for(timeout=15000)
        await device.drive_to((CHEF_AT[0] + (DOOR_AT[0] - CHEF_AT[0]) * 0.4,
                               CHEF_AT[1] + (DOOR_AT[1] - CHEF_AT[1]) * 0.4))  # 210 m to go
        await track.wait_for_function(
            f"Number(document.querySelector('#eta').dataset.etaS) < {first_eta}",
            timeout=15000)
        await track.screenshot(path=str(ARTIFACTS / "apps-track.png"))
        await kitchen.screenshot(path=str(ARTIFACTS / "apps-kitchen.png"))

        # Delivering far from the door is refused with a reason; at the door it completes.
        r = await device.report(oid, "delivered")
        assert r.status_code == 409, r.text
        assert "from the drop-off" in r.json()["detail"]
        await device.drive_to(DOOR_AT)

        async def delivered() -> bool:
            return (await device.report(oid, "delivered")).status_code == 200

        await until(delivered)
    await track.locator('#status-text[data-status="delivered"]').wait_for(timeout=15000)
    assert await track.locator('#timeline li[data-step="delivered"]').get_attribute(
        "data-done") == "true"
    await kitchen.locator(f'article[data-order-id="{oid}"]').wait_for(state="detached",
                                                                      timeout=20000)

    # An expired link says so.
    expired = ShareKey(system.settings.server.jwt_secret).issue(oid, int(time.time()) - 1)
    refused: list[str] = []  # the browser logs the 410 itself
    gone = await open_page(browser, f"{system.core.url}/track/{expired}", refused)
    await gone.locator("#problem").wait_for(state="visible")
    assert await gone.locator("#problem").inner_text() == "This tracking link has expired."
    await gone.screenshot(path=str(ARTIFACTS / "apps-track-expired.png"))

    # 360 px: nothing wider than the screen.
    for page in (kitchen, track):
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
    assert not errors, errors
