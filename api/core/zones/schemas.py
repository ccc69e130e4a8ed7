"""Service zones on the wire: a write (create or replace) and what staff read back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec


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
