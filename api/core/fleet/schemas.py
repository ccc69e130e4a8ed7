"""What the fleet console reads: couriers and chefs near a point, hexagon outlines, an
order's dispatch timeline, and where the console logs in."""

from __future__ import annotations

import msgspec

from dispatch.reposition import RepositionHint


class NearbyCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    """The member's id: a courier's, or a chef's in the chefs' search."""
    lat: float
    lng: float
    distance_m: float
    status: str
    updated_at: int
    """Time of the courier's last accepted fix, epoch ms UTC."""
    name: str = ""
    """The courier's display name ("" when core has not learnt it: show the id)."""


class NearbyCouriers(msgspec.Struct, frozen=True):
    couriers: list[NearbyCourier]


class ConsoleConfig(msgspec.Struct, frozen=True, kw_only=True):
    commerce_url: str | None
    """Where browsers reach commerce (login); None: same host as the console, ``commerce_port``."""
    commerce_port: int
    tile_url: str | None
    """Optional raster tiles (``{z}/{x}/{y}``) under the map; None draws no tiles."""
    same_origin: bool = False
    """The console came through the gateway: commerce is on the console's own origin (no
    CORS), whatever ``commerce_url`` says."""
    streets_url: str | None = None
    """Vector tiles (``{z}/{x}/{y}``, layer ``speeds``) of the road engine's streets when core
    has road data (``ROADS``); None without."""
    streets_bounds: tuple[float, float, float, float] | None = None
    """Where those streets are: ``[min_lng, min_lat, max_lng, max_lat]``."""


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
    courier_name: str = ""
    """The courier's display name ("" when unknown: show the id)."""
    ready_at: int | None = None
    """When the food is ready (epoch ms): the kitchen's mark once made, else the time
    dispatch expects (the declared or, with DISPATCH_PREP_PREDICTION, predicted one)."""
    food_ready: bool = False
    """Whether the kitchen marked the food ready (``ready_at`` is then that mark)."""


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


class RepositionHints(msgspec.Struct, frozen=True, kw_only=True):
    """Every idle courier's repositioning hint (`dispatch.reposition`), by courier id."""

    enabled: bool
    """`DISPATCH_REPOSITION_HINTS`; off: no hints."""
    hints: list[RepositionHint]
    demand: dict[str, float]
    """Expected orders per cell over the hints' horizon (the prediction behind them)."""


class CourierHint(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's own repositioning hint; null when it has none."""

    hint: RepositionHint | None
