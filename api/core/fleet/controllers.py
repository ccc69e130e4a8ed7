"""Fleet manager reads: nearby couriers (from the live H3 index)."""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from api.auth import STAFF, roles
from api.core.gps.ingest import wall_ms
from api.core.services import CoreServices
from api.problems import Problem

MAX_RADIUS_M = 50_000.0
MAX_LIMIT = 500


class NearbyCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    lat: float
    lng: float
    distance_m: float
    status: str
    updated_at: int
    """Time of the courier's last accepted fix, epoch ms UTC."""


class NearbyCouriers(msgspec.Struct, frozen=True):
    couriers: list[NearbyCourier]


@get("/api/v1/fleet/couriers/nearby", guards=[roles(*STAFF)],
     summary="Couriers near a point, nearest first (stale couriers excluded)")
async def nearby_couriers(
    state: State,
    lat: Annotated[float, QueryParameter(ge=-90, le=90)],
    lng: Annotated[float, QueryParameter(ge=-180, le=180)],
    radius_m: Annotated[float, QueryParameter(gt=0, le=MAX_RADIUS_M)] = 3000.0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 20,
    status: FromQuery[str | None] = None,
) -> NearbyCouriers:
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise Problem(400, "lat and lng must be finite numbers", code="bad_coordinates")
    core: CoreServices = state.core
    statuses = [s for s in status.split(",") if s] if status else None
    members, _ = await core.couriers.nearby(
        lat, lng, radius_m=radius_m, limit=limit, now_ms=wall_ms(),
        stale_s=core.settings.ingest.courier_stale_s, statuses=statuses,
    )
    return NearbyCouriers([
        NearbyCourier(courier_id=m.member_id, lat=m.lat, lng=m.lng,
                      distance_m=round(m.dist_m, 2), status=m.status,
                      updated_at=m.updated_at_ms)
        for m in members
    ])
