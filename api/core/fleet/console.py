"""The fleet console on core: its static files at ``/console/`` and the reads it needs besides
the fleet endpoints and ``/ws/console`` (KPIs, chefs on the map, hexagon outlines, config).

The static shell is public by design (it holds no data); every data call and the socket carry
the staff token the console got from commerce's login.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import h3
import msgspec
from litestar import Router, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.static_files import create_static_files_router

import fleet_console
from api.auth import PUBLIC_OPT_KEY, STAFF, roles
from api.core.fleet.controllers import MAX_LIMIT, MAX_RADIUS_M, NearbyCourier, NearbyCouriers
from api.core.gps.ingest import wall_ms
from api.core.services import CoreServices
from api.problems import Problem
from api.settings import Settings
from dispatch.kpis import FleetKpis, fleet_kpis
from dispatch.lifecycle import ACTIVE_ORDER_STATES
from geo.cells import HEAT_RES

__all__ = ["CONSOLE_HANDLERS", "STATIC_DIR", "console_static"]

STATIC_DIR = Path(fleet_console.__file__).resolve().parent / "static"
MAX_CELLS = 500
"""Hexagon outlines per request (a full-screen city at res 7 is a few hundred)."""


class ConsoleConfig(msgspec.Struct, frozen=True, kw_only=True):
    commerce_url: str | None
    """Where browsers reach commerce (login); None: same host as the console, ``commerce_port``."""
    commerce_port: int
    tile_url: str | None
    """Optional raster tiles (``{z}/{x}/{y}``) under the map; None draws no tiles."""


class CellOutline(msgspec.Struct, frozen=True):
    cell: str
    boundary: list[tuple[float, float]]
    """Vertices as ``[lat, lng]``."""


class CellOutlines(msgspec.Struct, frozen=True):
    cells: list[CellOutline]


def _core(state: State) -> CoreServices:
    core: CoreServices = state.core
    return core


@get("/api/v1/console/config", opt={PUBLIC_OPT_KEY: True}, sync_to_thread=False,
     summary="Where the console logs in and which map tiles it may draw (public)")
def console_config(state: State) -> ConsoleConfig:
    settings: Settings = state.settings
    return ConsoleConfig(commerce_url=settings.console.commerce_url or None,
                         commerce_port=settings.server.commerce_port,
                         tile_url=settings.console.tile_url or None)


@get("/api/v1/fleet/stats", guards=[roles(*STAFF)],
     summary="KPIs from live state: couriers online/idle, orders waiting/late, median assign")
async def fleet_stats(state: State) -> FleetKpis:
    core = _core(state)
    fresh = state.tracking.hub.fresh_couriers()
    # The hub knows who sent a fresh fix; the store knows their dispatch state right now.
    ids = list(fresh)
    raw: list[Any] = (await core.couriers.redis.hmget(core.couriers.status_key, ids)
                      if ids else [])
    store = core.dispatch.store
    order_ids: list[str] = []
    for s in ACTIVE_ORDER_STATES:
        order_ids += await store.orders_in_state(s)
    orders = await store.orders(order_ids)
    couriers = (((s or b"").decode(), fresh[cid].lat, fresh[cid].lng)
                for cid, s in zip(ids, raw, strict=True))
    return fleet_kpis(couriers, orders, wall_ms())


@get("/api/v1/fleet/chefs/nearby", guards=[roles(*STAFF)],
     summary="Chefs on the live index near a point, nearest first")
async def nearby_chefs(
    state: State,
    lat: Annotated[float, QueryParameter(ge=-90, le=90)],
    lng: Annotated[float, QueryParameter(ge=-180, le=180)],
    radius_m: Annotated[float, QueryParameter(gt=0, le=MAX_RADIUS_M)] = 5000.0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 200,
) -> NearbyCouriers:
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise Problem(400, "lat and lng must be finite numbers", code="bad_coordinates")
    members, _ = await _core(state).chefs.nearby(lat, lng, radius_m=radius_m, limit=limit,
                                                 now_ms=wall_ms())
    # Same shape as couriers: ``courier_id`` is the member id (the chef's id here).
    return NearbyCouriers([
        NearbyCourier(courier_id=m.member_id, lat=m.lat, lng=m.lng,
                      distance_m=round(m.dist_m, 2), status=m.status,
                      updated_at=m.updated_at_ms)
        for m in members
    ])


@get("/api/v1/fleet/cells", guards=[roles(*STAFF)], sync_to_thread=False,
     summary="Outlines of res-7 H3 cells (the console's supply/demand hexagons)")
def cell_outlines(cells: FromQuery[str]) -> CellOutlines:
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


class TimelineStep(msgspec.Struct, frozen=True):
    step: str
    at_ms: int


class OrderTimeline(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    state: str
    courier_id: str | None
    promised_at: int | None
    steps: list[TimelineStep]
    """What dispatch recorded, oldest first."""


_STEPS = (("created_ms", "entered dispatch"), ("enter_ms", "queued for matching"),
          ("assigned_ms", "assigned"), ("picked_up_ms", "picked up"),
          ("delivering_ms", "delivering"), ("delivered_ms", "delivered"))


@get("/api/v1/fleet/orders/{order_id:str}/timeline", guards=[roles(*STAFF)],
     summary="An order's dispatch steps with their times (the console's order drawer)")
async def order_timeline(state: State, order_id: FromPath[str]) -> OrderTimeline:
    order = await _core(state).dispatch.store.order(order_id) if len(order_id) <= 128 else None
    if not order:
        raise Problem(404, "order not found", code="not_found")
    steps = [TimelineStep(label, int(order[field])) for field, label in _STEPS
             if order.get(field, "").isdigit()]
    promised = order.get("promised_ms", "")
    return OrderTimeline(order_id=order_id, state=order.get("state", ""),
                         courier_id=order.get("courier") or None,
                         promised_at=int(promised) if promised.isdigit() else None,
                         steps=sorted(steps, key=lambda s: s.at_ms))


def console_static() -> Router:
    """``/console/`` → fleet_console/static (index.html for the folder)."""
    return create_static_files_router(path="/console", directories=[STATIC_DIR],
                                      html_mode=True, name="console",
                                      opt={PUBLIC_OPT_KEY: True}, include_in_schema=False)


CONSOLE_HANDLERS: list[Any] = [console_config, fleet_stats, nearby_chefs, cell_outlines,
                                order_timeline]
