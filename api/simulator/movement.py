"""Where a simulated courier is at a given moment of a leg (pure).

Without road data a leg is the straight line, travelled so that the courier arrives exactly
when geo's travel model says (haversine x circuity / vehicle speed): its ground speed along
the line is the vehicle's road speed / circuity, i.e. always below the vehicle's speed and
far below ingest's 70 m/s implausible-jump rule.

When core rides the roads (``ROADS``), a leg follows the road geometry core's
``GET /routing/route`` answers (`road_leg`), at a constant speed along it so that the
courier arrives after the route's duration.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec

from api.simulator.city import Point
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel, Vehicle


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    start: Point
    end: Point
    duration_s: float
    """Travel time by the model (already divided by any speed factor)."""
    road_speed_mps: float
    """The vehicle's speed on the road (what the device reports as ``speed``)."""
    path: tuple[Point, ...] = ()
    """Along the roads: the points from `start` to `end` (both included); empty: the
    straight line."""

    def _points(self) -> tuple[Point, ...]:
        return self.path if len(self.path) >= 2 else (self.start, self.end)

    def _cumulative_m(self) -> list[float]:
        pts, out = self._points(), [0.0]
        for a, b in itertools.pairwise(pts):
            out.append(out[-1] + haversine_m(a.lat, a.lng, b.lat, b.lng))
        return out

    @property
    def distance_m(self) -> float:
        return self._cumulative_m()[-1]

    def _segment(self, elapsed_s: float) -> tuple[Point, Point, float]:
        """The segment the courier is on `elapsed_s` into the leg, and how far along it."""
        pts, cum = self._points(), self._cumulative_m()
        f = 1.0 if self.duration_s <= 0 else min(1.0, max(0.0, elapsed_s / self.duration_s))
        along = f * cum[-1]
        for i in range(1, len(pts)):
            if along <= cum[i] or i == len(pts) - 1:
                seg = cum[i] - cum[i - 1]
                return pts[i - 1], pts[i], 1.0 if seg <= 0 else (along - cum[i - 1]) / seg
        return pts[0], pts[-1], f  # unreachable: a leg has two points at least

    def position(self, elapsed_s: float) -> Point:
        """Position `elapsed_s` into the leg (clamped to its ends)."""
        if self.duration_s <= 0:
            return self.end
        a, b, f = self._segment(elapsed_s)
        return Point(a.lat + (b.lat - a.lat) * f, a.lng + (b.lng - a.lng) * f)

    def heading_deg(self, elapsed_s: float = 0.0) -> float:
        """Bearing of the way `elapsed_s` into the leg, degrees clockwise from north, in
        [0, 360)."""
        a, b, _ = self._segment(elapsed_s)
        lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
        dlng = math.radians(b.lng - a.lng)
        y = math.sin(dlng) * math.cos(lat2)
        x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlng)
        return math.degrees(math.atan2(y, x)) % 360.0


def plan_leg(start: Point, end: Point, vehicle: Vehicle, model: HaversineTravelModel,
             speed_factor: float = 1.0) -> Leg:
    """A leg from `start` to `end` taking the model's travel time (/ `speed_factor`).

    `speed_factor` > 1 only shortens tests; the KPI runs use 1.
    """
    if speed_factor <= 0:
        raise ValueError("speed_factor must be positive")
    duration = model.travel_s(start.lat, start.lng, end.lat, end.lng, vehicle) / speed_factor
    return Leg(start=start, end=end, duration_s=duration,
               road_speed_mps=model.speeds_mps[vehicle] * speed_factor)


def road_leg(start: Point, end: Point, route: dict[str, Any],
             speed_factor: float = 1.0) -> Leg:
    """A leg along the geometry of a ``GET /routing/route`` answer (its GeoJSON
    LineString, [lng, lat] positions from `start` to `end`), taking its ``duration_s``
    (/ `speed_factor`)."""
    if speed_factor <= 0:
        raise ValueError("speed_factor must be positive")
    path = tuple(Point(float(lat), float(lng)) for lng, lat in route["geometry"]["coordinates"])
    if len(path) < 2:
        path = (start, end)
    duration = float(route["duration_s"]) / speed_factor
    distance_m = float(route["distance_m"])
    return Leg(start=path[0], end=path[-1], duration_s=duration, path=path,
               road_speed_mps=distance_m / duration if duration > 0 else 0.0)
