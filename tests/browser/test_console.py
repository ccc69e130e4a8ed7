"""The fleet console end to end in headless Chromium: sign-in (and its refusals), couriers
appearing and moving on the canvas, KPI figures from live state, and a manual assignment made
through the order drawer that core's fleet API then reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from streams.events import DeliveryDetails, LatLng, OrderStatusChanged
from streams.jetstream import publish
from tests.browser.conftest import ARTIFACTS, Console

CENTRE = (12.9716, 77.5946)
COURIERS = 6


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Fleet(list[str]):
    """Courier ids; setting ``hold`` parks every courier where it is (fixes keep coming)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(ids)
        self.hold = asyncio.Event()


@contextlib.asynccontextmanager
async def moving_couriers(console: Console, n: int) -> AsyncIterator[Fleet]:
    """``n`` couriers on /ws/courier, each sending a fix every 0.5 s while drifting east."""
    ids = Fleet([f"bc-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)])
    stop = asyncio.Event()

    async def drive(i: int, cid: str) -> None:
        url = f"{console.core.ws_url}/ws/courier?token={console.core.token(cid, 'delivery')}"
        lat, lng = CENTRE[0] + 0.004 * (i - n / 2), CENTRE[1] + 0.003 * (i % 3)
        async with websockets.connect(url) as ws:
            while not stop.is_set():
                await ws.send(json.dumps({"type": "LOCATION",
                                          "payload": {"lat": lat, "lng": lng, "ts": now_ms()}}))
                if not ids.hold.is_set():
                    lng += 0.0002  # ~22 m per fix: a plausible bike
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

    tasks = [asyncio.create_task(drive(i, cid)) for i, cid in enumerate(ids)]
    try:
        yield ids
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def rider_name(cid: str) -> str:
    return f"Rider {cid.split('-')[1]}"


async def go_online(console: Console, http: httpx.AsyncClient, cid: str) -> None:
    """Online with a token that names the courier, as commerce's tokens do."""
    token = console.core.codec.issue(cid, "delivery", name=rider_name(cid))
    r = await http.put("/api/v1/delivery/availability",
                       headers={"Authorization": f"Bearer {token}"},
                       json={"online": True, "vehicle": "bike"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "idle"


async def waiting_order(console: Console) -> str:
    """An accepted, paid order as commerce announces it (core's projection enqueues it)."""
    oid = str(uuid.uuid4())
    t = now_ms()
    ev = OrderStatusChanged(
        order_id=oid, order_number=f"HC{oid[:6].upper()}", customer_id="cust-b",
        chef_id="chef-b", status="accepted", previous_status="pending", at_ms=t,
        pickup=LatLng(CENTRE[0] + 0.002, CENTRE[1] + 0.002),
        dropoff=LatLng(CENTRE[0] + 0.02, CENTRE[1] - 0.01),
        ready_at_ms=t, promised_at_ms=t + 40 * 60_000,
        details=DeliveryDetails(chef_name="Casa Bela", customer_name="Ana"))
    await publish(console.js, console.names.order_event("status", oid), ev,
                  msg_id=f"{oid}:acc")
    return oid


async def drag_courier_to(page: Any, box: dict[str, float], courier: str,
                          to: tuple[float, float]) -> tuple[float, float]:
    """Drag the map (from an open spot, never the courier itself) until ``courier`` is drawn
    within a few pixels of ``to`` (map coordinates); returns where it is drawn then, after
    checking that the canvas, not an overlay, is what a click there reaches."""
    where = f"window.hcConsole.courierOnScreen({json.dumps(courier)})"
    for _ in range(4):
        x, y = await page.evaluate(where)
        dx, dy = to[0] - x, to[1] - y
        if abs(dx) + abs(dy) < 3:
            break
        # Steps of at most 250 px each way, starting from the middle of the open area.
        dx, dy = max(-250.0, min(250.0, dx)), max(-250.0, min(250.0, dy))
        sx, sy = box["x"] + box["width"] * 0.3 - dx / 2, box["y"] + box["height"] * 0.5 - dy / 2
        await page.mouse.move(sx, sy)
        await page.mouse.down()
        await page.mouse.move(sx + dx, sy + dy, steps=5)
        await page.mouse.up()
    x, y = await page.evaluate(where)
    assert abs(to[0] - x) + abs(to[1] - y) < 3, (x, y, to)
    top = await page.evaluate(
        f"document.elementFromPoint({box['x'] + x}, {box['y'] + y})?.id")
    assert top == "map", top
    return x, y


async def kpi(page: Any, name: str) -> str:
    text: str = await page.locator(f'[data-kpi="{name}"]').inner_text()
    return text


async def test_console_login_live_map_kpis_and_manual_assign(
    console: Console, browser: Any
) -> None:
    """Signing in with a wrong password shows the error; the right one shows a map whose
    couriers appear and move, KPIs above zero, and an order assigned by hand in the drawer
    turns assigned in the UI and in GET /api/v1/fleet/orders."""
    errors: list[str] = []
    async with (httpx.AsyncClient(base_url=console.core.url, timeout=10) as http,
                moving_couriers(console, COURIERS) as couriers):
        for cid in couriers[:3]:
            await go_online(console, http, cid)
        order_id = await waiting_order(console)

        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(console.url)
        await page.locator("#login-form").wait_for(state="visible")

        await page.fill("#login-email", console.email)
        await page.fill("#login-password", "wrong-password")
        await page.click("#login-submit")
        error = page.locator("#login-error")
        await error.wait_for(state="visible", timeout=10_000)
        assert (await error.inner_text()).strip(), "a refused sign-in must say why"
        assert await page.locator("#app").is_hidden()

        await page.fill("#login-password", console.password)
        await page.click("#login-submit")
        await page.locator("#app").wait_for(state="visible", timeout=10_000)

        # Couriers appear on the canvas and move.
        await page.wait_for_function(
            f"Number(document.getElementById('map').dataset.courierCount) >= {COURIERS}",
            timeout=15_000)
        first = await page.evaluate(f"window.hcConsole.courier('{couriers[0]}')")
        assert first is not None
        await page.wait_for_function(
            f"(() => {{ const c = window.hcConsole.courier('{couriers[0]}');"
            f" return c && c.lng > {first['lng']}; }})()", timeout=10_000)
        assert int(await page.locator("#map").get_attribute("data-moves") or 0) > 0
        await page.wait_for_function(
            "window.hcConsole.courier(" + json.dumps(couriers[0]) + ").status === 'idle'",
            timeout=10_000)

        # KPI figures come from live state.
        await page.wait_for_function(
            "Number(document.querySelector('[data-kpi=\"couriers-online\"]').textContent) >= "
            f"{COURIERS} && Number(document.querySelector('[data-kpi=\"orders-waiting\"]')"
            ".textContent) >= 1", timeout=10_000)
        assert int(await kpi(page, "couriers-idle")) >= 3

        # The KPI bar holds one line at 1280 px.
        tops = await page.evaluate(
            "[...document.querySelectorAll('#kpis span')].map((s) => s.getBoundingClientRect())"
            ".map((r) => [r.top, r.height])")
        assert len({top for top, _ in tops}) == 1, tops
        assert all(h < 30 for _, h in tops), tops
        # An empty list says so; the hexagons' colours are explained.
        await page.click('.tabs button[data-tab="late"]')
        await page.locator("#orders li.empty", has_text="No order is late.").wait_for()
        assert await page.locator(".legend", has_text="more orders than couriers").count() == 1
        await page.click('.tabs button[data-tab="waiting"]')

        # Assign the waiting order by hand: pick it in the list (whose it is, and its age),
        # then an idle courier.
        row = page.locator(f'#orders li[data-order-id="{order_id}"]')
        await row.wait_for(timeout=10_000)
        assert "Casa Bela → Ana" in await row.inner_text()
        assert "just now" in await row.inner_text()
        await row.click()
        drawer = page.locator("#drawer")
        await page.wait_for_function(
            "document.getElementById('drawer').dataset.state === 'waiting'", timeout=10_000)
        pick = page.locator(f'#drawer-candidates [data-assign-courier="{couriers[1]}"]')
        await pick.wait_for(timeout=10_000)
        assert (await pick.inner_text()).startswith(rider_name(couriers[1]))
        # Not marked ready: the drawer shows when dispatch expects the food.
        assert (await page.locator("#drawer-ready").inner_text()).startswith("expected ")
        await pick.click()
        await page.wait_for_function(
            "document.getElementById('drawer').dataset.state === 'assigned'", timeout=10_000)
        # The console names the courier (its token's name), not its id.
        assert await page.locator("#drawer-courier").inner_text() == rider_name(couriers[1])
        assert await page.locator("#drawer-courier").get_attribute(
            "data-courier-id") == couriers[1]
        assert await drawer.locator("#drawer-unassign").is_visible()

        r = await http.get("/api/v1/fleet/orders?status=assigned",
                           headers=console.core.auth("fm-1", "fleet_manager"))
        mine = [o for o in r.json()["orders"] if o["order_id"] == order_id]
        assert mine
        assert mine[0]["courier_id"] == couriers[1]

        # The assignment shows in the KPIs and on the marker (blue: assigned).
        await page.wait_for_function(
            "Number(document.querySelector('[data-kpi=\"median-assign-s\"]').textContent) > 0",
            timeout=10_000)
        await page.wait_for_function(
            f"window.hcConsole.scene.orders.get('{order_id}')?.courierId === '{couriers[1]}'",
            timeout=10_000)

        # A second order, assigned by clicking the courier on the canvas (hit-testing).
        second = await waiting_order(console)
        await page.click("#drawer-close")
        await page.click('.tabs button[data-tab="waiting"]')
        row = page.locator(f'#orders li[data-order-id="{second}"]')
        await row.wait_for(timeout=10_000)
        await row.click()
        await page.wait_for_function(
            "document.getElementById('drawer').dataset.state === 'waiting'", timeout=10_000)
        box = await page.locator("#map").bounding_box()
        assert box is not None
        # Park the fleet so the target stays under the pointer, and let the glides finish.
        couriers.hold.set()
        await asyncio.sleep(1.6)
        # Drag the map so the courier sits in the open, left of the drawer that now covers
        # the map's right side: the user has taken the map, so it stops following the fleet.
        open_spot = (box["width"] * 0.3, box["height"] * 0.5)
        x, y = await drag_courier_to(page, box, couriers[2], open_spot)
        assert await page.evaluate("window.hcConsole.map.userMoved")
        await page.mouse.click(box["x"] + x, box["y"] + y)
        await page.wait_for_function(
            "document.getElementById('drawer').dataset.state === 'assigned'", timeout=10_000)
        assert await page.locator("#drawer-courier").inner_text() == rider_name(couriers[2])
        await page.click("#drawer-close")

        # The zone editor shows the zones API's refusal (a self-crossing "bow tie").
        await page.click("#zone-draw")
        for fx, fy in ((0.3, 0.3), (0.6, 0.6), (0.6, 0.3), (0.3, 0.6)):
            await page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        assert await page.locator("#zone-vertices").inner_text() == "4"
        await page.click("#zone-save")
        zone_error = page.locator("#zone-error")
        await zone_error.wait_for(state="visible", timeout=10_000)
        assert (await zone_error.inner_text()).startswith("422")
        assert await page.locator("#zone-panel").get_attribute("data-state") == "error"
        await page.click("#zone-cancel")

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "console.png"
        await page.screenshot(path=str(shot))
        print(f"console screenshot: {shot}")
        await context.close()
    assert errors == [], errors


@pytest.mark.parametrize(("role", "expect"), [
    ("customer", "fleet managers and admins"),
    ("fleet_manager", ""),
])
async def test_token_fragment_signs_in_staff_only(
    console: Console, browser: Any, role: str, expect: str
) -> None:
    """A wall screen opens /console#token=...: staff go straight to the map, anyone else
    sees the login form with a clear refusal (and the token leaves the address bar)."""
    token = console.core.token(f"u-{role}", role)
    context = await browser.new_context()
    page = await context.new_page()
    # Staff open it without the trailing slash: the shell's assets must still load.
    url = console.url if expect else console.url.rstrip("/")
    await page.goto(f"{url}#token={token}")
    if expect:
        error = page.locator("#login-error")
        await error.wait_for(state="visible", timeout=10_000)
        assert expect in await error.inner_text()
    else:
        await page.locator("#app").wait_for(state="visible", timeout=10_000)
        await page.wait_for_function(
            "document.getElementById('status').dataset.state === 'live'", timeout=10_000)
    assert "token=" not in page.url
    await context.close()


async def test_console_socket_keeps_the_token_out_of_its_url(
    console: Console, browser: Any
) -> None:
    """The console authenticates /ws/console with the `bearer` subprotocol: the socket goes
    live and its URL carries no token (URLs end up in proxies' and access logs)."""
    token = console.core.token("u-fm-socket", "fleet_manager")
    context = await browser.new_context()
    page = await context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.goto(f"{console.url}#token={token}")
    await page.wait_for_function(
        "document.getElementById('status').dataset.state === 'live'", timeout=10_000)
    assert [url.split("://", 1)[1].split("/", 1)[1] for url in sockets] == ["ws/console"]
    await context.close()


async def test_zone_editor_creates_edits_toggles_and_deletes(
    console: Console, browser: Any
) -> None:
    """A fleet manager draws a service zone, renames and redraws it, switches it off and
    deletes it, all from the console; core's zones API reflects each step."""
    staff = console.core.auth("fm-zones", "fleet_manager")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    name = f"Zone {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=console.core.url, timeout=10) as http:

        async def mine() -> list[dict[str, Any]]:
            r = await http.get("/api/v1/fleet/zones", headers=staff)
            assert r.status_code == 200, r.text
            return [z for z in r.json()["data"] if z["name"].startswith(name)]

        try:
            token = console.core.token("fm-zones", "fleet_manager")
            await page.goto(f"{console.url}#token={token}")
            await page.locator("#app").wait_for(state="visible", timeout=10_000)
            box = await page.locator("#map").bounding_box()
            assert box is not None

            async def click_at(fx: float, fy: float) -> None:
                await page.mouse.click(box["x"] + box["width"] * fx,
                                       box["y"] + box["height"] * fy)

            # Draw a square and save it: it is listed, with its res-9 cover.
            await page.click("#zone-draw")
            for fx, fy in ((0.3, 0.3), (0.6, 0.3), (0.6, 0.6), (0.3, 0.6)):
                await click_at(fx, fy)
            await page.fill("#zone-name", name)
            await page.click("#zone-save")
            await page.wait_for_function(
                "document.getElementById('zone-panel').hidden", timeout=10_000)
            [zone] = await mine()
            assert zone["active"]
            assert zone["cells"] > 0
            assert len(zone["geometry"]["coordinates"][0]) == 5
            row = page.locator(f'#zones li[data-zone-id="{zone["id"]}"]')
            await row.wait_for(timeout=10_000)
            assert name in await row.inner_text()

            # Edit: the panel starts from the zone's outline; rename and redraw a triangle.
            await row.locator("[data-zone-edit]").click()
            assert await page.locator("#zone-panel").get_attribute("data-mode") == "edit"
            assert await page.locator("#zone-vertices").inner_text() == "4"
            await page.click("#zone-clear")
            for fx, fy in ((0.35, 0.35), (0.55, 0.35), (0.45, 0.55)):
                await click_at(fx, fy)
            await page.fill("#zone-name", name + " east")
            await page.click("#zone-save")
            await page.wait_for_function(
                "document.getElementById('zone-panel').hidden", timeout=10_000)
            [edited] = await mine()
            assert edited["id"] == zone["id"]
            assert edited["name"] == name + " east"
            assert len(edited["geometry"]["coordinates"][0]) == 4
            assert 0 < edited["cells"] < zone["cells"]

            # Switch it off: the API says inactive and the row is struck through.
            await row.locator("[data-zone-active]").uncheck()
            await page.wait_for_function(
                f"document.querySelector('#zones li[data-zone-id=\"{zone['id']}\"]')"
                "?.classList.contains('off')", timeout=10_000)
            [off] = await mine()
            assert off["active"] is False

            # Delete, confirming the dialog: gone from the API and the list.
            page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
            await row.locator("[data-zone-delete]").click()
            await row.wait_for(state="detached", timeout=10_000)
            assert await mine() == []
        finally:
            for z in await mine():  # never leave a zone behind for other tests
                await http.delete(f"/api/v1/fleet/zones/{z['id']}", headers=staff)
            await context.close()
    assert errors == [], errors
