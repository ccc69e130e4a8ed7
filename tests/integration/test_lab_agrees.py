"""The lab and the live simulator agree on a small day (issue 19, items 4 and 5).

`homechef simulate` drives the real services (core and commerce over HTTP and WebSockets,
real PostgreSQL/Redis/NATS) through a short day. The day's dispatch history is then read
back from PostgreSQL as a recorded day (`api.lab_record`, what `homechef lab-record`
writes) and replayed on the lab's virtual clock through the same production settings. Both
deliver every order, and their KPIs agree within the tolerances below."""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from api.app import build_app, create_core_app
from api.commerce.parts import commerce_parts
from api.lab_dispatch import lab_dispatch
from api.lab_record import record_from_history
from api.migrate import migrate
from api.settings import Settings
from api.simulator.agents import Behaviour
from api.simulator.city import CityConfig, Point
from api.simulator.run import Endpoints, SimConfig, simulate
from api.simulator.system import RunIsolation, clean_up, create_staff, staff_login
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel
from lab.engine import simulate_day
from lab.kpis import lab_kpis
from lab.replay import replay_day
from lab.scenario import Couriers
from tests.integration.commerce.conftest import FAST
from tests.servers import serve_app

SPEED = 10.0
"""The simulated couriers ride ten times the travel model's speed (a short test day). Their
recorded pace includes a few requests per ride, so short rides (a small city) make the
replay slower than the live day on a loaded machine: in a 650 m city under a load of ~6 on
2 cores order to door p50 came out 24.3 s in the lab against 21.0 s live (23.5 against 18.8
in one CI run, past the tolerance); in a 900 m city 28.6 s against 27.9 s (docs/lab.md)."""
BEHAVIOUR = Behaviour(speed_factor=SPEED, think_s=(0.1, 0.4), chef_poll_s=0.5,
                      fix_interval_s=(1.0, 2.0))
# What the record cannot hold, as the simulator's couriers behave: think times, no
# hand-over wait beyond a few requests, ride noise of a few per cent.
COURIERS = Couriers(think_s=BEHAVIOUR.think_s, handover_s=0.5, leg_sigma=0.08)
ORDER_TO_DOOR_TOLERANCE = 0.25
"""Order to door p50 (cooking, assignment, ride): the lab within ±25 % of the live day ..."""
P90_TOLERANCE = 0.5
"""... p90 within ±50 % (about the second-longest of a dozen orders: one courier's ride) ..."""
ORDER_TO_DOOR_SLACK_S = 3.0
"""... or within 3 s of it (one round, a chef's poll and a few requests of real time)."""
ASSIGN_SLACK_S = 3.0
"""Time to assign p50: within 3 s (a few 0.5 s rounds plus offer answers)."""


@contextlib.asynccontextmanager
async def _system(settings: Settings) -> AsyncIterator[tuple[Endpoints, Settings]]:
    ns = f"{settings.server.namespace}l{uuid.uuid4().hex[:4]}"
    s = settings.replace(server__namespace=ns, dispatch__round_s=0.5)
    assert s.stores.database_url
    email, password = staff_login("admin")
    await create_staff(s.stores.database_url, email, password, "admin")
    commerce = build_app("commerce", "commerce (lab test)", s,
                         functools.partial(commerce_parts, config=FAST))
    try:
        async with serve_app(create_core_app(s)) as core_url, serve_app(commerce) as commerce_url:
            yield Endpoints(core_url=core_url, commerce_url=commerce_url, admin_email=email,
                            admin_password=password), s
    finally:
        await clean_up(RunIsolation(settings=s, database=None, server_dsn=None))


@pytest.mark.timeout(150)
async def test_the_lab_replays_a_live_day_with_the_same_kpis(
        settings: Settings, create_database: Callable[[], Awaitable[str]]) -> None:
    url = await create_database()  # a database of its own: the record is this day alone
    await migrate(url)
    s = settings.replace(stores__database_url=url)
    config = SimConfig(
        city=CityConfig(seed=11, center=Point(-33.45, -70.66), radius_m=900, chefs=3,
                        couriers=6, customers=10, prep_s=(4.0, 10.0)),
        orders_per_min=60, duration_s=12, drain_s=120, progress_s=5, policy="optimal",
        behaviour=BEHAVIOUR)
    since_ms = round(time.time() * 1000)
    async with _system(s) as (endpoints, system):
        live = await simulate(endpoints, config, echo=lambda _: None)
        until_ms = round(time.time() * 1000)
        conn = await asyncpg.connect(url)
        try:
            rec = await record_from_history(
                conn, namespace=system.server.namespace, since_ms=since_ms,
                until_ms=until_ms, model=HaversineTravelModel(), couriers_model=COURIERS)
        finally:
            await conn.close()
    k = live.kpis
    assert k.placed >= 4, k
    assert k.delivered == k.placed, (k, live.errors)

    # The record is the live day: every placed order, every courier online, their pace.
    assert len(rec.orders) == k.placed
    assert len(rec.couriers) == config.city.couriers
    centre = config.city.center
    assert all(haversine_m(*c.start, centre.lat, centre.lng) < config.city.radius_m + 100
               for c in rec.couriers)  # their fix when going online, in the city
    # Paces measured on deliveries (the fleet's median for a courier without one).
    assert all(0.6 / SPEED < c.pace < 1.8 / SPEED for c in rec.couriers), rec.couriers

    day = replay_day(rec, seed=1)
    model = HaversineTravelModel()
    run = simulate_day(day, lab_dispatch(s.dispatch, model), model)
    lab = lab_kpis(run, len(day.couriers))
    assert lab.delivered == k.delivered
    assert lab.undelivered == 0
    for ours, theirs, tolerance in (
            (lab.order_to_door_p50_s, k.order_to_door_p50_s, ORDER_TO_DOOR_TOLERANCE),
            (lab.order_to_door_p90_s, k.order_to_door_p90_s, P90_TOLERANCE)):
        assert ours is not None
        assert theirs is not None
        assert abs(ours - theirs) <= max(ORDER_TO_DOOR_SLACK_S, tolerance * theirs), (
            ours, theirs)
    assert lab.time_to_assign_p50_s is not None
    assert k.time_to_assign_p50_s is not None
    assert abs(lab.time_to_assign_p50_s - k.time_to_assign_p50_s) <= ASSIGN_SLACK_S, (
        lab.time_to_assign_p50_s, k.time_to_assign_p50_s)

