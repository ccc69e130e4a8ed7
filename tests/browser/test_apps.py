"""The people in the loop, in headless Chromium on real services: a customer orders and pays
through the API; the kitchen screen (phone width, keyboard only) shows the order live and
the chef moves it along, and shows when to start a scheduled one; the courier app, its GPS
emulated along a path, takes the offer and carries it; the customer's share link shows the
courier moving with an ETA that drops, and the delivery completes on all three screens. A
wrong password, an expired link and a delivery far from the door show clear messages; no
page logs an error."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.core.tracking.share import ShareKey
from api.settings import Settings
from geo.distance import haversine_m
from tests.browser.conftest import ARTIFACTS
from tests.conftest import BuiltRoads
from tests.system import CHEF_AT, DOOR_AT, PASSWORD, System, running_system, until

PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
async def system(settings: Settings, monaco_roads: BuiltRoads) -> AsyncIterator[System]:
    """Core rides the shipped Monaco roads: the maps draw its streets, the courier's route
    follows them."""
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with running_system(settings, dispatch__round_s=0.3,
                              roads__path=monaco_roads.directory) as s:
        yield s


class Phone:
    """The courier app's page with an emulated GPS that ``drive_to`` moves."""

    def __init__(self, context: Any, page: Any, at: tuple[float, float]) -> None:
        self.context = context
        self.page = page
        self.at = at

    async def drive_to(self, to: tuple[float, float], speed_mps: float = 50.0) -> None:
        """Move to ``to`` at ``speed_mps`` (ingest rejects fixes implying over 70 m/s), then
        hold there until the app has sent a fix from there (it sends once a second)."""
        start, tick_s = self.at, 0.1
        steps = max(1, math.ceil(haversine_m(*start, *to) / (speed_mps * tick_s)))
        for i in range(1, steps + 1):
            f = i / steps
            self.at = (start[0] + (to[0] - start[0]) * f, start[1] + (to[1] - start[1]) * f)
            await self.context.set_geolocation({"latitude": self.at[0],
                                                "longitude": self.at[1], "accuracy": 5})
            await asyncio.sleep(tick_s)
        await asyncio.sleep(1.3)


async def open_page(browser: Any, url: str, errors: list[str], **context_args: Any) -> Any:
    context = await browser.new_context(viewport=PHONE, **context_args)
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(f"{url}: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"{url}: {m.text}"))
    await page.goto(url)
    return page


async def streets_drawn(page: Any) -> None:
    """The page's map has drawn street lines from core's tiles and credits OpenStreetMap."""
    await page.wait_for_function(
        "document.querySelector('#map .maplibregl-canvas') !== null")
    await page.locator("#map .maplibregl-ctrl-attrib").filter(
        has_text="© OpenStreetMap contributors").wait_for(state="attached")
    assert await page.locator("#map").get_attribute("data-streets") == "true"
    await page.wait_for_function("window.hcMap && window.hcMap.map.loaded() && "
                                 "window.hcMap.map.queryRenderedFeatures("
                                 "{layers: ['streets']}).length > 0", timeout=15000)


async def tab_reaches_every_control(page: Any) -> int:
    """Tab from the top of the page focuses every visible control (buttons, fields, links,
    the map); returns how many there are."""
    wanted: list[str] = await page.evaluate("""() => {
      const all = [...document.querySelectorAll(
        'button, input, select, textarea, a[href], [tabindex]')].filter((e) =>
        !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0
        && getComputedStyle(e).visibility !== 'hidden');
      return all.map((e, i) => {
        e.dataset.kbd = String(i);
        return `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${e.textContent.trim()}`;
      });
    }""")
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    seen: set[int] = set()
    for _ in range(len(wanted) + 5):
        await page.keyboard.press("Tab")
        k = await page.evaluate("document.activeElement?.dataset?.kbd ?? null")
        if k is not None:
            seen.add(int(k))
        if len(seen) == len(wanted):
            break
    missing = [w for i, w in enumerate(wanted) if i not in seen]
    assert not missing, f"not reachable by Tab: {missing}"
    return len(wanted)


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
    assert await tab_reaches_every_control(kitchen) >= 3  # sign out, accept, decline
    await card.locator('button[data-target="accepted"]').focus()
    await kitchen.keyboard.press("Enter")
    await kitchen.locator(f'article[data-order-id="{oid}"][data-status="accepted"]').wait_for()
    # A second order, for three hours from now: its card says when to start cooking.
    slot = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    later = await system.paid_order(customer, dish, scheduled_for=slot)
    when = kitchen.locator(f'article[data-order-id="{later["id"]}"] .scheduled')
    await when.wait_for()
    assert "start cooking at" in await when.inner_text()

    # The customer shares the order; the page shows it.
    async def share() -> Any:
        r = await system.http.post(f"/api/v1/orders/{oid}/share", headers=customer.headers)
        return r.status_code == 201 and r.json()

    link = await until(share)
    track = await open_page(browser, link["url"], errors)
    await track.locator('#status-text[data-status="accepted"]').wait_for()
    assert await track.locator("#chef").inner_text() == "Trattoria Zia"
    await streets_drawn(track)
    assert await tab_reaches_every_control(track) >= 1  # the map (arrow keys pan it)

    # A courier 120 m north of the kitchen signs in on the courier app, goes online and
    # takes the offer; a reload mid-job comes back to the job.
    rider = await system.register("delivery", "Eli")
    start_at = (CHEF_AT[0] + 0.0011, CHEF_AT[1])
    app = await open_page(browser, f"{system.core.url}/courier/", errors,
                          geolocation={"latitude": start_at[0], "longitude": start_at[1],
                                       "accuracy": 5}, permissions=["geolocation"])
    phone = Phone(app.context, app, start_at)
    await app.locator("#login").wait_for(state="visible")
    await app.fill("#email", rider.email)
    await app.fill("#password", PASSWORD)
    await app.press("#password", "Enter")
    # Installable: a manifest, and a service worker over the app's folder.
    await app.wait_for_function(
        "navigator.serviceWorker.getRegistration('/courier/').then((r) => !!r)")
    manifest = await system.http.get("/courier/manifest.webmanifest")
    assert manifest.json()["start_url"] == "/courier/"
    await app.locator("#online").click()
    await app.locator('#online[data-online="true"]').wait_for()
    offer = app.locator(f'#offer[data-order-id="{oid}"]')
    await offer.wait_for(state="visible", timeout=15000)
    offer_text = await offer.inner_text()
    assert "Trattoria Zia" in offer_text
    assert "12 Rue Grimaldi, Monaco" in offer_text
    await app.keyboard.press("Enter")  # the offer card focuses Accept
    await app.locator('#job-status[data-status="assigned"]').wait_for()
    await app.reload()
    await app.locator('#job-status[data-status="assigned"]').wait_for()
    assert await app.locator("#job-customer").inner_text() == "Dee"
    # The job's map: the streets core rides under it, the route along them (many points,
    # not the straight two-stop line), OpenStreetMap credited.
    await app.locator('#map[data-route-model="roads"]').wait_for()
    assert int(await app.locator("#map").get_attribute("data-route-points") or 0) > 6
    await streets_drawn(app)
    assert await tab_reaches_every_control(app) >= 5  # sign out, vehicle, online, map, picked

    # The chef cooks; the customer sees the courier on the map with an ETA, and the kitchen
    # sees when the courier will be there.
    await kitchen.locator(f'article[data-order-id="{oid}"] button[data-target="preparing"]'
                          ).click()
    await kitchen.locator(f'article[data-order-id="{oid}"] button[data-target="ready"]').click()
    await kitchen.locator(f'article[data-order-id="{oid}"][data-status="ready"]').wait_for()
    await track.wait_for_function("document.querySelector('#eta').dataset.etaS !== ''",
                                  timeout=15000)
    first_eta = await eta_s(track)
    await phone.drive_to(CHEF_AT)
    eta = kitchen.locator(f'article[data-order-id="{oid}"] .courier-eta')
    await kitchen.wait_for_function(
        "(el) => el.dataset.courierEtaS !== ''", arg=await eta.element_handle(), timeout=15000)
    assert "Courier arrives in" in await eta.inner_text()
    await app.locator("#picked").click()
    await app.locator('#job-status[data-status="picked_up"]').wait_for()
    await track.locator('#status-text[data-status="picked_up"]').wait_for(timeout=15000)
    await phone.drive_to((CHEF_AT[0] + (DOOR_AT[0] - CHEF_AT[0]) * 0.4,
                          CHEF_AT[1] + (DOOR_AT[1] - CHEF_AT[1]) * 0.4))  # 210 m to go
    await track.wait_for_function(
        f"Number(document.querySelector('#eta').dataset.etaS) < {first_eta}", timeout=15000)

    # Delivering far from the door is refused with a reason; at the door it completes.
    await app.locator("#delivered").click()
    await app.locator("#job-error").wait_for(state="visible")
    assert "not at the door yet" in await app.locator("#job-error").inner_text()
    assert all("409" in e for e in errors), errors  # the browser logs the refusal
    errors.clear()
    await track.screenshot(path=str(ARTIFACTS / "apps-track.png"))
    await kitchen.screenshot(path=str(ARTIFACTS / "apps-kitchen.png"))
    await app.screenshot(path=str(ARTIFACTS / "apps-courier.png"), full_page=True)
    await phone.drive_to(DOOR_AT)
    await app.locator("#delivered").click()
    await app.locator("#job").wait_for(state="hidden", timeout=10000)
    await track.locator('#status-text[data-status="delivered"]').wait_for(timeout=15000)
    await app.reload()  # commerce has the delivery now (the page above heard it from there)
    await app.wait_for_function("document.querySelector('#earnings').dataset.cents !== ''")
    assert int(await app.locator("#earnings").get_attribute("data-cents") or 0) == (
        order["delivery_fee_cents"] + order["tip_cents"])
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
    for page in (kitchen, track, app):
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
    assert not errors, errors


async def test_schema_renders_offline(system: System, browser: Any) -> None:
    """Core's /schema draws its API docs with assets it serves itself: the page asks nothing
    of any other host. Commerce's page is the same (same plugin), with its own assets."""
    outside: list[str] = []

    async def only_loopback(route: Any) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    context = await browser.new_context()
    await context.route("**/*", only_loopback)
    page = await context.new_page()
    await page.goto(f"{system.core.url}/schema")
    await page.locator(".swagger-ui .info .title", has_text="HomeChef core").wait_for()
    assert await page.locator(".swagger-ui .opblock").count() > 10
    await context.close()
    assert not outside, outside
    html = (await system.shop.get("/schema")).text
    assert "http" not in html.split("<body>")[0]  # no asset from elsewhere
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/schema-ui/{asset}" in html
        assert (await system.shop.get(f"/schema-ui/{asset}")).status_code == 200
