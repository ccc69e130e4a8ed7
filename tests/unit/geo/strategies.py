"""Shared hypothesis settings and generators for the geo specifications."""

from __future__ import annotations

import math

from hypothesis import settings

from geo.distance import EARTH_RADIUS_M


def seeded(max_examples: int) -> settings:
    """Deterministic runs (same examples every time), no example database on disk."""
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None)


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m` / `east_m` from (lat, lng) on a local tangent plane, lng wrapped."""
    new_lat = lat + math.degrees(north_m / EARTH_RADIUS_M)
    new_lat = max(-90.0, min(90.0, new_lat))
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    new_lng = lng + math.degrees(east_m / (EARTH_RADIUS_M * cos_lat))
    return new_lat, (new_lng + 180.0) % 360.0 - 180.0
