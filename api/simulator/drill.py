"""Fault drills: a whole system of its own, every part of it killable (embedded PostgreSQL,
Redis append-only as `homechef up` runs it, and NATS on free ports; core and commerce as
`homechef serve` child processes, as `homechef up` runs them).

A fault is injected while the simulator drives a day through the public APIs; the outcome
is then read from the records (commerce's orders, the LOCATIONS stream), not from what the
simulator believes. Used by tests/faults (short days) and bench/faults.py (long ones)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import msgspec
import nats
import redis.asyncio as aioredis

from api.migrate import migrate
from api.runtime import EmbeddedStores, free_port
from api.settings import DispatchSettings, ServerSettings, Settings, StoreSettings, to_environ
from api.simulator.clients import V1, Account, RetryingTransport
from api.simulator.run import Endpoints, SimConfig, SimResult, simulate
from api.simulator.system import create_staff, staff_login
from api.simulator.world import World
from dispatch.day_kpis import Holding, holding_conflicts
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocatedBatch, decode_locations
from streams.follow import TRANSIENT_ERRORS
from streams.jetstream import fetch_batch

Service = Literal["core", "commerce"]
Store = Literal["redis", "nats", "postgres"]
ClusterPart = Literal["core-2", "redis-primary", "nats-leader"]
"""What a `ClusterRig` can lose: one of its core processes, the Redis primary holding the
dispatch slot, the NATS server leading the LOCATIONS stream."""
Target = Service | Store | ClusterPart
Kind = Literal["kill", "kill-empty", "pause", "slow"]
SERVICES: tuple[Service, ...] = ("core", "commerce")


class Rig:
    """The system under fault: `start()`, inject faults with `kill`/`restore`/`pause`/`slow`,
    `stop()`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores = EmbeddedStores(root / "stores")
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.settings: Settings | None = None
        self.endpoints: Endpoints | None = None
        self.log_path = root / "services.log"

    async def start(self) -> None:
        urls = await self.stores.start()
        await migrate(urls["postgres"])
        email, password = staff_login("admin")
        await create_staff(urls["postgres"], email, password, "admin")
        self.settings = Settings(
            stores=StoreSettings(database_url=urls["postgres"], redis_url=urls["redis"],
                                 nats_url=urls["nats"], timeout_s=2.0),
            server=ServerSettings(jwt_secret=secrets.token_urlsafe(48),
                                  data_dir=self.root / "data", namespace="faults",
                                  core_port=free_port(), commerce_port=free_port(),
                                  log_level="WARNING"),
            dispatch=DispatchSettings(round_s=0.5, offer_ttl_s=10.0),
        )
        host = "http://127.0.0.1"
        self.endpoints = Endpoints(core_url=f"{host}:{self.settings.server.core_port}",
                                   commerce_url=f"{host}:{self.settings.server.commerce_port}",
                                   admin_email=email, admin_password=password)
        for service in SERVICES:
            await self._spawn(service)
        await self.wait_healthy(60.0)

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        await self.stores.stop()
        self.stores.remove_files()

    def url(self, service: Service) -> str:
        assert self.endpoints is not None
        return self.endpoints.core_url if service == "core" else self.endpoints.commerce_url

    async def _spawn(self, service: str, settings: Settings | None = None) -> None:
        """Start `service` (`homechef serve <service>`) as the process named `service` (a
        rig with several core processes names them apart and gives each its settings)."""
        settings = settings or self.settings
        assert settings is not None
        env = {**os.environ, **to_environ(settings)}
        kind = service.split("-")[0]
        with self.log_path.open("ab") as log:
            self.procs[service] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "api.cli", "serve", kind, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    # -- faults ----------------------------------------------------------------------------
    async def kill(self, target: Target) -> None:
        """kill -9, no warning."""
        if target in SERVICES:
            proc = self.procs[target]
            proc.kill()
            await proc.wait()
        else:
            await self.stores.kill(target)

    async def restore(self, target: Target, *, empty: bool = False) -> None:
        """Start `target` again (same port; ``empty``: Redis with its data gone)."""
        if target in SERVICES:
            await self._spawn(target)
        else:
            await self.stores.restart(target, empty=empty)

    async def slow_redis(self, for_s: float, stall_ms: int = 300, every_s: float = 0.5) -> None:
        """A slow store: Redis stops serving every client for `stall_ms` out of every
        `every_s` (CLIENT PAUSE), for `for_s`."""
        assert self.settings is not None
        assert self.settings.stores.redis_url
        client = aioredis.from_url(self.settings.stores.redis_url)
        try:
            deadline = time.monotonic() + for_s
            while time.monotonic() < deadline:
                await client.execute_command("CLIENT", "PAUSE", stall_ms, "ALL")
                await asyncio.sleep(every_s)
        finally:
            await client.aclose()

    # -- health ----------------------------------------------------------------------------
    async def healthy(self) -> bool:
        async with httpx.AsyncClient(timeout=2.0) as client:
            for service in SERVICES:
                try:
                    r = await client.get(f"{self.url(service)}/health")
                except httpx.HTTPError:
                    return False
                if r.status_code != 200:
                    return False
        return True

    async def wait_healthy(self, timeout_s: float) -> float:
        """Seconds until both services report every store healthy."""
        started = time.monotonic()
        while not await self.healthy():
            for service, proc in self.procs.items():
                if proc.returncode is not None:
                    raise RuntimeError(f"{service} exited with {proc.returncode}: "
                                       f"{self.log_tail()}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"not healthy after {timeout_s:.0f} s: {self.log_tail()}")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def core_view(self, order_ids: list[str]) -> list[str]:
        """Core's timeline of each order (for a failure's message)."""
        assert self.endpoints is not None
        out: list[str] = []
        async with httpx.AsyncClient(base_url=self.endpoints.commerce_url, timeout=10) as c:
            admin = await Account.login(c, self.endpoints.admin_email,
                                        self.endpoints.admin_password)
            for order_id in order_ids:
                try:
                    r = await c.get(f"{self.endpoints.core_url}{V1}/fleet/orders/{order_id}",
                                    headers=await admin.headers())
                    out.append(f"{order_id}: {r.status_code} {r.text[:600]}")
                except httpx.HTTPError as exc:
                    out.append(f"{order_id}: {exc!r}")
        return out

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- acknowledged fixes ----------------------------------------------------------------------

@dataclass
class FixProbe:
    """A courier device posting one fix at a time over HTTP (``POST /delivery/locations``)
    through the outage, as an app with a send buffer does: a fix not acknowledged is sent
    again. Every fix acknowledged (202, accepted) must be in the LOCATIONS stream."""

    courier_id: str = ""
    acked: list[int] = field(default_factory=list)
    refused_on_retry: int = 0
    """Fixes answered `not_newer` when sent again after an unacknowledged attempt."""
    failures: int = 0

    async def run(self, core_url: str, account: Account, stop: asyncio.Event,
                  at: tuple[float, float], every_s: float = 0.2) -> None:
        self.courier_id = account.user_id
        transport = RetryingTransport(budget_s=5.0)
        async with httpx.AsyncClient(base_url=core_url, timeout=10, transport=transport) as core:
            pending: dict[str, float | int] | None = None
            while not stop.is_set():
                retrying = pending is not None
                if pending is None:
                    pending = {"lat": at[0], "lng": at[1], "ts": time.time_ns() // 1_000_000,
                               "accuracy": 5.0}
                try:
                    r = await core.post(f"{V1}/delivery/locations", json={"fixes": [pending]},
                                        headers=await account.headers())
                except httpx.HTTPError:
                    self.failures += 1
                    await asyncio.sleep(every_s)
                    continue
                if r.status_code == 202:
                    body = r.json()
                    if body["accepted"] == 1:
                        self.acked.append(int(pending["ts"]))
                    elif retrying:
                        self.refused_on_retry += 1
                    pending = None
                else:
                    self.failures += 1
                await asyncio.sleep(every_s)

    async def stored(self, nats_url: str, names: Names) -> set[int]:
        """The fix times of this courier in the LOCATIONS stream. Read again from the start
        while JetStream answers "unavailable" (a stream whose leader was just killed may
        still be electing one), for up to 30 s."""
        nc = await nats.connect(servers=[u.strip() for u in nats_url.split(",")])
        deadline = time.monotonic() + 30
        try:
            js = nc.jetstream()
            subject = f"{names.ns}.loc.*.{self.courier_id}"
            while True:
                sub = None
                seen: set[int] = set()
                try:
                    sub = await js.pull_subscribe(subject, stream=names.stream(LOCATIONS))
                    while msgs := await fetch_batch(sub, 256, 1.0):
                        for msg in msgs:
                            event = decode_locations(msg.data)
                            if isinstance(event, CourierLocatedBatch):
                                seen.update(f.ts for f in event.fixes)
                            await msg.ack()
                    return seen
                except TRANSIENT_ERRORS:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
                finally:
                    if sub is not None:
                        with contextlib.suppress(Exception):
                            await sub.unsubscribe()
        finally:
            await nc.close()


class Fault(msgspec.Struct, frozen=True):
    target: Target
    kind: Kind = "kill"

    def __str__(self) -> str:
        return f"{self.target} {self.kind}"


DOWN_S = 2.0


async def inject(rig: Rig, fault: Fault) -> None:
    """The fault itself; returns when the part is back (restarted, resumed, fast again):
    kill -9 and start again after `DOWN_S` (``kill-empty``: Redis with its data gone), a
    SIGSTOP of twice that (a partition), or a Redis that stalls for 300 ms in every 500
    for three times that."""
    if fault.kind == "pause":
        rig.stores.pause(fault.target)
        await asyncio.sleep(DOWN_S * 2)
        rig.stores.resume(fault.target)
    elif fault.kind == "slow":
        await rig.slow_redis(for_s=DOWN_S * 3)
    else:
        await rig.kill(fault.target)
        await asyncio.sleep(DOWN_S)
        await rig.restore(fault.target, empty=fault.kind == "kill-empty")


class Figures(msgspec.Struct, kw_only=True):
    """How the system came back from one fault (printed, and in assertion messages)."""

    fault: str
    down_s: float
    health_s: float
    """From the part coming back until both /health answer 200."""
    first_order_s: float | None
    """... until an order is placed and paid: the wait of the first order paid after it,
    counted from when it was back or, for an order asked for later, from the ask (so the
    gap until the next customer orders is not counted)."""
    first_progress_s: float | None
    """... until the first courier's progress through core's dispatch after it (an order
    assigned, picked up or delivered)."""
    first_assignment_s: float | None
    """... until the first order assigned after it (not part of the recovery: it also waits
    for an order's queue entry, i.e. for its food to be nearly ready)."""
    recovery_s: float | None
    """The slowest of health, order and progress: the system serves again."""

    def line(self) -> str:
        return (f"{self.fault:<16} down {self.down_s:4.1f} s | recovery "
                f"{_s(self.recovery_s)} (health {_s(self.health_s)}, order "
                f"{_s(self.first_order_s)}, courier progress {_s(self.first_progress_s)}; "
                f"first assignment {_s(self.first_assignment_s)})")


def recovery_of(fault: Fault, down_s: float, back_wall: float, health_s: float,
                world: World) -> Figures:
    ts = world.timelines.values()
    paid = sorted((t for t in ts if t.paid_s is not None and t.paid_s >= back_wall),
                  key=lambda t: t.paid_s or 0.0)
    order = (paid[0].paid_s or 0.0) - max(back_wall, paid[0].asked_s or back_wall) if paid \
        else None
    progress = seconds_after(back_wall, [x for t in ts for x in (
        t.assigned_s, t.picked_up_s, t.delivered_s)])
    return Figures(
        fault=str(fault), down_s=down_s, health_s=health_s, first_order_s=order,
        first_progress_s=progress,
        first_assignment_s=seconds_after(back_wall, [t.assigned_s for t in ts]),
        recovery_s=None if order is None or progress is None
        else max(health_s, order, progress))


def _s(value: float | None) -> str:
    return "   -  " if value is None else f"{value:5.1f} s"


def seconds_after(since_wall: float, times: list[float | None]) -> float | None:
    """Seconds from `since_wall` to the earliest of `times` after it (None if none)."""
    later = [t for t in times if t is not None and t >= since_wall]
    return (min(later) - since_wall) if later else None




class DrillResult(msgspec.Struct, kw_only=True):
    sim: SimResult
    figures: list[Figures]
    fixes_acked: int
    fixes_lost: int
    """Acknowledged fixes missing from the LOCATIONS stream."""
    fixes_refused_on_retry: int
    faults_at: list[str] = []
    """When each fault hit and when its part was back, in s from the day's start."""
    conflicts: list[str] = []
    """Each double assignment, described (holdings and core's snapshots), same clock."""

    def line(self) -> str:
        k = self.sim.kpis
        return (f"paid {self.sim.paid}, delivered {k.delivered}, cancelled {k.cancelled}, "
                f"stranded {len(self.sim.stranded)}, double {k.double_assignments} | fixes "
                f"acked {self.fixes_acked}, lost {self.fixes_lost}, refused on retry "
                f"{self.fixes_refused_on_retry} | retries {self.sim.retries}, reconciled "
                f"{self.sim.reconciled}")


async def drill(rig: Rig, config: SimConfig, faults: list[Fault], *, first_fault_s: float,
                spacing_s: float, echo: Callable[[str], None] = lambda _: None,
                probe_at: tuple[float, float] | None = None) -> DrillResult:
    """Run a simulated day on `rig` with `faults` one after another: the first
    `first_fault_s` into the day, each next one `spacing_s` after the previous part came
    back; a fix probe (by default ~110 km north of the city: never a dispatch candidate)
    posts fixes throughout. Returns the day's outcome from the records."""
    assert rig.endpoints is not None
    assert rig.settings is not None
    center = config.city.center
    at = probe_at or (center.lat + 1.0, center.lng)
    world = World()
    sim = asyncio.create_task(simulate(rig.endpoints, config, echo=echo, world=world))
    probe, probe_stop = FixProbe(), asyncio.Event()
    backs: list[tuple[Fault, float, float, float]] = []
    faults_at: list[str] = []
    async with httpx.AsyncClient(base_url=rig.endpoints.commerce_url, timeout=30) as commerce:
        device = await Account.register(commerce, f"probe-{secrets.token_hex(4)}@example.com",
                                        "probe-password-1", "delivery", "Probe")
        probe_task = asyncio.create_task(
            probe.run(rig.endpoints.core_url, device, probe_stop, at))
        try:
            await asyncio.wait_for(world.day_started.wait(), 120)
            await asyncio.sleep(first_fault_s)
            for fault in faults:
                echo(f"fault: {fault}")
                down_at, down_wall = time.monotonic(), time.time()
                await inject(rig, fault)
                back_wall, back_at = time.time(), time.monotonic()
                health_s = await rig.wait_healthy(60.0)
                backs.append((fault, back_at - down_at, back_wall, health_s))
                t0 = world.day_started_wall
                faults_at.append(f"{fault}: {down_wall - t0:.0f}-{back_wall - t0:.0f} s")
                await asyncio.sleep(max(0.0, back_at + spacing_s - time.monotonic()))
            result = await sim
        finally:
            probe_stop.set()
            await probe_task
            if not sim.done():
                sim.cancel()
    stored = await probe.stored(rig.settings.stores.nats_url or "",
                                Names(rig.settings.server.namespace))
    return DrillResult(
        sim=result, figures=[recovery_of(f, d, w, h, world) for f, d, w, h in backs],
        fixes_acked=len(probe.acked), fixes_lost=len(set(probe.acked) - stored),
        fixes_refused_on_retry=probe.refused_on_retry, faults_at=faults_at,
        conflicts=describe_conflicts(world))


def describe_conflicts(world: World) -> list[str]:
    """Every double assignment of the day in words, times in s from the day's start."""
    t0 = world.day_started_wall

    def span(h: Holding) -> str:
        end = "on" if h.end_s is None else f"{h.end_s - t0:.0f}"
        return (f"{h.courier_id[:8]} held {h.order_id[:8]} {h.start_s - t0:.0f}-{end} s "
                f"(via {h.via}{', stacked' if h.stacked else ''}; ended {h.ended or '-'})")

    def history(order_id: str) -> str:
        return "; ".join(span(h) for h in world.holdings if h.order_id == order_id)

    return ([f"holdings: {span(a)} / {span(b)}\n      history: {history(a.order_id)}"
             f"\n      history: {history(b.order_id)}"
             for a, b in holding_conflicts(world.holdings)]
            + [f"core snapshot {note}" for note in world.conflict_notes])


__all__ = ["DrillResult", "Fault", "Figures", "FixProbe", "Kind", "Rig", "Target", "drill",
           "inject", "recovery_of"]
