"""What the fleet console reads: couriers and chefs near a point, hexagon outlines, an
order's dispatch timeline, and where the console logs in."""

from __future__ import annotations

import msgspec


class NearbyCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    """The member's id: a courier's, or a chef's in the chefs' search."""
    lat: float
    lng: float
    distance_m: float
    status: str
    updated_at: int
    """Time of the courier's last accepted fix, epoch ms UTC."""


class NearbyCouriers(msgspec.Struct, frozen=True):
    couriers: list[NearbyCourier]


class ConsoleConfig(msgspec.Struct, frozen=True, kw_only=True):
    commerce_url: str | None
    """Where browsers reach commerce (login); None: same host as the console, ``commerce_port``."""
    commerce_port: int
    tile_url: str | None
    same_origin: bool = False
    """The console came through the gateway: commerce is on the console's own origin (no
    CORS), whatever ``commerce_url`` says."""
    """Optional raster tiles (``{z}/{x}/{y}``) under the map; None draws no tiles."""


class CellOutline(msgspec.Struct, frozen=True):
    cell: str
    boundary: list[tuple[float, float]]
    """Vertices as ``[lat, lng]``."""


class CellOutlines(msgspec.Struct, frozen=True):
    cells: list[CellOutline]


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


class TrailPoint(msgspec.Struct, frozen=True, kw_only=True):
    lat: float
    lng: float
    ts: int
    """Device time of the fix it was matched from, epoch ms UTC."""


class CourierTrail(msgspec.Struct, frozen=True, kw_only=True):
    """A courier's recent fixes matched to the roads (OSRM Match)."""

    courier_id: str
    snapped: TrailPoint
    """The newest matched position: where the courier is on the road."""
    trail: dict[str, object]
    """GeoJSON LineString of the matched positions, oldest first, ``[lng, lat]``."""
    points: int
    confidence: float
    """The matcher's confidence in the newest batch (0..1)."""
