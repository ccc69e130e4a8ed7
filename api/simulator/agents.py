"""The city's actors, each an asyncio task speaking only the public APIs, as real apps would:
chefs (commerce), customers (commerce), couriers (core: ``/ws/courier`` + HTTP).

Everything goes over the wire: a courier at the chef's door learns the food is ready from
core's ORDER_READY push (or, if that push was lost, from GET /delivery/orders). Only when the
simulated chef's app failed to mark it ready is the food handed over in-process, so a courier
is never stranded by a simulated error (which is reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
import uuid
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from api.simulator.city import ChefSpec, CourierSpec, CustomerSpec, Point, random_point
from api.simulator.clients import (
    REPLAYABLE,
    V1,
    Account,
    SimulatorError,
    expect,
    socket_auth,
)
from api.simulator.movement import Leg, RideNoise, gps_jitter, plan_leg, road_leg
from api.simulator.world import World, iso_to_s, now_s
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel

PASSWORD = "simulated-password-1"
AT_DOOR_M = 150.0
READY_POLL_S = 5.0  # a courier waiting at a chef re-checks core this often
"""Core accepts `delivered` within this distance of the drop-off (core's dispatch settings)."""
_ALL_DAY = {d: {"open": "00:00", "close": "24:00"} for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}


class Behaviour(msgspec.Struct, frozen=True, kw_only=True):
    """How the actors behave (finite defaults; tests shorten them)."""

    accept_prob: float = 0.9
    fix_interval_s: tuple[float, float] = (2.0, 4.0)
    think_s: tuple[float, float] = (0.5, 2.0)
    """A courier's delay before answering an offer."""
    chef_poll_s: float = 2.0
    speed_factor: float = 1.0
    prep_scale: float = 1.0
    """Multiplies every chef's preparation time (tests use a small value)."""
    run_tag: str = ""
    """Makes this run's e-mail addresses unique on a shared system."""
    wander_m: float = 0.0
    """Idle couriers cruise to a random spot up to this far away, pause, repeat (the demo,
    so the map moves before the first order; 0 = idle couriers stand still)."""
    wander_pause_s: tuple[float, float] = (5.0, 20.0)
    progress_attempts: int = 8
    """A courier's status update is tried this often on transport errors (then given up)."""
    progress_retry_s: float = 0.5
    """First pause before such a retry (doubling, at most 5 s)."""
    check_in_s: float = 10.0
    """A courier app asks core which orders it holds this often (and at once after its
    socket reconnected or an answer was lost), as real apps reconcile with the server."""
    gps_accuracy_m: float = 8.0
    """The accuracy every fix claims. On roads the reported position is off by GPS noise
    within it (`movement.gps_jitter`); 0: exact positions."""
    ride_noise: RideNoise | None = RideNoise()
    """On roads, how a courier rides a route (own pace, stops at junctions); None: the
    route's duration at a constant speed."""


def _email(tag: str, role: str, index: int) -> str:
    return f"sim-{tag}-{role}-{index}@example.com"


_KITCHEN_FLOW = ("pending", "accepted", "preparing", "ready", "picked_up", "delivering",
                 "delivered")


def _at_or_past(current: str, target: str) -> bool:
    return (current in _KITCHEN_FLOW and target in _KITCHEN_FLOW
            and _KITCHEN_FLOW.index(current) >= _KITCHEN_FLOW.index(target))


# -- chefs ---------------------------------------------------------------------------------

class ChefAgent:
    def __init__(self, spec: ChefSpec, commerce: httpx.AsyncClient, world: World,
                 behaviour: Behaviour) -> None:
        self.spec = spec
        self.commerce = commerce
        self.world = world
        self.b = behaviour
        self.account: Account | None = None
        self.profile_id = ""
        self.menu: list[str] = []
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def open_kitchen(self, admin: Account) -> None:
        """Register, onboard, get approved by the admin, go online, publish the menu."""
        s = self.spec
        self.account = await Account.register(self.commerce, _email(self.b.run_tag, "chef",
                                                                     s.index),
                                              PASSWORD, "chef", s.name)
        h = await self.account.headers()
        r = await self.commerce.put(f"{V1}/chef/profile", headers=h, json={
            "business_name": s.name, "description": f"Home-cooked {s.cuisine}",
            "cuisines": [s.cuisine], "latitude": s.at.lat, "longitude": s.at.lng,
            "service_radius": 10, "delivery_fee_cents": 299, "minimum_order_cents": 0,
            "prep_time_minutes": max(1, math.ceil(s.prep_s * self.b.prep_scale / 60)),
            "operating_hours": _ALL_DAY})
        self.profile_id = expect(r, 200)["id"]
        r = await self.commerce.put(f"{V1}/admin/chefs/{self.profile_id}/verify",
                                    json={"status": "approved"}, headers=await admin.headers())
        expect(r, 200)
        r = await self.commerce.put(f"{V1}/chef/availability", headers=h,
                                    json={"is_online": True, "accepting_orders": True})
        expect(r, 200)
        for dish in s.dishes:
            r = await self.commerce.post(f"{V1}/chef/menu", headers=h, json={
                "name": dish.name, "price_cents": dish.price_cents, "category": "mains",
                "dietary_tags": [], "prep_time": 0})
            self.menu.append(expect(r, 201)["id"])

    async def run(self) -> None:
        """Poll the paid orders waiting for this kitchen; cook each one."""
        assert self.account
        while True:
            try:
                r = await self.commerce.get(f"{V1}/chef/orders", headers=await
                                            self.account.headers(),
                                            params={"status": "pending", "limit": 100})
                for order in expect(r, 200)["data"]:
                    if order["id"] not in self._seen:
                        self._seen.add(order["id"])
                        task = asyncio.create_task(self._cook(order["id"]))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
            except (httpx.HTTPError, SimulatorError) as exc:
                self.world.error(f"chef {self.spec.index}: {exc!r}")
            await asyncio.sleep(self.b.chef_poll_s)

    async def _status(self, order_id: str, status: str) -> dict[str, Any]:
        """Move an order on. The transport sends a PUT again when the connection broke
        after sending, so a 409 may only mean the lost attempt applied it: the order is
        re-read and an order already at (or past) `status` counts as done."""
        assert self.account
        h = await self.account.headers()
        r = await self.commerce.put(f"{V1}/chef/orders/{order_id}/status", headers=h,
                                    json={"status": status})
        if r.status_code == 409:
            current = await self.commerce.get(f"{V1}/chef/orders/{order_id}", headers=h)
            order: dict[str, Any] = expect(current, 200)
            if _at_or_past(order.get("status", ""), status):
                return order
        body: dict[str, Any] = expect(r, 200)
        return body

    async def _cook(self, order_id: str) -> None:
        try:
            accepted = await self._status(order_id, "accepted")
            t = self.world.timeline(order_id)
            if t is not None:
                t.dispatchable_s = iso_to_s(accepted.get("accepted_at")) or now_s()
                t.promised_s = iso_to_s(accepted.get("estimated_delivery"))
            await self._status(order_id, "preparing")
            await asyncio.sleep(self.spec.prep_s * self.b.prep_scale)
            await self._status(order_id, "ready")
            self.world.marked_ready.add(order_id)
        except (httpx.HTTPError, SimulatorError) as exc:
            self.world.error(f"chef {self.spec.index} order {order_id}: {exc!r}")
            # The app failed: the food is handed over anyway, never strand a courier.
            event = self.world.ready_event(order_id)
            if event is not None:
                event.set()


# -- customers -----------------------------------------------------------------------------

class CustomerAgent:
    def __init__(self, spec: CustomerSpec, commerce: httpx.AsyncClient, world: World,
                 behaviour: Behaviour) -> None:
        self.spec = spec
        self.commerce = commerce
        self.world = world
        self.b = behaviour
        self.account: Account | None = None
        self.address_id = ""
        self._lock = asyncio.Lock()

    async def _sign_up(self) -> Account:
        async with self._lock:
            if self.account is None:
                account = await Account.register(
                    self.commerce, _email(self.b.run_tag, "customer", self.spec.index),
                    PASSWORD, "customer", f"Customer {self.spec.index}")
                r = await self.commerce.post(f"{V1}/users/me/addresses",
                                             headers=await account.headers(), json={
                    "label": "Home", "line1": f"{self.spec.index + 1} Simulated Road",
                    "city": "Bengaluru", "state": "KA", "postal_code": "560001",
                    "country": "IN", "latitude": self.spec.home.lat,
                    "longitude": self.spec.home.lng})
                self.address_id = expect(r, 201)["id"]
                self.account = account
            return self.account

    async def order(self, chef: ChefAgent, lines: tuple[tuple[int, int], ...]) -> str | None:
        """Place and pay one order; returns its id (None if the system refused)."""
        asked_s = now_s()
        try:
            account = await self._sign_up()
            h = await account.headers()
            r = await self.commerce.post(f"{V1}/orders", headers={
                **h, "Idempotency-Key": uuid.uuid4().hex}, json={
                "chef_id": chef.profile_id, "delivery_address_id": self.address_id,
                "items": [{"menu_item_id": chef.menu[d], "quantity": q} for d, q in lines]})
            order_id: str = expect(r, 201)["id"]
            self.world.placed(order_id).asked_s = asked_s
            self.world.watchers[order_id] = account.headers
        except (httpx.HTTPError, SimulatorError) as exc:
            self.world.error(f"customer {self.spec.index}: {exc!r}")
            return None
        try:
            # Both payment calls are safe to send twice (an intent per order; confirming a
            # finished payment returns it), so the transport replays them after a lost answer.
            r = await self.commerce.post(f"{V1}/payments/intent", headers=h,
                                         json={"order_id": order_id}, extensions=REPLAYABLE)
            payment = expect(r, 201, 200)
            r = await self.commerce.post(f"{V1}/payments/confirm", headers=h, json={
                "payment_id": payment["id"], "payment_method": "pm_card_visa"},
                extensions=REPLAYABLE)
            if expect(r, 200)["status"] != "succeeded":
                raise SimulatorError(f"payment of {order_id} did not succeed")
            self.world.paid.add(order_id)
            t = self.world.timeline(order_id)
            if t is not None:
                t.paid_s = now_s()
            return order_id
        except (httpx.HTTPError, SimulatorError) as exc:
            self.world.error(f"customer {self.spec.index} paying {order_id}: {exc!r}")
            await self._abandon(order_id, h)
            return None

    async def _abandon(self, order_id: str, h: dict[str, str]) -> None:
        """The app could not pay: cancel the order rather than leave it pending."""
        try:
            r = await self.commerce.put(f"{V1}/orders/{order_id}/cancel", headers=h,
                                        json={"reason": "payment failed"})
            order = expect(r, 200)
        except (httpx.HTTPError, SimulatorError) as exc:
            self.world.error(f"customer {self.spec.index} cancelling {order_id}: {exc!r}")
            return
        t = self.world.timeline(order_id)
        if t is not None and order.get("status") == "cancelled":
            t.cancelled_s = iso_to_s(order.get("cancelled_at")) or now_s()


# -- couriers ------------------------------------------------------------------------------

class _Job(msgspec.Struct, kw_only=True):
    """An order a courier holds."""

    order_id: str
    pickup: Point
    drop: Point
    ready_at_ms: int
    picked: bool = False
    withdrawn: bool = False
    """Core took it back (UNASSIGNED) before it was picked up: the courier drops it."""
    reported_s: float | None = None
    """When the delivery report that core accepted was sent."""


class _Gone(Exception):
    """The order is no longer this courier's (unassigned or cancelled)."""


class CourierAgent:
    """One device: a socket streaming fixes every 2-4 s, offers in; HTTP for decisions."""

    def __init__(self, spec: CourierSpec, commerce: httpx.AsyncClient, core: httpx.AsyncClient,
                 core_ws_url: str, world: World, behaviour: Behaviour, seed: int,
                 model: HaversineTravelModel, area: tuple[Point, float] | None = None,
                 roads: bool = False) -> None:
        self.spec = spec
        self.roads = roads
        """Core rides the roads: rides to chefs and doors follow `GET /routing/route`."""
        self.area = area
        """The city's centre and radius (wandering stays inside)."""
        self.commerce = commerce
        self.core = core
        self.ws_url = core_ws_url
        self.world = world
        self.b = behaviour
        self.rng = random.Random(f"courier-{seed}-{spec.index}")
        self.gps_rng = random.Random(f"gps-{seed}-{spec.index}")
        """GPS noise has its own draws: the courier's decisions do not depend on it."""
        self.model = model
        self.account: Account | None = None
        self.id = ""
        self.pos = spec.start
        self.leg: Leg | None = None
        self.leg_started = 0.0
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ready: dict[str, asyncio.Event] = {}
        """Per held order: set by core's ORDER_READY push."""
        self.ws: ClientConnection | None = None
        self._last_ts = 0
        self._send_lock = asyncio.Lock()
        self._cruised = False
        self.jobs: list[_Job] = []
        """Orders held, in the order taken (several when dispatch stacks them)."""
        self._worker: asyncio.Task[None] | None = None
        self.stage = "idle"
        """What the route runner is doing (for the unfinished-orders report)."""
        self._doubt = False
        """Set when the app may be out of step with core (socket reconnected, an answer
        lost): the next check-in re-asserts online + vehicle and reconciles the orders."""
        self._next_check = 0.0
        self._resends: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        """One line on this courier's route, for the report of orders left unfinished."""
        jobs = ", ".join(f"{j.order_id}{' (on board)' if j.picked else ''}" for j in self.jobs)
        leg = ""
        if self.leg is not None:
            elapsed = time.monotonic() - self.leg_started
            leg = (f"; leg {self.leg.distance_m:.0f} m from ({self.leg.start.lat:.5f}, "
                   f"{self.leg.start.lng:.5f}) to ({self.leg.end.lat:.5f}, "
                   f"{self.leg.end.lng:.5f}), {elapsed:.0f} of {self.leg.duration_s:.0f} s")
        return (f"courier {self.spec.index} ({self.id}, {self.spec.vehicle.value}): "
                f"{self.stage}; route runner {'running' if self._busy() else 'stopped'}; "
                f"holds [{jobs}]{leg}")

    # -- wire ------------------------------------------------------------------------------
    def where(self) -> Point:
        if self.leg is None:
            return self.pos
        return self.leg.position(time.monotonic() - self.leg_started)

    async def send_fix(self) -> None:
        if self.ws is None:
            return
        p = self.where()
        accuracy = self.b.gps_accuracy_m
        if self.roads and accuracy > 0:
            p = gps_jitter(p, self.gps_rng, accuracy)
        ts = max(self._last_ts + 1, time.time_ns() // 1_000_000)  # strictly newer
        self._last_ts = ts
        fix: dict[str, Any] = {"lat": p.lat, "lng": p.lng, "ts": ts,
                               "accuracy": accuracy or 8.0}
        elapsed = time.monotonic() - self.leg_started
        if self.leg is not None and elapsed < self.leg.duration_s:
            fix["speed"] = round(self.leg.speed_mps(elapsed), 2)
            fix["heading"] = round(self.leg.heading_deg(elapsed), 1)
        async with self._send_lock:
            with contextlib.suppress(WebSocketException, OSError):
                await self.ws.send(json.dumps({"type": "LOCATION", "payload": fix}))

    async def _socket(self) -> None:
        """Keep the device socket open (reconnecting) and stream fixes every 2-4 s."""
        assert self.account
        lo, hi = self.b.fix_interval_s
        connected_before = False
        while True:
            try:
                token = await self.account.token()
                async with connect(f"{self.ws_url}/ws/courier", subprotocols=socket_auth(token),
                                   open_timeout=10, ping_interval=None) as ws:
                    self.ws = ws
                    if connected_before:
                        self._doubt = True  # what happened while the line was down?
                    connected_before = True
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        while not reader.done():
                            await self.send_fix()
                            await asyncio.wait([reader], timeout=self.rng.uniform(lo, hi))
                    finally:
                        reader.cancel()
                        self.ws = None
            except (WebSocketException, OSError, TimeoutError) as exc:
                self.world.error(f"courier {self.spec.index} socket: {exc!r}")
            await asyncio.sleep(1.0)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            async for raw in ws:
                with contextlib.suppress(ValueError):
                    msg = json.loads(raw)
                    if not isinstance(msg, dict):
                        continue
                    if msg.get("type") == "ERROR":
                        if (msg.get("payload") or {}).get("reason") == "not_stored":
                            # Fixes the stream never stored: where the device is now
                            # replaces them (newer than anything core has).
                            resend = asyncio.get_running_loop().create_task(self.send_fix())
                            self._resends.add(resend)
                            resend.add_done_callback(self._resends.discard)
                    elif msg.get("type") != "PING":
                        self.inbox.put_nowait(msg)

    async def _h(self) -> dict[str, str]:
        assert self.account
        return await self.account.headers()

    # -- life ------------------------------------------------------------------------------
    async def sign_up(self) -> None:
        self.account = await Account.register(
            self.commerce, _email(self.b.run_tag, "courier", self.spec.index), PASSWORD,
            "delivery", f"Courier {self.spec.index}")
        self.id = self.account.user_id
        self.world.courier_state[self.id] = "offline"

    async def run(self) -> None:
        if self.account is None:
            await self.sign_up()
        socket = asyncio.create_task(self._socket())
        try:
            for _ in range(100):  # the first fix must be in before going online
                if self.ws is not None:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)
            r = await self.core.put(f"{V1}/delivery/availability", headers=await self._h(),
                                    json={"online": True, "vehicle": self.spec.vehicle.value})
            expect(r, 200)
            self.world.courier_state[self.id] = "idle"
            if self.world.first_online is None:
                self.world.first_online = time.monotonic()
                self.world.someone_online.set()
            self._next_check = time.monotonic() + self.b.check_in_s
            wander_at: float | None = None
            while True:
                if self._doubt or time.monotonic() >= self._next_check:
                    await self._check_in()
                if wander_at is None:
                    pause = self._idle_timeout()
                    wander_at = None if pause is None else time.monotonic() + pause
                wake = min(self._next_check, wander_at or math.inf)
                try:
                    msg = await asyncio.wait_for(self.inbox.get(),
                                                 max(0.0, wake - time.monotonic()))
                except TimeoutError:
                    if wander_at is not None and time.monotonic() >= wander_at:
                        wander_at = None
                        await self._wander()
                    continue
                wander_at = None
                kind, payload = msg.get("type"), msg.get("payload") or {}
                if kind == "OFFER":  # also while riding: dispatch may stack a second order
                    await self._answer(payload)
                elif kind == "ASSIGNED":  # a fleet manager's force-assign
                    self._take(payload, via="fleet")
                elif kind == "ORDER_READY":
                    self._ready_signal(str(payload.get("order_id", ""))).set()
                elif kind == "UNASSIGNED":
                    self._drop(str(payload.get("order_id", "")))
        finally:
            for task in (self._worker, socket):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def _busy(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def _idle_timeout(self) -> float | None:
        if self.b.wander_m <= 0 or self._busy():
            return None  # a courier with orders rides its route, it does not cruise
        if not self._cruised:  # set off at once: the map moves as couriers come online
            self._cruised = True
            return self.rng.uniform(0.2, 1.0)
        pause = self.rng.uniform(*self.b.wander_pause_s)
        if self.leg is not None:  # still cruising: look again when this leg ends
            pause += max(0.0, self.leg.duration_s - (time.monotonic() - self.leg_started))
        return pause

    async def _wander(self) -> None:
        """Set off (without awaiting the ride) towards a nearby spot inside the city: along
        the streets when core rides the roads, ending on the street nearest the spot."""
        self.pos = self.where()
        target = random_point(self.rng, self.pos, self.b.wander_m)
        if self.area is not None:
            center, radius = self.area
            if haversine_m(center.lat, center.lng, target.lat, target.lng) > radius:
                target = random_point(self.rng, center, radius)
        leg = await self._plan_ride(self.pos, target, end_on_road=True)
        self.pos = self.where()  # in case it moved while the route was asked
        self.leg = leg
        self.leg_started = time.monotonic()

    async def _answer(self, offer: dict[str, Any]) -> None:
        if int(offer.get("expires_at", 0)) <= time.time_ns() // 1_000_000:
            return  # read too late (e.g. queued while delivering): core has withdrawn it
        await asyncio.sleep(self.rng.uniform(*self.b.think_s))
        accept = self.rng.random() < self.b.accept_prob
        if accept and offer.get("stacked"):
            self.world.offered_stacked.add(str(offer["order_id"]))
        url = f"{V1}/delivery/offers/{offer['offer_id']}/{'accept' if accept else 'decline'}"
        try:
            r = await self.core.post(url, headers=await self._h())
        except httpx.HTTPError as exc:
            self.world.error(f"courier {self.spec.index} answer: {exc!r}")
            self._doubt = True  # did core take the answer? the check-in will tell
            return
        if accept and r.status_code == 200:
            self._take(offer)
        elif r.status_code >= 500:
            self._doubt = True

    async def _check_in(self) -> None:
        """Re-assert online + vehicle after a doubt, then carry every order core says this
        courier holds that the app did not know of (an accept whose answer was lost, a
        fleet manager's assignment pushed while the socket was down)."""
        self._next_check = time.monotonic() + self.b.check_in_s
        doubt, self._doubt = self._doubt, False
        try:
            h = await self._h()
            if doubt:
                r = await self.core.put(f"{V1}/delivery/availability", headers=h, json={
                    "online": True, "vehicle": self.spec.vehicle.value})
                expect(r, 200, 409)  # 409: busy with orders, still online
            asked = {j.order_id for j in self.jobs}
            r = await self.core.get(f"{V1}/delivery/orders", headers=h)
            held = {j.order_id for j in self.jobs}
            # One held when asking and gone now ended while core answered (delivered, say):
            # core's list may predate that, so it is not taken again.
            ended = asked - held
            listed = [o for o in expect(r, 200)["orders"] if o["order_id"] not in ended]
            # An order learnt here joins a route core says the courier already rides (an
            # order both agree on, or one learnt just before): core stacked it there.
            riding = any(o["order_id"] in held for o in listed)
            for order in listed:
                if order["order_id"] in held:
                    continue
                self.world.reconciled += 1
                self._take({"order_id": order["order_id"], "pickup": order["pickup"],
                            "dropoff": order["dropoff"], "ready_at": order.get("ready_at"),
                            "stacked": riding},
                           picked=order["status"] in ("picked_up", "delivering"),
                           via="check-in")
                riding = True
        except (httpx.HTTPError, SimulatorError) as exc:
            self._doubt = self._doubt or doubt
            self.world.error(f"courier {self.spec.index} check-in: {exc!r}")

    def _ready_signal(self, order_id: str) -> asyncio.Event:
        return self._ready.setdefault(order_id, asyncio.Event())

    async def _wait_for_food(self, order_id: str) -> None:
        """Until core says the food is ready: ORDER_READY on the socket, or a poll of
        GET /delivery/orders every READY_POLL_S (a push is at most once: a reconnect loses it)."""
        pushed = self._ready_signal(order_id)
        handed = self.world.ready_event(order_id)  # set only when the chef's app failed
        try:
            while True:
                if pushed.is_set():  # possibly before the courier reached the door
                    self.world.ready_by_push += 1
                    return
                if handed is not None and handed.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pushed.wait(), READY_POLL_S)
                    continue
                r = await self.core.get(f"{V1}/delivery/orders", headers=await self._h())
                mine = [o for o in expect(r, 200)["orders"] if o["order_id"] == order_id]
                if not mine:
                    raise _Gone("no longer in GET /delivery/orders")
                if mine[0].get("food_ready"):
                    self.world.ready_by_poll += 1
                    return
        finally:
            self._ready.pop(order_id, None)

    async def _progress(self, order_id: str, status: str) -> httpx.Response:
        """PUT an order's status, as a courier app would: a transport error (connection
        reset, timeout: core busy) is retried, since the app cannot know whether core applied
        the change, and a retry answered "not allowed while the order is <status>" means the
        lost attempt did apply it (a 200 is returned then). Giving up after
        `progress_attempts` raises the last error, as before."""
        url = f"{V1}/delivery/orders/{order_id}"
        for attempt in range(self.b.progress_attempts):
            try:
                r = await self.core.put(url, headers=await self._h(), json={"status": status})
            except httpx.TransportError as exc:
                if attempt + 1 >= self.b.progress_attempts:
                    raise
                self.world.error(f"courier {self.spec.index} order {order_id} {status}: "
                                 f"{exc!r}, retrying")
                await asyncio.sleep(min(5.0, self.b.progress_retry_s * 2 ** attempt))
                continue
            # "not allowed while the order is <status>": a lost attempt (ours, or one the
            # transport replayed after the connection broke) already applied it.
            if r.status_code == 409 and f"while the order is {status}" in r.text:
                return httpx.Response(200, json={"status": status}, request=r.request)
            return r
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _ride(self, to: Point) -> None:
        start = self.pos = self.where()  # wherever it was cruising to
        self.leg = await self._plan_ride(start, to)
        self.leg_started = time.monotonic()
        await asyncio.sleep(self.leg.duration_s)
        self.pos = to
        self.leg = None
        await self.send_fix()  # a fix at the destination right away

    async def _plan_ride(self, start: Point, to: Point, *, end_on_road: bool = False) -> Leg:
        """Along the roads when core has them (its route, asked as this courier, ridden
        with `Behaviour.ride_noise`), else (or when the route cannot be had) the straight
        line. `end_on_road`: stop where the route leaves the street (a cruise)."""
        if self.roads:
            params = {"from_lat": start.lat, "from_lng": start.lng, "to_lat": to.lat,
                      "to_lng": to.lng, "vehicle": self.spec.vehicle.value}
            with contextlib.suppress(httpx.HTTPError):
                r = await self.core.get(f"{V1}/routing/route", params=params,
                                        headers=await self._h())
                if r.status_code == 200:
                    noise = self.b.ride_noise
                    return road_leg(start, to, r.json(), self.b.speed_factor,
                                    rng=None if noise is None else self.rng,
                                    noise=noise, end_on_road=end_on_road)
        return plan_leg(start, to, self.spec.vehicle, self.model, self.b.speed_factor)

    def _take(self, offer: dict[str, Any], *, picked: bool = False,
              via: str = "offer") -> None:
        """Hold one more order (`picked`: already on board); the route runner (started if
        need be) carries it."""
        job = _Job(order_id=offer["order_id"],
                   pickup=Point(offer["pickup"]["lat"], offer["pickup"]["lng"]),
                   drop=Point(offer["dropoff"]["lat"], offer["dropoff"]["lng"]),
                   ready_at_ms=int(offer.get("ready_at") or 0), picked=picked)
        w = self.world
        w.courier_state[self.id] = "busy"
        w.hold(job.order_id, self.id, stacked=bool(offer.get("stacked")), via=via)
        t = w.timeline(job.order_id)
        if t is not None and t.assigned_s is None:
            t.assigned_s = now_s()
            w.probe_eta(job.order_id, "assign")
        if w.first_riding is None:
            w.first_riding = time.monotonic()
            w.someone_riding.set()
        self.jobs.append(job)
        if not self._busy():
            self._worker = asyncio.create_task(self._run_route())

    async def _run_route(self) -> None:
        """Serve the held orders stop by stop, always riding to the nearest stop still open
        (a held order's chef, or the door of one on board), as a courier app without route
        guidance would; an order stacked on the way joins the open stops."""
        try:
            while self.jobs:
                job = self._nearest_job()
                try:
                    if job.picked:
                        ended = await self._drop_off(job)
                    else:
                        await self._pick_up(job)
                        continue  # still held: its door is now an open stop
                except _Gone as exc:
                    ended = f"taken away: {exc}"[:120]
                    self.world.error(f"courier {self.spec.index}: order {job.order_id} "
                                     f"{ended}")
                except (httpx.HTTPError, SimulatorError) as exc:
                    ended = f"failed: {exc!r}"[:120]
                    self.world.error(f"courier {self.spec.index} order {job.order_id}: {exc!r}")
                self.jobs.remove(job)
                self.world.release(job.order_id, self.id, ended, job.reported_s)
        finally:
            for job in self.jobs:  # cancelled mid-route (the run is ending)
                self.world.release(job.order_id, self.id, "the run ended")
            self.jobs.clear()
            self.world.courier_state[self.id] = "idle"
            self.stage = "idle"

    def _drop(self, order_id: str) -> None:
        """Core took the order back (a fleet manager, or the watchdog): stop holding it at
        once; the route runner skips it (or gives up riding to its chef)."""
        for job in self.jobs:
            if job.order_id == order_id and not job.picked:
                job.withdrawn = True
                self.world.release(order_id, self.id, "unassigned by core")
                self._ready_signal(order_id).set()  # stop waiting for its food

    def _nearest_job(self) -> _Job:
        here = self.where()

        def distance_m(j: _Job) -> float:
            stop = j.drop if j.picked else j.pickup
            return haversine_m(here.lat, here.lng, stop.lat, stop.lng)

        return min(self.jobs, key=distance_m)

    async def _pick_up(self, job: _Job) -> None:
        w = self.world
        t = w.timeline(job.order_id)
        if job.withdrawn:
            raise _Gone("unassigned by core")
        self.stage = f"riding to the chef of {job.order_id}"
        await self._ride(job.pickup)
        if job.withdrawn:
            raise _Gone("unassigned by core while riding to the chef")
        if t is not None and t.at_chef_s is None:
            t.at_chef_s = now_s()
        self.stage = f"waiting at the chef for {job.order_id}"
        await self._wait_for_food(job.order_id)
        if job.withdrawn:
            raise _Gone("unassigned by core")
        self.stage = f"reporting the pick-up of {job.order_id}"
        for status in ("picked_up", "delivering"):
            r = await self._progress(job.order_id, status)
            if r.status_code in (404, 409):
                raise _Gone(r.text)
            expect(r, 200)
            if status == "picked_up" and t is not None:
                t.picked_up_s = now_s()
                w.probe_eta(job.order_id, "pickup")
        job.picked = True

    async def _drop_off(self, job: _Job) -> str:
        """Ride to the door and report the delivery; how it ended."""
        w = self.world
        t = w.timeline(job.order_id)
        drop = job.drop
        self.stage = f"riding to the door of {job.order_id}"
        await self._ride(drop)
        self.stage = f"reporting the delivery of {job.order_id}"
        for _ in range(60):  # the indexer may not have filed the door fix yet
            sent = now_s()
            r = await self._progress(job.order_id, "delivered")
            if r.status_code == 200:
                job.reported_s = sent
                if t is not None:
                    t.delivered_s = now_s()
                return "delivered"
            if r.status_code == 404 or "too_far" not in r.text:
                raise _Gone(r.text)
            await asyncio.sleep(0.5)
            if haversine_m(self.pos.lat, self.pos.lng, drop.lat, drop.lng) > AT_DOOR_M:
                break
            await self.send_fix()
        w.error(f"courier {self.spec.index}: could not deliver {job.order_id}")
        return "could not deliver"
