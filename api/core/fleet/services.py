"""The fleet manager's reads of live state: couriers and chefs near a point (the live H3
indexes), KPIs (the live index's fresh couriers and dispatch's orders), an order's
dispatch timeline, hexagon outlines, and the console's public configuration."""

from __future__ import annotations

import math

import h3

from api.clock import Clock, wall_ms
from api.core.dispatch.service import reposition_params
from api.core.dispatch.store import OrderRecord
from api.core.fleet.schemas import (
    CellOutline,
    CellOutlines,
    ConsoleConfig,
    CourierTrail,
    NearbyCourier,
    NearbyCouriers,
    OrderTimeline,
    RepositionHints,
    TimelineStep,
    TrailPoint,
)
from api.core.services import CoreServices
from api.problems import Problem
from api.settings import Settings
from api.stores.live_index import NearbyMember, Position
from dispatch.kpis import FleetKpis, fleet_kpis
from dispatch.lifecycle import ACTIVE_ORDER_STATES, CourierState, OrderDispatchState
from dispatch.reposition import IdleCourier, RepositionParams, predict_demand, reposition_hints
from geo.cells import HEAT_RES, cell_of

MAX_RADIUS_M = 50_000.0
"""Widest search around a point."""
HINTS_TTL_MS = 2_000
"""Repositioning hints are reused this long (couriers poll theirs every 30 s)."""
MAX_LIMIT = 500
"""Most members one search returns."""
MAX_CELLS = 500
"""Hexagon outlines per request (a full-screen city at res 7 is a few hundred)."""
MAX_ORDER_ID = 128



class FleetService:
    """Reads for the fleet console; writes (assigning, availability) belong to dispatch."""

    def __init__(self, core: CoreServices, settings: Settings,
                 clock: Clock = wall_ms) -> None:
        self.core = core
        self.settings = settings
        self.clock = clock

    async def nearby_couriers(self, lat: float, lng: float, *, radius_m: float, limit: int,
                              statuses: str | None) -> NearbyCouriers:
        """Fresh couriers within ``radius_m``, nearest first; ``statuses`` (comma-separated)
        keeps only those dispatch states."""
        _check_point(lat, lng)
        wanted = [s for s in statuses.split(",") if s] if statuses else None
        members, _ = await self.core.couriers.nearby(
            lat, lng, radius_m=radius_m, limit=limit, now_ms=self.clock(),
            stale_s=self.settings.ingest.courier_stale_s, statuses=wanted)
        return _members(members, await self.core.courier_names.of(
            [m.member_id for m in members]))

    async def nearby_chefs(self, lat: float, lng: float, *, radius_m: float,
                           limit: int) -> NearbyCouriers:
        """Chefs on the live index within ``radius_m``, nearest first (the couriers' shape:
        ``courier_id`` is the chef's id)."""
        _check_point(lat, lng)
        members, _ = await self.core.chefs.nearby(lat, lng, radius_m=radius_m, limit=limit,
                                                  now_ms=self.clock())
        return _members(members)

    async def stats(self) -> FleetKpis:
        """KPIs from live state: the live index knows who sent a fresh fix, the dispatch
        store their state and the active orders right now."""
        fresh = await self._fresh_couriers()
        ids = list(fresh)
        statuses = await self.core.couriers.status_of(ids)
        store = self.core.dispatch.store
        order_ids: list[str] = []
        for state in ACTIVE_ORDER_STATES:
            order_ids += await store.orders_in_state(state)
        orders = await store.orders(order_ids)
        located = ((s, fresh[cid].lat, fresh[cid].lng)
                   for cid, s in zip(ids, statuses, strict=True))
        return fleet_kpis(located, orders, self.clock())

    async def reposition_hints(self) -> RepositionHints:
        """Hints for the idle couriers with a fresh fix (the live index's, as `stats`),
        from the orders dispatch entered in the last `RepositionParams.window_s` (every
        state, delivered included; at most 1,000 per state), by kitchen cell. Computed at
        most once every `HINTS_TTL_MS` per process, whoever asks."""
        params = reposition_params(self.settings.dispatch)
        if params is None:
            return RepositionHints(enabled=False, hints=[], demand={})
        now = self.clock()
        recent = self.core.recent_hints
        if recent is not None and now - recent[0] < HINTS_TTL_MS:
            return recent[1]
        hints = await self._compute_hints(params, now)
        self.core.recent_hints = (now, hints)
        return hints

    async def _fresh_couriers(self) -> dict[str, Position]:
        """Couriers whose last fix is newer than ``courier_stale_s`` → that fix."""
        return await self.core.couriers.fresh(
            now_ms=self.clock(), stale_s=self.settings.ingest.courier_stale_s)

    async def _compute_hints(self, params: RepositionParams, now: int) -> RepositionHints:
        fresh = await self._fresh_couriers()
        ids = sorted(fresh)
        statuses = await self.core.couriers.status_of(ids)
        idle = [IdleCourier(courier_id=cid, lat=fresh[cid].lat, lng=fresh[cid].lng)
                for cid, s in zip(ids, statuses, strict=True) if s == CourierState.IDLE]
        store = self.core.dispatch.store
        order_ids: list[str] = []
        for state in (*ACTIVE_ORDER_STATES, OrderDispatchState.DELIVERED):
            order_ids += await store.orders_in_state(state)
        accepted = [(o.created_ms, cell_of(o.pickup.lat, o.pickup.lng, params.cell_res))
                    for o in await store.orders(order_ids)
                    if o.created_ms is not None and o.pickup is not None]
        demand = predict_demand(accepted, now, params)
        return RepositionHints(enabled=True, hints=reposition_hints(idle, demand, params),
                               demand={c: round(d, 3) for c, d in sorted(demand.items())})

    def courier_trail(self, courier_id: str) -> CourierTrail:
        """The courier's matched trail in this process.

        Raises:
            Problem: 404 when no fix of the courier has been matched here (no road data,
            matching off, or not yet: fixes are matched in batches, ``ROADS_MATCH_BATCH``).
        """
        matcher = self.core.matcher
        trail = matcher.trail(courier_id) if matcher is not None else None
        if trail is None:
            raise Problem(404, "no matched trail for this courier", code="not_found")
        pts = list(trail.points)
        lat, lng, ts = pts[-1]
        return CourierTrail(
            courier_id=courier_id, snapped=TrailPoint(lat=lat, lng=lng, ts=round(ts * 1000)),
            trail={"type": "LineString", "coordinates": [[p[1], p[0]] for p in pts]},
            points=len(pts), confidence=trail.confidence)

    async def order_timeline(self, order_id: str) -> OrderTimeline:
        """The steps dispatch recorded for an order, oldest first.

        Raises:
            Problem: 404 when dispatch has no such order.
        """
        order = (await self.core.dispatch.store.order(order_id)
                 if len(order_id) <= MAX_ORDER_ID else None)
        if order is None:
            raise Problem(404, "order not found", code="not_found")
        names = (await self.core.courier_names.of([order.courier_id])
                 if order.courier_id else {})
        return OrderTimeline(order_id=order_id, state=order.state.value,
                             courier_id=order.courier_id, promised_at=order.promised_ms,
                             steps=_steps(order),
                             courier_name=names.get(order.courier_id or "", ""),
                             ready_at=order.food_ready_ms or order.ready_ms,
                             food_ready=order.food_ready_ms is not None)


def _steps(o: OrderRecord) -> list[TimelineStep]:
    """The steps dispatch recorded of `o`, oldest first, with the console's label for each."""
    times = (("entered dispatch", o.created_ms), ("queued for matching", o.enter_ms),
             ("assigned", o.assigned_ms), ("picked up", o.picked_up_ms),
             ("delivering", o.delivering_ms), ("delivered", o.delivered_ms))
    return sorted((TimelineStep(label, at) for label, at in times if at is not None),
                  key=lambda s: s.at_ms)


STREETS_URL = "/api/v1/routing/streets/{z}/{x}/{y}"


def console_config(settings: Settings, *, via_gateway: bool = False,
                   streets_bounds: tuple[float, float, float, float] | None = None
                   ) -> ConsoleConfig:
    """Where the pages log in (commerce) and which map tiles and streets they may draw
    (``streets_bounds``: the road data's box, None without roads); through the gateway,
    commerce is on the page's own origin."""
    return ConsoleConfig(commerce_url=settings.console.commerce_url or None,
                         commerce_port=settings.server.commerce_port,
                         tile_url=settings.console.tile_url or None, same_origin=via_gateway,
                         streets_url=STREETS_URL if streets_bounds else None,
                         streets_bounds=streets_bounds)


def cell_outlines(cells: str) -> CellOutlines:
    """Outlines of comma-separated res-7 H3 cells.

    Raises:
        Problem: 400 for none or more than MAX_CELLS, or a cell that is not res-7 H3.
    """
    wanted = [c for c in cells.split(",") if c]
    if not wanted or len(wanted) > MAX_CELLS:
        raise Problem(400, f"give 1 to {MAX_CELLS} comma-separated cells", code="bad_cells")
    out: list[CellOutline] = []
    for cell in wanted:
        if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != HEAT_RES:
            raise Problem(400, f"{cell[:40]!r} is not a res-{HEAT_RES} H3 cell", code="bad_cell")
        out.append(CellOutline(cell, [(round(a, 6), round(b, 6))
                                      for a, b in h3.cell_to_boundary(cell)]))
    return CellOutlines(out)


def _check_point(lat: float, lng: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise Problem(400, "lat and lng must be finite numbers", code="bad_coordinates")


def _members(members: list[NearbyMember],
             names: dict[str, str] | None = None) -> NearbyCouriers:
    names = names or {}
    return NearbyCouriers([
        NearbyCourier(courier_id=m.member_id, lat=m.lat, lng=m.lng,
                      distance_m=round(m.dist_m, 2), status=m.status,
                      updated_at=m.updated_at_ms, name=names.get(m.member_id, ""))
        for m in members
    ])
