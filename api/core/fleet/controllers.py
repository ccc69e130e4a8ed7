"""The fleet console on core: the fleet manager's reads (/api/v1/fleet/...), the console's
public config, and its static shell at ``/console/``.

The static shell is public by design (it holds no data); every data call and the socket carry
the staff token the console got from commerce's login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Router, get
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.static_files import create_static_files_router

import fleet_console
from api.auth import PUBLIC_OPT_KEY, STAFF, roles
from api.core.deps import CoreDep, FleetDep, SettingsDep
from api.core.fleet.schemas import (
    CellOutlines,
    ConsoleConfig,
    CourierTrail,
    NearbyCouriers,
    OrderTimeline,
    RepositionHints,
)
from api.core.fleet.services import MAX_LIMIT, MAX_RADIUS_M, cell_outlines, console_config
from dispatch.kpis import FleetKpis

__all__ = ["HANDLERS", "STATIC_DIR", "ConsoleController", "FleetController", "console_static"]

STATIC_DIR = Path(fleet_console.__file__).resolve().parent / "static"

Lat = Annotated[float, QueryParameter(ge=-90, le=90)]
Lng = Annotated[float, QueryParameter(ge=-180, le=180)]
Radius = Annotated[float, QueryParameter(gt=0, le=MAX_RADIUS_M)]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)]


class FleetController(Controller):
    path = "/api/v1/fleet"
    guards = [roles(*STAFF)]
    tags = ["fleet"]

    @get("/couriers/nearby",
         summary="Couriers near a point, nearest first (stale couriers excluded)")
    async def nearby_couriers(self, fleet: FleetDep, lat: Lat, lng: Lng,
                              radius_m: Radius = 3000.0, limit: Limit = 20,
                              status: FromQuery[str | None] = None) -> NearbyCouriers:
        return await fleet.nearby_couriers(lat, lng, radius_m=radius_m, limit=limit,
                                           statuses=status)

    @get("/chefs/nearby", summary="Chefs on the live index near a point, nearest first")
    async def nearby_chefs(self, fleet: FleetDep, lat: Lat, lng: Lng,
                           radius_m: Radius = 5000.0, limit: Limit = 200) -> NearbyCouriers:
        return await fleet.nearby_chefs(lat, lng, radius_m=radius_m, limit=limit)

    @get("/stats", summary="KPIs from live state: couriers online/idle, orders waiting/late, "
                           "median assign")
    async def stats(self, fleet: FleetDep) -> FleetKpis:
        return await fleet.stats()

    @get("/cells", sync_to_thread=False,
         summary="Outlines of res-7 H3 cells (the console's supply/demand hexagons)")
    def cells(self, cells: FromQuery[str]) -> CellOutlines:
        return cell_outlines(cells)

    @get("/hints", summary="Repositioning hints for idle couriers toward predicted demand "
                           "(DISPATCH_REPOSITION_HINTS)")
    async def hints(self, fleet: FleetDep) -> RepositionHints:
        return await fleet.reposition_hints()

    @get("/couriers/{courier_id:str}/trail", sync_to_thread=False,
         summary="A courier's recent fixes matched to the roads: its snapped position and "
                 "trail (with ROADS)")
    def courier_trail(self, fleet: FleetDep, courier_id: FromPath[str]) -> CourierTrail:
        return fleet.courier_trail(courier_id)

    @get("/orders/{order_id:str}/timeline",
         summary="An order's dispatch steps with their times (the console's order drawer)")
    async def order_timeline(self, fleet: FleetDep, order_id: FromPath[str]) -> OrderTimeline:
        return await fleet.order_timeline(order_id)


class ConsoleController(Controller):
    path = "/api/v1/console"
    tags = ["fleet"]

    @get("/config", opt={PUBLIC_OPT_KEY: True}, sync_to_thread=False,
         summary="Where the console logs in and which map tiles it may draw (public)")
    def config(self, settings: SettingsDep, core: CoreDep,
               request: Request[Any, Any, Any]) -> ConsoleConfig:
        # The gateway (embedded or nginx) sets X-Forwarded-Host; only the caller's own
        # console reads this answer, so a forged header misleads nobody else.
        return console_config(
            settings, via_gateway=request.headers.get("x-forwarded-host") is not None,
            streets_bounds=core.streets.bounds if core.streets else None)


def console_static() -> Router:
    """``/console/`` → fleet_console/static (index.html for the folder)."""
    return create_static_files_router(path="/console", directories=[STATIC_DIR],
                                      html_mode=True, name="console",
                                      opt={PUBLIC_OPT_KEY: True}, include_in_schema=False)


HANDLERS: list[Any] = [FleetController, ConsoleController]
