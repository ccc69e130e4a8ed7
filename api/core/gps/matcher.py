"""The fleet matcher: couriers' fixes matched to the roads off the ingest path, their snapped
trails, and live traffic learnt from them (docs/roads.md#map-matching-and-live-traffic).

It hears fixes on its own NATS subscription to the LOCATIONS subjects (as the tracking hub
does): the handler only appends to bounded per-courier buffers (`roads.trails`). Every
``ROADS_MATCH_INTERVAL_S`` it matches the couriers with a batch of new fixes (OSRM Match,
one call per courier) for at most ``ROADS_MATCH_BUDGET_MS``; whoever is left waits for the
next look, their oldest fixes dropped if they pile up. Matched legs feed one
`TrafficLearner` per profile; every ``ROADS_TRAFFIC_INTERVAL_S`` the learnt speeds are
applied by re-customising a copy of the MLD data in a thread (`roads.live`) and swapping the
engine in on the event loop, between queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from api.settings import RoadsSettings
from geo.travel import Vehicle
from roads.live import Recustomiser
from roads.manifest import RoadsError
from roads.model import RoadTravelModel
from roads.profiles import PROFILE_OF, Profile
from roads.traffic import TrafficConfig, TrafficLearner
from roads.trails import FixBuffers, Trail, TrailLimits
from streams.catalog import Names
from streams.events import CourierLocated, CourierLocatedBatch, LocRun, decode_locations
from streams.jetstream import raise_if_cancelling

__all__ = ["FleetMatcher"]

log = logging.getLogger("homechef.matcher")

VEHICLES_EVERY_S = 10.0
"""Couriers' vehicles (which profile their fixes are matched on) are re-read this often,
and at most every `VEHICLES_MIN_S` while a courier due is not known yet."""
VEHICLES_MIN_S = 1.0
SLICE_S = 0.01
"""Matching yields to the event loop this often within a look's budget, so ingest's and the
indexer's tasks run between slices instead of after the whole budget."""


class FleetMatcher:
    def __init__(self, names: Names, roads: RoadTravelModel, settings: RoadsSettings,
                 vehicles: Callable[[], Awaitable[dict[str, Vehicle]]]) -> None:
        self.names = names
        self.roads = roads
        self.settings = settings
        self._vehicles_of = vehicles
        self.vehicles: dict[str, Vehicle] = {}
        self.buffers = FixBuffers(TrailLimits(
            batch=settings.match_batch, max_fixes=settings.match_max_fixes,
            trail_points=settings.trail_points))
        config = TrafficConfig(half_life_s=settings.traffic_half_life_s,
                               min_samples=settings.traffic_min_samples)
        self.learners: dict[Profile, TrafficLearner] = {
            p: TrafficLearner(config) for p in ("car", "bicycle") if p in roads.engines}
        self.live = (Recustomiser(roads.directory, roads.manifest)
                     if settings.traffic_interval_s > 0 and roads.manifest.algorithm == "mld"
                     else None)
        self.matched_fixes = 0
        self.applied: dict[Profile, int] = {}
        """Per profile: segments of learnt speeds in the engine serving now."""

    # -- hearing fixes (the NATS callback: appends only) -----------------------------------
    async def _on_location(self, msg: Msg) -> None:
        self.on_location_data(msg.data)

    def on_location_data(self, data: bytes) -> None:
        try:
            event = decode_locations(data)
        except msgspec.DecodeError:
            return
        add = self.buffers.add
        if isinstance(event, CourierLocated):
            add(event.courier_id, event.lat, event.lng, event.ts / 1000)
            return
        runs: tuple[LocRun | CourierLocatedBatch, ...] = (
            (event,) if isinstance(event, CourierLocatedBatch) else event.runs)
        for run in runs:
            for f in run.fixes:
                add(run.courier_id, f.lat, f.lng, f.ts / 1000)

    # -- matching ------------------------------------------------------------------------------
    def match_due(self, budget_s: float) -> int:
        """Match the couriers due (the one whose last fix is oldest first) until `budget_s`
        is spent; how many were matched."""
        started = time.perf_counter()
        done = 0
        scooter = self.roads.scooter_factor
        for cid in self.buffers.due():
            if time.perf_counter() - started >= budget_s:
                break
            fixes = self.buffers.take(cid)
            vehicle = self.vehicles.get(cid)
            m = self.roads.match([f[0] for f in fixes], [f[1] for f in fixes],
                                 [f[2] for f in fixes], vehicle or Vehicle.BIKE)
            done += 1
            if m is None:
                continue
            self.matched_fixes += len(fixes)
            self.buffers.matched(cid, [(s[0], s[1], f[2]) for s, f in
                                       zip(m.snapped, fixes, strict=True) if s is not None],
                                 m.confidence)
            learner = None if vehicle is None else self.learners.get(PROFILE_OF[vehicle])
            if learner is None:
                continue  # a vehicle unknown here: its trail only, no speeds
            # A scooter's road time is the car's x the factor: learn the car's speed.
            factor = scooter if vehicle is Vehicle.SCOOTER else 1.0
            now_s = fixes[-1][2]
            for leg in m.legs:
                learner.observe(leg.nodes, leg.distance_m, leg.observed_s / factor, now_s)
        return done

    async def _match_for(self, budget_s: float) -> None:
        """Match the couriers due for at most `budget_s` of matching, in slices of
        `SLICE_S` with the event loop free in between."""
        spent = 0.0
        while spent < budget_s and self.buffers.due():
            t0 = time.perf_counter()
            if not self.match_due(min(SLICE_S, budget_s - spent)):
                break
            spent += time.perf_counter() - t0
            await asyncio.sleep(0)
            raise_if_cancelling()

    def trail(self, courier_id: str) -> Trail | None:
        return self.buffers.trail(courier_id)

    async def apply_traffic(self) -> int:
        """Re-customise each profile with its learnt speeds (in a thread) and swap the new
        engine in; how many profiles changed."""
        if self.live is None:
            return 0
        changed = 0
        now_s = time.time()
        for profile, learner in self.learners.items():
            learner.forget(now_s)
            speeds = learner.speeds(now_s)
            if not speeds and not self.applied.get(profile):
                continue
            try:
                engine = await asyncio.to_thread(self.live.customise, profile, speeds)
            except (RoadsError, OSError) as exc:  # a tool failed, a read-only folder
                log.warning("live traffic: %s not re-customised: %s", profile, exc)
                continue
            raise_if_cancelling()
            self.roads.swap_engine(profile, engine)
            self.applied[profile] = len(speeds)
            changed += 1
            log.info("live traffic: %s serves %d learnt segment speeds (re-customised in "
                     "%.0f ms)", profile, len(speeds), self.live.last_s * 1000)
        return changed

    # -- running ---------------------------------------------------------------------------
    async def run(self, nc: NATS) -> None:
        """Hear fixes and match them until cancelled; apply learnt traffic on schedule."""
        s = self.settings
        sub = await nc.subscribe(self.names.locations_all(), cb=self._on_location,
                                 pending_msgs_limit=200_000)
        vehicles_read = -VEHICLES_EVERY_S
        next_traffic = time.monotonic() + s.traffic_interval_s
        try:
            while True:
                await asyncio.sleep(s.match_interval_s)
                now = time.monotonic()
                since = now - vehicles_read
                if since >= VEHICLES_EVERY_S or (since >= VEHICLES_MIN_S and any(
                        c not in self.vehicles for c in self.buffers.due())):
                    vehicles_read = now
                    with contextlib.suppress(Exception):  # a store hiccup: keep the last
                        self.vehicles = await self._vehicles_of()
                    raise_if_cancelling()
                await self._match_for(s.match_budget_ms / 1000)
                if self.live is not None and now >= next_traffic:
                    next_traffic = now + s.traffic_interval_s
                    await self.apply_traffic()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
