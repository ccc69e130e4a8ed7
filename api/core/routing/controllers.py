"""POST /api/v1/routing/optimize: couriers and orders in lat/lng → routes with per-stop ETAs,
a thin handler over `RoutingService`."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter

from api.auth import STAFF, Role, roles
from api.core.deps import CoreDep, RoutingDep
from api.core.routing.legs import route_leg
from api.core.routing.schemas import OptimizeRequest, OptimizeResponse, RouteLeg
from geo.travel import Vehicle


async def _client_gone(request: Request[Any, Any, Any]) -> None:
    """Returns when the client disconnects (the body is read: `receive` has nothing else)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


Lat = Annotated[float, QueryParameter(ge=-90, le=90)]
Lng = Annotated[float, QueryParameter(ge=-180, le=180)]


class RouteLegController(Controller):
    path = "/api/v1/routing"
    guards = [roles(*STAFF, Role.DELIVERY)]
    tags = ["routing"]

    @get("/route", sync_to_thread=False,
         summary="One leg between two points: duration, distance and a GeoJSON LineString "
                 "along the roads (ROADS) or the straight line")
    def route(self, core: CoreDep, from_lat: Lat, from_lng: Lng, to_lat: Lat, to_lng: Lng,
              vehicle: FromQuery[Literal["bike", "scooter", "car"]] = "bike") -> RouteLeg:
        return route_leg(core.travel, from_lat, from_lng, to_lat, to_lng, Vehicle(vehicle))


class RoutingController(Controller):
    path = "/api/v1/routing"
    guards = [roles(*STAFF)]
    tags = ["routing"]

    @post("/optimize", status_code=200,
          summary="Optimal routes (pickup before drop-off, windows, capacity) with per-stop ETAs")
    async def optimize(self, request: Request[Any, Any, Any], routing: RoutingDep,
                       data: JSONBody[OptimizeRequest]) -> OptimizeResponse:
        return await routing.optimize(data, client_gone=partial(_client_gone, request))
