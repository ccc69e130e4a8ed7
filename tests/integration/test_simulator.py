"""A short simulated day against the real system (core and commerce served over HTTP and
WebSockets on loopback, real PostgreSQL/Redis/NATS): orders are placed, couriers deliver
them, and nobody holds an order twice."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator

import pytest

from api.app import build_app, create_core_app
from api.commerce.parts import commerce_parts
from api.settings import Settings
from api.simulator.agents import Behaviour
from api.simulator.city import CityConfig, Point
from api.simulator.clients import SimulatorError
from api.simulator.run import Endpoints, SimConfig, simulate
from api.simulator.system import RunIsolation, clean_up, create_staff, staff_login
from tests.integration.commerce.conftest import FAST
from tests.servers import serve_app


@contextlib.asynccontextmanager
async def _system(settings: Settings, policy: str) -> AsyncIterator[Endpoints]:
    ns = f"{settings.server.namespace}m{uuid.uuid4().hex[:4]}"
    s = settings.replace(server__namespace=ns, dispatch__policy=policy, dispatch__round_s=0.5)
    assert s.stores.database_url
    email, password = staff_login("admin")
    await create_staff(s.stores.database_url, email, password, "admin")
    commerce = build_app("commerce", "commerce (simulator test)", s,
                         functools.partial(commerce_parts, config=FAST))
    try:
        async with serve_app(create_core_app(s)) as core_url, serve_app(commerce) as commerce_url:
            yield Endpoints(core_url=core_url, commerce_url=commerce_url, admin_email=email,
                            admin_password=password)
    finally:
        await clean_up(RunIsolation(settings=s, database=None, server_dsn=None))


def _config(policy: str | None) -> SimConfig:
    return SimConfig(
        city=CityConfig(seed=5, center=Point(-33.45, -70.66), radius_m=300, chefs=3,
                        couriers=8, customers=8, prep_s=(4.0, 8.0)),
        orders_per_min=40, duration_s=12, drain_s=45, progress_s=2, policy=policy,
        behaviour=Behaviour(speed_factor=12.0, think_s=(0.1, 0.4), chef_poll_s=0.5,
                            fix_interval_s=(1.0, 2.0), wander_m=100.0))


@pytest.mark.timeout(150)
async def test_short_day_delivers_without_double_assignments(settings: Settings) -> None:
    """A 12 s day in a 300 m city: orders are placed, assigned, picked up and delivered;
    0 double assignments (own records and core's /fleet/orders); KPIs are consistent."""
    lines: list[str] = []
    async with _system(settings, "greedy") as endpoints:
        result = await simulate(endpoints, _config("greedy"), echo=lines.append)
        with pytest.raises(SimulatorError, match="DISPATCH_POLICY=optimal"):
            await simulate(endpoints, _config("optimal"), echo=lines.append)
    k = result.kpis
    assert result.policy == "greedy"
    assert k.placed > 0
    assert k.delivered > 0, (k, result.errors)
    assert k.double_assignments == 0
    assert k.delivered <= k.picked_up <= k.assigned <= k.placed
    assert k.time_to_assign_p50_s is not None
    assert k.time_to_assign_p50_s >= 0
    assert k.order_to_door_p50_s is not None
    assert k.order_to_door_p50_s > 0
    assert k.late_pct is not None
    # The customers' tracking gave ETAs at assignment and at pick-up (the KPI's inputs).
    assert k.eta_error_assign_p50_s is not None
    assert k.eta_error_pickup_p50_s is not None
    # Couriers learnt the food was ready over the wire (ORDER_READY, or polling core).
    assert result.food_ready_pushed > 0
    assert result.food_ready_pushed + result.food_ready_polled >= k.picked_up
    assert any("placed" in line for line in lines)  # progress lines were shown
