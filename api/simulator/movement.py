"""Where a simulated courier is at a given moment of a leg (pure).

There is no road network, so a leg is the straight line, travelled so that the courier arrives
exactly when geo's travel model says (haversine x circuity / vehicle speed): its ground speed
along the line is the vehicle's road speed / circuity, i.e. always below the vehicle's speed
and far below ingest's 70 m/s implausible-jump rule.
"""

from __future__ import annotations

import math

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

    @property
    def distance_m(self) -> float:
        return haversine_m(self.start.lat, self.start.lng, self.end.lat, self.end.lng)

    def position(self, elapsed_s: float) -> Point:
        """Position `elapsed_s` into the leg (clamped to its ends)."""
        if self.duration_s <= 0:
            return self.end
        f = min(1.0, max(0.0, elapsed_s / self.duration_s))
        return Point(self.start.lat + (self.end.lat - self.start.lat) * f,
                     self.start.lng + (self.end.lng - self.start.lng) * f)

    def heading_deg(self) -> float:
        """Initial bearing, degrees clockwise from north, in [0, 360)."""
        lat1, lat2 = math.radians(self.start.lat), math.radians(self.end.lat)
        dlng = math.radians(self.end.lng - self.start.lng)
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
