"""The watchdog on real Redis/NATS with the world's stepped clock: an assignment whose
courier goes silent is withdrawn after DISPATCH_STALL_NO_FIX_S and offered to another
courier, the silent one told (UNASSIGNED) and idle again; an order already picked up is
only surfaced (stuck list, metric), never re-dispatched."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.core.dispatch.watchdog import DECLINES_KEPT_MS, Watchdog
from api.settings import Settings
from geo.cells import region_of
from streams.events import CourierUnassigned
from tests.integration.core.conftest import eventually
from tests.integration.core.test_dispatch import World, dispatch_events, running_world, spot

NO_FIX_S = 15.0
"""Long enough that a loaded machine never outlasts it between two steps of a test (the
clock is stepped past it instead), short enough that the couriers' wall-clock fixes stay
fresh (COURIER_STALE_S) after the steps of this module."""
STEP_MS = round(NO_FIX_S * 1000) + 5_000


@pytest.fixture(scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    """A core server with fast rounds and a fast watchdog, in a namespace of its own."""
    async with running_world(settings, "w", dispatch__watchdog_s=0.2,
                             dispatch__stall_no_fix_s=NO_FIX_S) as w:
        yield w


async def accepted(world: World, courier: str, order_id: str) -> None:
    offer = await world.offer_for(courier, order_id)
    r = await world.http.post(f"/api/v1/delivery/offers/{offer['offer_id']}/accept",
                              headers=world.auth(courier))
    assert r.status_code == 200, r.text


async def stuck_ids(world: World) -> set[str]:
    r = await world.http.get("/api/v1/fleet/orders", params={"status": "stuck"},
                             headers=world.auth("fm-1", "fleet_manager"))
    assert r.status_code == 200, r.text
    return {o["order_id"] for o in r.json()["orders"]}


async def test_a_silent_courier_s_assignment_is_withdrawn_and_offered_to_another(
        world: World) -> None:
    """Accepted, then no fix for DISPATCH_STALL_NO_FIX_S: the order waits again and goes to
    another courier (never back to the silent one); the silent courier hears UNASSIGNED,
    is idle again, and dispatch.unassigned says "stalled"."""
    lat, lng = spot()
    silent = await world.courier(lat + 0.002, lng)
    other = await world.courier(lat + 0.004, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    await accepted(world, silent, oid)
    o = await world.dispatch.store.order(oid)
    assert o is not None
    assert o.state == "assigned"

    world.clock.advance(STEP_MS)  # the courier's app sends nothing more
    await world.offer_for(other, oid)

    async def told() -> bool:
        return any(p["order_id"] == oid for p in world.offers.of(silent, "UNASSIGNED"))
    await eventually(told)
    assert (await world.dispatch.store.courier(silent)).state == "idle"
    assert [p for p in world.offers.of(silent) if p["order_id"] == oid][1:] == []
    withdrawn = [e for e in await dispatch_events(world, oid)
                 if isinstance(e, CourierUnassigned)]
    assert [(e.courier_id, e.reason) for e in withdrawn] == [(silent, "stalled")]


async def test_a_picked_up_order_is_surfaced_not_redispatched(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Picked up, then the courier goes silent: the order stays picked up with that courier
    (the food is with it), is listed as stuck, counted in dispatch_stuck_orders and logged
    once (not at every sweep); no other courier is offered it and the courier is not told
    anything."""
    lat, lng = spot()
    carrier = await world.courier(lat + 0.002, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    await accepted(world, carrier, oid)
    r = await world.http.put(f"/api/v1/delivery/orders/{oid}", json={"status": "picked_up"},
                             headers=world.auth(carrier))
    assert r.json()["status"] == "picked_up", r.text
    bystander = await world.courier(lat + 0.001, lng)  # idle, nearest: would get a re-offer
    assert oid not in await stuck_ids(world)

    world.clock.advance(STEP_MS)

    async def listed() -> bool:
        return oid in await stuck_ids(world)
    await eventually(listed)

    async def counted() -> Any:
        text = (await world.http.get("/metrics")).text
        return ('dispatch_stalled_total{action="surface",reason="no_fix"}' in text
                and any(line.startswith("dispatch_stuck_orders ")
                        and float(line.split()[1]) >= 1 for line in text.splitlines()))
    await eventually(counted)
    # Sweeps of a watchdog of its own (the same lease holder as the server's): the first
    # logs the order, the ones after stay quiet while it stays stuck for the same reason.
    caplog.clear()
    watchdog = Watchdog(world.dispatch)
    with caplog.at_level(logging.WARNING, logger="homechef.dispatch.watchdog"):
        for _ in range(3):
            _, surfaced = await watchdog.sweep()
            assert surfaced >= 1
    assert len([r for r in caplog.records if oid in r.getMessage()]) == 1
    region = region_of(lat, lng)
    await world.dispatch.run_round(region)  # a round besides the loop's: nothing to offer
    o = await world.dispatch.store.order(oid)
    assert o is not None
    assert (o.state, o.courier_id) == ("picked_up", carrier)
    assert world.offers.of(bystander) == []
    assert world.offers.of(carrier, "UNASSIGNED") == []
    assert (await world.dispatch.store.courier(carrier)).state == "delivering"


async def test_a_withdrawal_loses_to_any_change_since_the_order_was_judged(
        world: World) -> None:
    """The watchdog takes back only the assignment it judged: assigned, to that courier,
    at that `assigned_ms`. A pickup or a new assignment in between wins: the script
    refuses and changes nothing."""
    lat, lng = spot()
    courier = await world.courier(lat + 0.002, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    await accepted(world, courier, oid)
    store = world.dispatch.store
    judged = await store.order(oid)
    assert judged is not None
    assert judged.assigned_ms is not None
    now = world.clock()
    other = await store.withdraw_stalled(oid, "someone-else", judged.assigned_ms, now)
    earlier = await store.withdraw_stalled(oid, courier, judged.assigned_ms - 1, now)
    assert (other.result, other.detail) == (earlier.result, earlier.detail) == (
        "order_state", "reassigned")
    r = await world.http.put(f"/api/v1/delivery/orders/{oid}", json={"status": "picked_up"},
                             headers=world.auth(courier))
    assert r.json()["status"] == "picked_up", r.text
    late = await store.withdraw_stalled(oid, courier, judged.assigned_ms, now)
    assert (late.result, late.detail) == ("order_state", "picked_up")
    after = await store.order(oid)
    assert after is not None
    assert (after.state, after.courier_id) == ("picked_up", courier)
    assert (await store.courier(courier)).state == "delivering"


async def test_after_a_rebuild_silence_counts_from_the_rebuild(world: World) -> None:
    """After Redis lost its data (the dispatch state's generation changed: a rebuild ran),
    couriers' last fixes are still being replayed into the index: an assignment is not
    withdrawn for silence until DISPATCH_STALL_NO_FIX_S has passed since the watchdog saw the
    new generation, then it is."""
    lat, lng = spot()
    silent = await world.courier(lat + 0.002, lng)
    oid = await world.order((lat, lng), (lat + 0.01, lng))
    await accepted(world, silent, oid)
    half_ms = round(NO_FIX_S * 1000 * 2 / 3)
    world.clock.advance(half_ms)  # silent for 2/3 of the limit: nothing happens yet
    store = world.dispatch.store
    before = await store.generation()
    await store.redis.delete(store.generation_key)  # as after Redis lost its data

    async def rebuilt() -> bool:  # the dispatcher rebuilt the state: a new generation
        return await store.generation() not in (None, before)
    await eventually(rebuilt)
    await asyncio.sleep(1.0)  # a few sweeps (every 0.2 s) see the new generation

    world.clock.advance(half_ms)  # silent for 4/3 of the limit, 2/3 since the rebuild
    await asyncio.sleep(1.0)  # a few more sweeps: none may withdraw it
    o = await world.dispatch.store.order(oid)
    assert o is not None
    assert (o.state, o.courier_id) == ("assigned", silent)

    world.clock.advance(3 * half_ms)  # well past the limit since the rebuild, however late
    # the watchdog noticed it (a sweep delayed past the step above only moves the window on)

    async def withdrawn() -> bool:
        return any(p["order_id"] == oid for p in world.offers.of(silent, "UNASSIGNED"))
    await eventually(withdrawn)


async def test_the_watchdog_prunes_declines_older_than_the_streams(world: World) -> None:
    """Recorded declines (kept in PostgreSQL for a rebuild after Redis loss) older than the
    streams' 7 days are deleted by the watchdog's hourly pass; newer ones are kept."""
    records = world.dispatch.records
    now = world.dispatch.clock()
    old, recent = f"o-old-{uuid.uuid4().hex[:6]}", f"o-new-{uuid.uuid4().hex[:6]}"
    await records.save_decline(old, "c-1", now - DECLINES_KEPT_MS - 60_000)
    await records.save_decline(recent, "c-1", now - DECLINES_KEPT_MS + 3_600_000)
    watchdog = Watchdog(world.dispatch)  # the same lease holder as the server's
    await watchdog.sweep()
    assert await records.declines([old, recent]) == {recent: ["c-1"]}
    assert watchdog.next_prune_ms > now  # not again before an hour
