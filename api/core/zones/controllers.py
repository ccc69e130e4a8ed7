"""Service zones: admin CRUD in PostgreSQL, an in-memory `ZoneSet` for the ingest path.

Every core process keeps the active zones polyfilled in memory; a change is announced on
NATS (``<ns>.zones.changed``) so all processes reload at once, and a periodic reload covers
a missed announcement. A fix outside every zone is accepted but flagged.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.params import Body, FromPath

from api.auth import STAFF, roles
from api.problems import Problem
from api.resources import Resources
from geo.zones import PolygonZone, ZoneError

log = logging.getLogger("homechef.zones")




class ZoneWrite(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    geometry: dict[str, Any]
    """GeoJSON Polygon or MultiPolygon ([lng, lat] positions), or a Feature of one."""
    active: bool = True


class ZoneRead(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    geometry: dict[str, Any]
    active: bool
    cells: int
    """Res-9 H3 cells covering the zone."""
    created_at: datetime
    updated_at: datetime


class ZoneList(msgspec.Struct, frozen=True):
    data: list[ZoneRead]
    total: int


def _validated(zone_id: str, geometry: dict[str, Any]) -> PolygonZone:
    try:
        return PolygonZone.from_geojson(zone_id, geometry)
    except ZoneError as exc:
        raise Problem(422, str(exc), code=f"zone_{exc.reason.value}") from None


def _read(row: asyncpg.Record, cells: int) -> ZoneRead:
    return ZoneRead(id=row["id"], name=row["name"], geometry=msgspec.json.decode(row["geometry"]),
                    active=row["active"], cells=cells, created_at=row["created_at"],
                    updated_at=row["updated_at"])


class ZoneController(Controller):
    path = "/api/v1/fleet/zones"
    guards = [roles(*STAFF)]
    tags = ["fleet"]

    async def _announce(self, state: State) -> None:
        res: Resources = state.resources
        await res.nats.publish(f"{res.settings.server.namespace}.zones.changed", b"")
        await state.core.zones.reload(res.db)

    @get("/", summary="List service zones")
    async def list_zones(self, state: State) -> ZoneList:
        rows = await state.resources.db.fetch(
            "SELECT * FROM service_zones ORDER BY created_at, id")
        polys = [_read(r, state.core.zones.cells_of(str(r["id"]))) for r in rows]
        return ZoneList(polys, len(polys))

    @get("/{zone_id:uuid}", summary="One service zone")
    async def get_zone(self, state: State, zone_id: FromPath[UUID]) -> ZoneRead:
        row = await state.resources.db.fetchrow("SELECT * FROM service_zones WHERE id=$1",
                                                zone_id)
        if row is None:
            raise Problem(404, "zone not found", code="not_found")
        return _read(row, state.core.zones.cells_of(str(zone_id)))

    @post("/", summary="Create a service zone (GeoJSON polygon)")
    async def create_zone(self, state: State, data: Annotated[ZoneWrite, Body()]) -> ZoneRead:
        zone = await asyncio.to_thread(_validated, "new", data.geometry)
        row = await state.resources.db.fetchrow(
            "INSERT INTO service_zones (name, geometry, active) VALUES ($1, $2, $3) "
            "RETURNING *", data.name, msgspec.json.encode(data.geometry).decode(), data.active)
        await self._announce(state)
        return _read(row, len(zone.cover.interior) + len(zone.cover.boundary))

    @put("/{zone_id:uuid}", summary="Replace a service zone")
    async def update_zone(self, state: State, zone_id: FromPath[UUID],
                          data: Annotated[ZoneWrite, Body()]) -> ZoneRead:
        zone = await asyncio.to_thread(_validated, str(zone_id), data.geometry)
        row = await state.resources.db.fetchrow(
            "UPDATE service_zones SET name=$2, geometry=$3, active=$4, updated_at=now() "
            "WHERE id=$1 RETURNING *",
            zone_id, data.name, msgspec.json.encode(data.geometry).decode(), data.active)
        if row is None:
            raise Problem(404, "zone not found", code="not_found")
        await self._announce(state)
        return _read(row, len(zone.cover.interior) + len(zone.cover.boundary))

    @delete("/{zone_id:uuid}", summary="Delete a service zone", status_code=204)
    async def delete_zone(self, state: State, zone_id: FromPath[UUID]) -> None:
        done = await state.resources.db.execute("DELETE FROM service_zones WHERE id=$1", zone_id)
        if done.endswith(" 0"):
            raise Problem(404, "zone not found", code="not_found")
        await self._announce(state)
