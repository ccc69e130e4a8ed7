"""A whole system of the test's own, every part of it killable: embedded PostgreSQL, Redis
(append-only, as `homechef up` runs it) and NATS on free ports, and core and commerce as
`homechef serve` child processes, the way `homechef up` runs them.

A fault is injected while the simulator drives a short day through the public APIs; the
test then reads the outcome from the records (commerce's orders, the LOCATIONS stream), not
from what the simulator believes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
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
from api.simulator.clients import V1, Account, RetryingTransport, expect
from api.simulator.run import Endpoints
from api.simulator.system import create_staff, staff_login
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocatedBatch, decode_locations
from streams.jetstream import fetch_batch

Service = Literal["core", "commerce"]
Store = Literal["redis", "nats", "postgres"]
Target = Service | Store
Kind = Literal["kill", "kill-empty", "pause", "slow"]
SERVICES: tuple[Service, ...] = ("core", "commerce")


class Rig:
    """The system under fault: `start()`, inject faults with `kill`/`restore`/`pause`/`slow`,
    `stop()`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores = EmbeddedStores(root / "stores")
        self.procs: dict[Service, asyncio.subprocess.Process] = {}
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

    async def _spawn(self, service: Service) -> None:
        assert self.settings is not None
        env = {**os.environ, **to_environ(self.settings)}
        with self.log_path.open("ab") as log:
            self.procs[service] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "api.cli", "serve", service, env=env,
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
        """The fix times of this courier in the LOCATIONS stream."""
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            subject = f"{names.ns}.loc.*.{self.courier_id}"
            sub = await js.pull_subscribe(subject, stream=names.stream(LOCATIONS))
            seen: set[int] = set()
            while msgs := await fetch_batch(sub, 256, 1.0):
                for msg in msgs:
                    event = decode_locations(msg.data)
                    if isinstance(event, CourierLocatedBatch):
                        seen.update(f.ts for f in event.fixes)
                    await msg.ack()
            return seen
        finally:
            await nc.close()


class Figures(msgspec.Struct, kw_only=True):
    """What one fault did to the day (printed, and in the test's assertion messages)."""

    fault: str
    down_s: float
    health_s: float | None = None
    """From the part coming back until both /health answer 200."""
    first_order_s: float | None = None
    """... until the first order placed and paid after it."""
    first_progress_s: float | None = None
    """... until the first courier's progress through core's dispatch after it (an order
    assigned, picked up or delivered)."""
    first_assignment_s: float | None = None
    """... until the first order assigned after it (not part of the recovery: it also waits
    for an order's queue entry, i.e. for its food to be nearly ready)."""
    recovery_s: float | None = None
    placed: int = 0
    paid: int = 0
    delivered: int = 0
    cancelled: int = 0
    stranded: list[str] = []
    double_assignments: int = 0
    fixes_acked: int = 0
    fixes_lost: int = 0
    fixes_refused_on_retry: int = 0
    retries: int = 0
    reconciled: int = 0
    errors: int = 0

    def line(self) -> str:
        return (f"{self.fault:<22} down {self.down_s:4.1f} s | recovery "
                f"{_s(self.recovery_s)} (health {_s(self.health_s)}, order "
                f"{_s(self.first_order_s)}, courier progress {_s(self.first_progress_s)}; "
                f"first assignment {_s(self.first_assignment_s)}) | "
                f"paid {self.paid}, delivered {self.delivered}, cancelled {self.cancelled}, "
                f"stranded {len(self.stranded)}, double {self.double_assignments} | fixes acked "
                f"{self.fixes_acked}, lost {self.fixes_lost}, refused on retry "
                f"{self.fixes_refused_on_retry} | retries {self.retries}, reconciled "
                f"{self.reconciled}")


def _s(value: float | None) -> str:
    return "   -  " if value is None else f"{value:5.1f} s"


def seconds_after(since_wall: float, times: list[float | None]) -> float | None:
    """Seconds from `since_wall` to the earliest of `times` after it (None if none)."""
    later = [t for t in times if t is not None and t >= since_wall]
    return (min(later) - since_wall) if later else None


__all__ = ["Figures", "FixProbe", "Kind", "Rig", "Target", "expect", "seconds_after"]
