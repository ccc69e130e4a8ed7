"""Kill, pause or slow down each part of a running system while simulated customers, chefs
and couriers (who retry like real apps) use it, then check the records: every paid order
delivered or cancelled, nobody holding an order twice, every acknowledged GPS fix stored,
and the system serving again within 10 s of the part coming back.

Each case prints one line of figures (run with ``-s`` to see them; the suite's
``-rA``-style summary is in docs/benchmarks.md and docs/runbook.md)."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest

from api.simulator.agents import Behaviour
from api.simulator.city import CityConfig, Point
from api.simulator.clients import Account
from api.simulator.run import SimConfig, simulate
from api.simulator.world import World
from streams.catalog import Names
from tests.faults.rig import Figures, FixProbe, Kind, Rig, Target, seconds_after

RECOVERY_S = 10.0
FAULT_AT_S = 5.0
"""Into the day: orders are waiting and couriers are riding."""
DOWN_S = 2.0

CASES: list[tuple[Target, Kind]] = [
    ("core", "kill"),
    ("commerce", "kill"),
    ("redis", "kill"),
    ("redis", "kill-empty"),
    ("redis", "pause"),
    ("redis", "slow"),
    ("nats", "kill"),
    ("postgres", "kill"),
]

CITY = Point(-33.45, -70.66)
PROBE_AT = (-32.45, -70.66)
"""The fix probe stands ~110 km away: never a dispatch candidate."""


def _config() -> SimConfig:
    return SimConfig(
        city=CityConfig(seed=11, center=CITY, radius_m=300, chefs=3, couriers=8,
                        customers=10, prep_s=(3.0, 6.0)),
        orders_per_min=60, duration_s=16, drain_s=75, progress_s=4, retry_budget_s=60,
        behaviour=Behaviour(speed_factor=6.0, think_s=(0.1, 0.3), chef_poll_s=0.5,
                            fix_interval_s=(1.0, 2.0), check_in_s=3.0))


async def _inject(rig: Rig, target: Target, kind: Kind) -> None:
    """The fault itself; returns when the part is back (restarted, resumed, fast again)."""
    if kind == "pause":
        rig.stores.pause(target)
        await asyncio.sleep(DOWN_S * 2)
        rig.stores.resume(target)
    elif kind == "slow":
        await rig.slow_redis(for_s=DOWN_S * 3)
    else:
        await rig.kill(target)
        await asyncio.sleep(DOWN_S)
        await rig.restore(target, empty=kind == "kill-empty")


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("target", "kind"), CASES, ids=[f"{t}-{k}" for t, k in CASES])
async def test_the_day_survives(rig: Rig, target: Target, kind: Kind) -> None:
    assert rig.endpoints is not None
    assert rig.settings is not None
    await rig.wait_healthy(30.0)  # the previous case left it healthy
    world = World()
    lines: list[str] = []
    sim = asyncio.create_task(simulate(rig.endpoints, _config(), echo=lines.append,
                                       world=world))
    probe, probe_stop = FixProbe(), asyncio.Event()
    async with httpx.AsyncClient(base_url=rig.endpoints.commerce_url, timeout=30) as commerce:
        device = await Account.register(commerce, f"probe-{secrets.token_hex(4)}@example.com",
                                        "probe-password-1", "delivery", "Probe")
        probe_task = asyncio.create_task(
            probe.run(rig.endpoints.core_url, device, probe_stop, PROBE_AT))
        try:
            await asyncio.wait_for(world.day_started.wait(), 60)
            await asyncio.sleep(FAULT_AT_S)
            down_at = time.monotonic()
            await _inject(rig, target, kind)
            back_wall, back_at = time.time(), time.monotonic()
            health_s = await rig.wait_healthy(60.0)
            result = await sim
        finally:
            probe_stop.set()
            await probe_task
            if not sim.done():
                sim.cancel()
    stored = await probe.stored(rig.settings.stores.nats_url or "",
                                Names(rig.settings.server.namespace))
    ts = world.timelines.values()
    fig = Figures(
        fault=f"{target} {kind}", down_s=back_at - down_at, health_s=health_s,
        first_order_s=seconds_after(back_wall, [t.placed_s for t in ts
                                                if t.order_id in world.paid]),
        first_progress_s=seconds_after(back_wall, [x for t in ts for x in (
            t.assigned_s, t.picked_up_s, t.delivered_s)]),
        first_assignment_s=seconds_after(back_wall, [t.assigned_s for t in ts]),
        placed=result.kpis.placed, paid=result.paid, delivered=result.kpis.delivered,
        cancelled=result.kpis.cancelled, stranded=result.stranded,
        double_assignments=result.kpis.double_assignments,
        fixes_acked=len(probe.acked), fixes_lost=len(set(probe.acked) - stored),
        fixes_refused_on_retry=probe.refused_on_retry, retries=result.retries,
        reconciled=result.reconciled, errors=len(result.errors))
    parts = [fig.health_s, fig.first_order_s, fig.first_progress_s]
    fig.recovery_s = None if any(p is None for p in parts) else max(parts)  # type: ignore[type-var]
    print(f"\nFAULT {fig.line()}")
    core_view = await rig.core_view([s.split(" ")[0] for s in fig.stranded[:3]])
    detail = (f"{fig.line()}\nunfinished: {result.unfinished[:5]}\nin core: {core_view}"
              f"\nerrors: {result.errors[:8]}\nlog: {rig.log_tail()}")
    assert fig.paid >= 8, detail  # the day really happened around the fault
    assert fig.stranded == [], detail
    assert fig.double_assignments == 0, detail
    assert fig.fixes_acked > 0, detail
    assert fig.fixes_lost == 0, detail
    assert fig.recovery_s is not None, detail
    assert fig.recovery_s <= RECOVERY_S, detail
    assert fig.first_assignment_s is not None, detail  # rounds run again after it
