"""/api/v1/fleet/zones: staff CRUD of service zones, thin handlers over `ZoneService`."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import STAFF, roles
from api.core.deps import ServiceZonesDep
from api.core.zones.schemas import ZoneList, ZoneRead, ZoneWrite


class ZoneController(Controller):
    path = "/api/v1/fleet/zones"
    guards = [roles(*STAFF)]
    tags = ["fleet"]

    @get("/", summary="List service zones")
    async def list_zones(self, service_zones: ServiceZonesDep) -> ZoneList:
        return await service_zones.list_zones()

    @get("/{zone_id:uuid}", summary="One service zone")
    async def get_zone(self, service_zones: ServiceZonesDep, zone_id: FromPath[UUID]) -> ZoneRead:
        return await service_zones.get(zone_id)

    @post("/", summary="Create a service zone (GeoJSON polygon)")
    async def create_zone(self, service_zones: ServiceZonesDep,
                          data: JSONBody[ZoneWrite]) -> ZoneRead:
        return await service_zones.create(data)

    @put("/{zone_id:uuid}", summary="Replace a service zone")
    async def update_zone(self, service_zones: ServiceZonesDep, zone_id: FromPath[UUID],
                          data: JSONBody[ZoneWrite]) -> ZoneRead:
        return await service_zones.replace(zone_id, data)

    @delete("/{zone_id:uuid}", summary="Delete a service zone", status_code=204)
    async def delete_zone(self, service_zones: ServiceZonesDep, zone_id: FromPath[UUID]) -> None:
        await service_zones.delete(zone_id)
