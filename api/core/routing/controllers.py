"""POST /api/v1/routing/optimize: couriers and orders in lat/lng → routes with per-stop ETAs,
a thin handler over `RoutingService`."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from api.auth import STAFF, roles
from api.core.deps import RoutingDep
from api.core.routing.schemas import OptimizeRequest, OptimizeResponse


async def _client_gone(request: Request[Any, Any, Any]) -> None:
    """Returns when the client disconnects (the body is read: `receive` has nothing else)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class RoutingController(Controller):
    path = "/api/v1/routing"
    guards = [roles(*STAFF)]
    tags = ["routing"]

    @post("/optimize", status_code=200,
          summary="Optimal routes (pickup before drop-off, windows, capacity) with per-stop ETAs")
    async def optimize(self, request: Request[Any, Any, Any], routing: RoutingDep,
                       data: JSONBody[OptimizeRequest]) -> OptimizeResponse:
        return await routing.optimize(data, client_gone=partial(_client_gone, request))
