"""Where a simulated courier is at a given moment of a leg (pure).

Without road data a leg is the straight line, travelled so that the courier arrives exactly
when geo's travel model says (haversine x circuity / vehicle speed): its ground speed along
the line is the vehicle's road speed / circuity, i.e. always below the vehicle's speed and
far below ingest's 70 m/s implausible-jump rule.

When core rides the roads (``ROADS``), a leg follows the road geometry core's
``GET /routing/route`` answers (`road_leg`). Given a random generator it is ridden as a
courier rides (`ride_schedule`): its own pace on the day (the route's duration x a factor
around 1), stopping at some junctions (a turn of the way), at a steady speed in between, so
a ride lasts about what the route says but not exactly, and not evenly. The fixes a device
sends carry GPS noise within their accuracy (`gps_jitter`).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
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
    schedule: tuple[tuple[float, float], ...] = ()
    """(seconds into the leg, metres along it) knots, both non-decreasing, from (0, 0) to
    (`duration_s`, `distance_m`): the courier moves at a steady speed between knots and
    stands where two knots share a distance (a stop). Empty: constant speed."""

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

    def along_m(self, elapsed_s: float) -> float:
        """Metres along the leg `elapsed_s` into it (clamped to its ends)."""
        total = self._cumulative_m()[-1]
        if self.duration_s <= 0:
            return total
        if len(self.schedule) < 2:
            return min(1.0, max(0.0, elapsed_s / self.duration_s)) * total
        times = [t for t, _ in self.schedule]
        i = bisect.bisect_right(times, elapsed_s)
        if i <= 0:
            return 0.0
        if i >= len(times):
            return min(total, self.schedule[-1][1])
        (t0, a0), (t1, a1) = self.schedule[i - 1], self.schedule[i]
        return min(total, a0 + (a1 - a0) * (elapsed_s - t0) / (t1 - t0))

    def speed_mps(self, elapsed_s: float) -> float:
        """Ground speed `elapsed_s` into the leg (0 while stopped, and after the end)."""
        if not 0 <= elapsed_s < self.duration_s:
            return 0.0
        if len(self.schedule) < 2:
            return self.road_speed_mps
        times = [t for t, _ in self.schedule]
        i = min(max(1, bisect.bisect_right(times, elapsed_s)), len(times) - 1)
        (t0, a0), (t1, a1) = self.schedule[i - 1], self.schedule[i]
        return 0.0 if t1 <= t0 else (a1 - a0) / (t1 - t0)

    def _segment(self, elapsed_s: float) -> tuple[Point, Point, float]:
        """The segment the courier is on `elapsed_s` into the leg, and how far along it."""
        pts, cum = self._points(), self._cumulative_m()
        along = self.along_m(elapsed_s)
        for i in range(1, len(pts)):
            if along <= cum[i] or i == len(pts) - 1:
                seg = cum[i] - cum[i - 1]
                return pts[i - 1], pts[i], 1.0 if seg <= 0 else (along - cum[i - 1]) / seg
        return pts[0], pts[-1], 1.0  # unreachable: a leg has two points at least

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


class RideNoise(msgspec.Struct, frozen=True, kw_only=True):
    """How a courier's ride differs from the route's even pace (finite defaults)."""

    pace_sd: float = 0.08
    """The ride takes the route's duration x a factor ~ N(1, pace_sd) ..."""
    pace_range: tuple[float, float] = (0.85, 1.2)
    """... clipped to this range."""
    turn_deg: float = 35.0
    """A change of direction at least this sharp is a junction ..."""
    junction_gap_m: float = 25.0
    """... unless it is closer than this to the previous one (one crossing, two vertices)."""
    stop_prob: float = 0.35
    """A junction where the courier stops (a light, give way) ..."""
    stop_s: tuple[float, float] = (2.0, 10.0)
    """... for this long."""
    max_stop_share: float = 0.3
    """Stops take at most this share of the ride (the rest is riding)."""


def _bearing(a: Point, b: Point) -> float:
    dx = (b.lng - a.lng) * math.cos(math.radians(a.lat))
    return math.degrees(math.atan2(dx, b.lat - a.lat))


def junctions_m(path: tuple[Point, ...], turn_deg: float, gap_m: float) -> list[float]:
    """Metres along `path` of its junctions: vertices where the way turns by at least
    `turn_deg`, at least `gap_m` after the previous junction (and from either end)."""
    cum = [0.0]
    for a, b in itertools.pairwise(path):
        cum.append(cum[-1] + haversine_m(a.lat, a.lng, b.lat, b.lng))
    out: list[float] = []
    for i in range(1, len(path) - 1):
        if cum[i] - cum[i - 1] < 0.5 or cum[i + 1] - cum[i] < 0.5:
            continue  # a duplicate vertex has no direction
        turn = abs((_bearing(path[i], path[i + 1]) - _bearing(path[i - 1], path[i]) + 180)
                   % 360 - 180)
        last = out[-1] if out else 0.0
        if turn >= turn_deg and cum[i] - last >= gap_m and cum[-1] - cum[i] >= gap_m:
            out.append(cum[i])
    return out


def ride_schedule(distance_m: float, duration_s: float, junctions: list[float],
                  rng: random.Random, noise: RideNoise) -> tuple[tuple[float, float], ...]:
    """Knots (s, m) of a ride of `distance_m` that the route times at `duration_s`: the
    courier's pace on the day, stops at some of the `junctions` (metres along), a steady
    speed in between. Stops are scaled down to `max_stop_share` of the ride, so the
    riding speed stays within 1 / (1 - share) of the route's average speed."""
    if distance_m <= 0 or duration_s <= 0:
        return ()
    lo, hi = noise.pace_range
    total_s = duration_s * min(hi, max(lo, rng.gauss(1.0, noise.pace_sd)))
    stops = [(at, rng.uniform(*noise.stop_s)) for at in junctions
             if rng.random() < noise.stop_prob]
    stopped = sum(s for _, s in stops)
    if stopped > noise.max_stop_share * total_s:
        k = noise.max_stop_share * total_s / stopped
        stops = [(at, s * k) for at, s in stops]
        stopped = noise.max_stop_share * total_s
    speed = distance_m / (total_s - stopped)
    knots = [(0.0, 0.0)]
    for at, wait in stops:
        t = knots[-1][0] + (at - knots[-1][1]) / speed
        knots += [(t, at), (t + wait, at)]
    knots.append((total_s, distance_m))
    return tuple(knots)


def gps_jitter(p: Point, rng: random.Random, accuracy_m: float) -> Point:
    """Where a device with this accuracy reports `p`: an error ~ N(0, accuracy / 2) per
    axis, never farther than `accuracy_m` (the radius the fix claims)."""
    north, east = rng.gauss(0.0, accuracy_m / 2), rng.gauss(0.0, accuracy_m / 2)
    norm = math.hypot(north, east)
    if norm > accuracy_m:
        north, east = north * accuracy_m / norm, east * accuracy_m / norm
    lat = p.lat + north / 111_320.0
    return Point(lat, p.lng + east / (111_320.0 * math.cos(math.radians(p.lat))))


def road_leg(start: Point, end: Point, route: dict[str, Any],
             speed_factor: float = 1.0, *, rng: random.Random | None = None,
             noise: RideNoise | None = None, end_on_road: bool = False) -> Leg:
    """A leg along the geometry of a ``GET /routing/route`` answer (its GeoJSON
    LineString, [lng, lat] positions from `start` to `end`), taking its ``duration_s``
    (/ `speed_factor`): at a constant speed, or with `rng` as a courier rides it
    (`ride_schedule`). `end_on_road`: the leg stops where the route leaves the road (a
    cruise to a random spot ends on the street, not in a courtyard or the sea)."""
    if speed_factor <= 0:
        raise ValueError("speed_factor must be positive")
    path = tuple(Point(float(lat), float(lng)) for lng, lat in route["geometry"]["coordinates"])
    if end_on_road and len(path) > 2:
        path = path[:-1]
    if len(path) < 2:
        path = (start, end)
    duration = float(route["duration_s"]) / speed_factor
    leg = Leg(start=path[0], end=path[-1], duration_s=duration, path=path,
              road_speed_mps=0.0)
    distance_m = leg.distance_m
    noise = noise or RideNoise()
    if rng is None:
        return msgspec.structs.replace(
            leg, road_speed_mps=distance_m / duration if duration > 0 else 0.0)
    knots = ride_schedule(distance_m, duration, junctions_m(path, noise.turn_deg,
                                                            noise.junction_gap_m),
                          rng, noise)
    if not knots:
        return leg
    ridden = knots[-1][0] - sum(t1 - t0 for (t0, a0), (t1, a1) in itertools.pairwise(knots)
                                if a1 == a0)
    return msgspec.structs.replace(leg, duration_s=knots[-1][0], schedule=knots,
                                   road_speed_mps=distance_m / ridden if ridden > 0 else 0.0)
