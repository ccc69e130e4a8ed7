"""POST /api/v1/routing/optimize on the wire: couriers and orders in lat/lng, routes out."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MAX_TIME_LIMIT_S = 10.0
"""Largest search budget one request may ask for."""

Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lng = Annotated[float, msgspec.Meta(ge=-180, le=180)]


class Point(msgspec.Struct, frozen=True):
    lat: Lat
    lng: Lng


class CourierIn(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lat: Lat
    lng: Lng
    vehicle: Literal["bike", "scooter", "car"] = "bike"
    capacity: Annotated[int, msgspec.Meta(ge=1, le=50)] = 4


class OrderIn(msgspec.Struct, frozen=True, kw_only=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    pickup: Point
    dropoff: Point
    ready_at: int | None = None
    """Epoch ms UTC the food is ready (pickup not before); default now."""
    deliver_by: int | None = None
    """Epoch ms UTC the drop-off must happen by; default no deadline."""


class OptimizeRequest(msgspec.Struct, frozen=True, kw_only=True):
    couriers: list[CourierIn]
    orders: list[OrderIn]
    time_limit_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_TIME_LIMIT_S)] = 1.0
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Seeds the solver's random order of tasks (numpy needs it non-negative)."""


class StopOut(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    kind: Literal["pickup", "dropoff"]
    lat: float
    lng: float
    eta: int
    """Epoch ms UTC of arrival."""
    eta_s: int
    """Seconds from the request to arrival."""
    wait_s: int
    """Seconds waiting at the stop before service can start (food not ready yet)."""


class RouteOut(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    stops: list[StopOut]
    travel_s: int


class OptimizeResponse(msgspec.Struct, frozen=True, kw_only=True):
    routes: list[RouteOut]
    couriers_used: int
    solve_ms: int


class LineString(msgspec.Struct, frozen=True, kw_only=True):
    """A GeoJSON LineString: (lng, lat) positions."""

    type: Literal["LineString"] = "LineString"
    coordinates: list[tuple[float, float]]


class RouteLeg(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/v1/routing/route: one leg from a point to another."""

    duration_s: float
    distance_m: float
    geometry: LineString
    """Along the roads (starting and ending at the points asked); with the straight-line
    model, the straight line."""
    vehicle: Literal["bike", "scooter", "car"]
    model: Literal["roads", "straight-line"]
    """Which travel model answered (``ROADS`` set or not)."""
