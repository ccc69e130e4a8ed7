"""Service zones: staff CRUD in PostgreSQL (``service_zones``), each change announced so
every core process reloads its `ZoneCache`.

A geometry is validated (and polyfilled, for its cell count) in a thread before it is stored:
a big polygon takes a while and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from api.core.zones.cache import ZoneCache
from api.core.zones.schemas import ZoneList, ZoneRead, ZoneWrite
from api.problems import Problem
from geo.zones import PolygonZone, ZoneError


class ZoneService:
    """CRUD of service zones; every write reloads this process's cache and tells the others."""

    def __init__(self, db: asyncpg.Pool, nats: NATS, cache: ZoneCache,
                 changed_subject: str) -> None:
        self.db = db
        self.nats = nats
        self.cache = cache
        self.changed_subject = changed_subject

    async def list_zones(self) -> ZoneList:
        rows = await self.db.fetch("SELECT * FROM service_zones ORDER BY created_at, id")
        zones = [_read(r, self.cache.cells_of(str(r["id"]))) for r in rows]
        return ZoneList(zones, len(zones))

    async def get(self, zone_id: UUID) -> ZoneRead:
        """Raises Problem 404 for an unknown zone."""
        row = await self.db.fetchrow("SELECT * FROM service_zones WHERE id=$1", zone_id)
        if row is None:
            raise Problem(404, "zone not found", code="not_found")
        return _read(row, self.cache.cells_of(str(zone_id)))

    async def create(self, data: ZoneWrite) -> ZoneRead:
        """Raises Problem 422 (``zone_<reason>``) for a geometry that is not a valid zone."""
        zone = await asyncio.to_thread(_validated, "new", data.geometry)
        row = await self.db.fetchrow(
            "INSERT INTO service_zones (name, geometry, active) VALUES ($1, $2, $3) "
            "RETURNING *", data.name, msgspec.json.encode(data.geometry).decode(), data.active)
        await self._announce()
        return _read(row, _cells(zone))

    async def replace(self, zone_id: UUID, data: ZoneWrite) -> ZoneRead:
        """Raises Problem 422 for an invalid geometry, 404 for an unknown zone."""
        zone = await asyncio.to_thread(_validated, str(zone_id), data.geometry)
        row = await self.db.fetchrow(
            "UPDATE service_zones SET name=$2, geometry=$3, active=$4, updated_at=now() "
            "WHERE id=$1 RETURNING *",
            zone_id, data.name, msgspec.json.encode(data.geometry).decode(), data.active)
        if row is None:
            raise Problem(404, "zone not found", code="not_found")
        await self._announce()
        return _read(row, _cells(zone))

    async def delete(self, zone_id: UUID) -> None:
        """Raises Problem 404 for an unknown zone."""
        done = await self.db.execute("DELETE FROM service_zones WHERE id=$1", zone_id)
        if done.endswith(" 0"):
            raise Problem(404, "zone not found", code="not_found")
        await self._announce()

    async def _announce(self) -> None:
        await self.nats.publish(self.changed_subject, b"")
        await self.cache.reload(self.db)


def _validated(zone_id: str, geometry: dict[str, object]) -> PolygonZone:
    try:
        return PolygonZone.from_geojson(zone_id, geometry)
    except ZoneError as exc:
        raise Problem(422, str(exc), code=f"zone_{exc.reason.value}") from None


def _cells(zone: PolygonZone) -> int:
    return len(zone.cover.interior) + len(zone.cover.boundary)


def _read(row: asyncpg.Record, cells: int) -> ZoneRead:
    return ZoneRead(id=row["id"], name=row["name"], geometry=msgspec.json.decode(row["geometry"]),
                    active=row["active"], cells=cells, created_at=row["created_at"],
                    updated_at=row["updated_at"])
