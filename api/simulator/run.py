"""Run a simulated day against a running system (core + commerce URLs) and measure it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from api.simulator.agents import Behaviour, ChefAgent, CourierAgent, CustomerAgent
from api.simulator.city import CityConfig, OrderStream, build_city
from api.simulator.clients import V1, Account, RetryingTransport, SimulatorError, expect
from api.simulator.world import World, iso_to_s, now_s
from dispatch.day_kpis import Kpis, fleet_snapshot_conflicts
from geo.travel import HaversineTravelModel


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    core_url: str
    commerce_url: str
    admin_email: str
    admin_password: str


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    city: CityConfig = CityConfig()
    orders_per_min: float = 12.0
    duration_s: float | None = 120.0
    """Ordering stops after this; None orders until `stop` is set (the demo)."""
    drain_s: float = 420.0
    """After `duration_s`, wait at most this long for in-flight orders to be delivered."""
    behaviour: Behaviour = Behaviour()
    progress_s: float = 5.0
    policy: str | None = None
    """When set, core must report this dispatch policy (else the run is refused)."""
    signup_concurrency: int = 4
    """Registrations in flight (each costs commerce an argon2 hash)."""
    retry_budget_s: float = 60.0
    """How long an app keeps retrying a request an outage interrupted (refused connection,
    503) before it reports the error."""
    roads: Path | None = None
    """Road data (a `homechef roads build` folder, the one core rides): chefs, customers and
    couriers are placed on its streets. None: anywhere in the disk."""


class SimResult(msgspec.Struct, frozen=True, kw_only=True):
    kpis: Kpis
    policy: str
    seed: int
    orders_per_min: float
    duration_s: float | None
    couriers: int
    chefs: int
    wall_s: float
    first_courier_online_s: float | None
    first_courier_riding_s: float | None
    food_ready_pushed: int = 0
    """Couriers at a chef told by core's ORDER_READY push ..."""
    food_ready_polled: int = 0
    """... and by polling GET /delivery/orders (the push was lost)."""
    errors: list[str]
    unfinished: list[str] = []
    """One line per order still open at the end (timeline, holder and what it was doing)."""
    unfinished_summary: str = ""
    """One sentence on those orders ("" when none): what the command line prints."""
    paid: int = 0
    stranded: list[str] = []
    """Paid orders that commerce (the record) shows neither delivered nor cancelled at the
    end."""
    retries: int = 0
    """Requests the apps sent again after an outage interrupted them."""
    reconciled: int = 0
    """Orders a courier app learnt it held only by asking core (its answer was lost)."""


async def dispatch_policy(core: httpx.AsyncClient, admin: Account) -> str:
    r = await core.get(f"{V1}/fleet/dispatch", headers=await admin.headers())
    policy: str = expect(r, 200)["policy"]
    return policy


async def rides_roads(core: httpx.AsyncClient) -> bool:
    """Whether core's travel model is the road network (its public ``/health`` says)."""
    try:
        r = await core.get("/health")
        travel = r.json().get("travel") or {}
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return bool(travel.get("model") == "roads")


ON_BOARD = frozenset({"picked_up", "delivering"})


async def tracked_arrival_s(core: httpx.AsyncClient, world: World, order_id: str,
                            on_board: bool, *, attempts: int = 20) -> float | None:
    """When the order's tracking (``GET /orders/{id}/track``, as its customer) says the food
    will arrive, epoch s: the answer's time + its ``eta_s``. Asked until the tracking knows
    the courier (and, `on_board`, that the food is picked up), 0.5 s apart; None if never."""
    headers = world.watchers.get(order_id)
    if headers is None:
        return None
    for _ in range(attempts):
        r = await core.get(f"{V1}/orders/{order_id}/track", headers=await headers())
        if r.status_code == 200:
            body = r.json()
            location = body.get("location")
            status = body["status"]["payload"]["status"]
            if location is not None and (not on_board or status in ON_BOARD):
                return now_s() + float(location["payload"]["eta_s"])
        await asyncio.sleep(0.5)
    return None


async def fleet_check(core: httpx.AsyncClient, admin: Account, world: World) -> int:
    """New conflicts in core's view of who carries what (statuses read in the order an order
    moves through them, so a courier's consecutive orders cannot show up together; an order
    counts as stacked from the moment its courier accepted an offer marked so). Only
    this run's orders count (a demo run again on the same stores finds the last run's
    orders still listed), and a conflict seen in an earlier snapshot is not counted again."""
    pairs: list[tuple[str, str | None]] = []
    for status in ("assigned", "picked_up", "delivering"):
        r = await core.get(f"{V1}/fleet/orders", params={"status": status},
                           headers=await admin.headers())
        pairs += [(o["order_id"], o["courier_id"]) for o in expect(r, 200)["orders"]
                  if o["order_id"] in world.timelines]
    # An accept in flight: core may list the order before the app has taken it.
    stacked = frozenset(h.order_id for h in world.holdings if h.stacked) | world.offered_stacked
    found = [c for c in fleet_snapshot_conflicts(pairs, stacked)
             if c not in world.conflicts_seen]
    world.conflicts_seen.update(found)
    at = time.time() - world.day_started_wall
    world.conflict_notes += [f"[{at:.0f} s] {c}" for c in found]
    return len(found)


async def simulate(endpoints: Endpoints, config: SimConfig, *,
                   echo: Callable[[str], None] = print,
                   stop: asyncio.Event | None = None, world: World | None = None) -> SimResult:
    """Build the city through the APIs, run the day, drain, and return the KPIs. ``world``:
    where the run records what it sees (a caller watching the run live passes its own)."""
    stop = stop or asyncio.Event()
    started = time.monotonic()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    world = world if world is not None else World()
    if config.roads is not None:
        from api.simulator.cities import road_snapper

        with road_snapper(config.roads, config.city.center) as snap:
            city = build_city(config.city, snap)
    else:
        city = build_city(config.city)
    behaviour = config.behaviour
    if not behaviour.run_tag:
        behaviour = msgspec.structs.replace(behaviour, run_tag=secrets.token_hex(4))
    model = HaversineTravelModel()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    ws_url = endpoints.core_url.replace("http://", "ws://").replace("https://", "wss://")
    tasks: list[asyncio.Task[Any]] = []
    transports = [RetryingTransport(limits=limits, budget_s=config.retry_budget_s)
                  for _ in range(2)]
    stranded: list[str] = []
    async with httpx.AsyncClient(base_url=endpoints.commerce_url, timeout=30,
                                 transport=transports[0]) as commerce, \
            httpx.AsyncClient(base_url=endpoints.core_url, timeout=30,
                              transport=transports[1]) as core:
        admin = await Account.login(commerce, endpoints.admin_email, endpoints.admin_password)
        world.eta_probe = functools.partial(tracked_arrival_s, core, world)
        policy = await dispatch_policy(core, admin)
        if config.policy is not None and policy != config.policy:
            raise SimulatorError(f"core dispatches with policy {policy!r}, not "
                                 f"{config.policy!r}: restart it with "
                                 f"DISPATCH_POLICY={config.policy}")
        signups = asyncio.Semaphore(config.signup_concurrency)
        couriers: list[CourierAgent] = []
        unfinished: list[str] = []
        open_summary = ""
        try:
            # Kitchens queue for sign-up first (the semaphore is FIFO), couriers right after;
            # each courier streams fixes as soon as it is registered, and ordering starts
            # when the kitchens are open.
            chefs = [ChefAgent(spec, commerce, world, behaviour) for spec in city.chefs]

            async def open_kitchen(agent: ChefAgent) -> None:
                async with signups:
                    await agent.open_kitchen(admin)

            kitchens = [asyncio.create_task(open_kitchen(c)) for c in chefs]
            area = (config.city.center, config.city.radius_m)
            roads = await rides_roads(core)
            if roads:
                echo("core rides the roads: couriers follow its routes (GET /routing/route)")
            couriers = [CourierAgent(spec, commerce, core, ws_url, world, behaviour,
                                     config.city.seed, model, area, roads=roads)
                        for spec in city.couriers]

            async def courier_life(agent: CourierAgent) -> None:
                async with signups:
                    await agent.sign_up()
                await agent.run()

            tasks += [asyncio.create_task(courier_life(c)) for c in couriers]

            async def announce_first_courier() -> None:
                await world.someone_online.wait()
                echo(f"first courier online, streaming fixes "
                     f"{(world.first_online or started) - started:.1f} s after the simulator "
                     f"started")

            async def announce_first_ride() -> None:
                await world.someone_riding.wait()
                echo(f"first courier riding to a chef "
                     f"{(world.first_riding or started) - started:.1f} s after the simulator "
                     f"started")

            tasks += [asyncio.create_task(announce_first_courier()),
                      asyncio.create_task(announce_first_ride())]
            tasks += kitchens
            await asyncio.gather(*kitchens)
            tasks += [asyncio.create_task(c.run()) for c in chefs]
            customers = [CustomerAgent(spec, commerce, world, behaviour)
                         for spec in city.customers]
            echo(f"city ready after {time.monotonic() - started:.1f} s: {len(chefs)} chefs, "
                 f"{len(couriers)} couriers signing up, {len(customers)} customers; "
                 f"dispatch policy {policy}")
            day_started = time.monotonic()
            world.day_started_wall = time.time()
            world.day_started.set()
            placing: set[asyncio.Task[Any]] = set()

            async def place_orders() -> None:
                stream = OrderStream(city, config.orders_per_min, config.city.seed)
                while (planned := stream.next()) is not None:
                    if config.duration_s is not None and planned.at_s > config.duration_s:
                        return
                    await asyncio.sleep(max(0.0, day_started + planned.at_s
                                            - time.monotonic()))
                    task = asyncio.create_task(customers[planned.customer].order(
                        chefs[planned.chef], planned.lines))
                    placing.add(task)
                    task.add_done_callback(placing.discard)
                await stop.wait()

            async def progress() -> None:
                while True:
                    await asyncio.sleep(config.progress_s)
                    try:
                        world.fleet_conflicts += await fleet_check(core, admin, world)
                    except (httpx.HTTPError, SimulatorError) as exc:
                        world.error(f"fleet snapshot: {exc!r}")
                    c = world.counts()
                    phase = "ordering" if not ordering.done() else "draining"
                    echo(f"[{time.monotonic() - day_started:6.0f} s] {phase}: placed "
                         f"{c['placed']}, assigned {c['assigned']}, picked up "
                         f"{c['picked_up']}, delivered {c['delivered']} | couriers busy "
                         f"{c['busy']}, idle {c['idle']}"
                         + (f" | double assignments {world.fleet_conflicts}"
                            if world.fleet_conflicts else ""))

            ordering = asyncio.create_task(place_orders())
            tasks += [ordering, asyncio.create_task(progress())]
            stopper = asyncio.create_task(stop.wait())
            tasks.append(stopper)
            await asyncio.wait([ordering, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                deadline = time.monotonic() + config.drain_s
                settled = time.monotonic()
                while time.monotonic() < deadline and not stop.is_set():
                    if not placing and world.open_orders() == 0:
                        break
                    await asyncio.sleep(0.5)
                    if time.monotonic() - settled > 2.0:
                        settled = time.monotonic()
                        with contextlib.suppress(httpx.HTTPError, SimulatorError):
                            await settle_from_record(commerce, admin, world)
            with contextlib.suppress(httpx.HTTPError, SimulatorError):
                world.fleet_conflicts += await fleet_check(core, admin, world)
            with contextlib.suppress(httpx.HTTPError, SimulatorError):
                stranded = await settle_from_record(commerce, admin, world)
            unfinished = report_unfinished(world, couriers)
            open_summary = unfinished_summary(world)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return SimResult(
        kpis=world.kpis(), policy=policy, seed=config.city.seed,
        orders_per_min=config.orders_per_min, duration_s=config.duration_s,
        couriers=config.city.couriers, chefs=config.city.chefs,
        wall_s=round(time.monotonic() - started, 1),
        first_courier_online_s=(round(world.first_online - started, 1)
                                if world.first_online is not None else None),
        first_courier_riding_s=(round(world.first_riding - started, 1)
                                if world.first_riding is not None else None),
        food_ready_pushed=world.ready_by_push, food_ready_polled=world.ready_by_poll,
        errors=world.errors[:500], unfinished=unfinished, unfinished_summary=open_summary,
        paid=len(world.paid),
        stranded=stranded, retries=sum(t.retries for t in transports),
        reconciled=world.reconciled)


async def settle_from_record(commerce: httpx.AsyncClient, admin: Account,
                             world: World) -> list[str]:
    """Read every order the simulator still sees open from commerce, the record: one a
    courier delivered but whose answer was lost (or that the system cancelled) is closed
    with the record's time. Returns the paid orders the record still shows open."""
    still_open: list[str] = []
    h = await admin.headers()
    for t in list(world.timelines.values()):
        if t.delivered_s is not None or t.cancelled_s is not None:
            continue
        r = await commerce.get(f"{V1}/admin/orders/{t.order_id}", headers=h)
        order = expect(r, 200)
        if order["status"] == "delivered":
            t.delivered_s = iso_to_s(order.get("delivered_at")) or now_s()
        elif order["status"] == "cancelled":
            t.cancelled_s = iso_to_s(order.get("cancelled_at")) or now_s()
        elif t.order_id in world.paid or order.get("payment_status") == "paid":
            still_open.append(f"{t.order_id} ({order['status']})")
    return still_open


def report_unfinished(world: World, couriers: list[CourierAgent]) -> list[str]:
    """Name every order still open when the run ends: how long ago each step happened, who
    holds it and what that courier is doing."""
    out: list[str] = []
    holders = {h.order_id: h for h in world.holdings if h.end_s is None}
    by_id = {c.id: c for c in couriers}
    now = now_s()

    def ago(at: float | None) -> str:
        return "not yet" if at is None else f"{max(0.0, now - at):.0f} s ago"

    for t in world.timelines.values():
        if t.delivered_s is not None or t.cancelled_s is not None:
            continue
        h = holders.get(t.order_id)
        courier = by_id.get(h.courier_id) if h is not None else None
        out.append(
            f"unfinished order {t.order_id}: placed {ago(t.placed_s)}, dispatchable "
            f"{ago(t.dispatchable_s)}, assigned {ago(t.assigned_s)}, at chef "
            f"{ago(t.at_chef_s)}, picked up {ago(t.picked_up_s)}, food ready "
            f"{'yes' if t.order_id in world.marked_ready else 'no'}"
            f"; {courier.describe() if courier is not None else 'held by nobody'}"
            f"{' (stacked)' if h is not None and h.stacked else ''}")
    return out


def unfinished_summary(world: World) -> str:
    """One sentence on the orders still open at the end ("" when none): how many wait for a
    courier, have one, are on the way to the door."""
    waiting = with_courier = riding = 0
    for t in world.timelines.values():
        if t.delivered_s is not None or t.cancelled_s is not None:
            continue
        if t.picked_up_s is not None:
            riding += 1
        elif t.assigned_s is not None:
            with_courier += 1
        else:
            waiting += 1
    total = waiting + with_courier + riding
    if not total:
        return ""
    parts = [f"{n} {what}" for n, what in ((waiting, "waiting for a courier"),
                                           (with_courier, "with a courier before pickup"),
                                           (riding, "on the way to the door")) if n]
    return (f"{total} order{'s' if total != 1 else ''} still open when the run ended: "
            f"{', '.join(parts)}")


__all__ = ["Endpoints", "SimConfig", "SimResult", "now_s", "simulate"]
