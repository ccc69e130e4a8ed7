"""What a search asks for, checked; and the box around the customer that prefilters chefs.
Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

from geo.distance import EARTH_RADIUS_M

MAX_SERVICE_RADIUS_M = 100_000.0
"""A chef's largest service radius (``ChefProfileWrite.service_radius`` ≤ 100 km): no chef
farther than this from the customer can deliver there."""


class SearchRefused(ValueError):
    """The request cannot be searched as given (the message says why)."""


@dataclass(frozen=True, slots=True)
class Box:
    lat_lo: float
    lat_hi: float
    lng_lo: float
    lng_hi: float


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    dietary: tuple[str, ...]
    """Tags every dish must carry (lower case); a chef must have such a dish."""
    min_price_cents: int
    max_price_cents: int
    lat: float | None
    lng: float | None
    fuzzy: bool
    """Near-miss names count too: the query is plain words. A query using web-search
    syntax (quotes, ``or``, ``-word``) is taken literally, so a typo match never brings
    back what it excludes."""


def _plain(text: str) -> bool:
    words = text.lower().split()
    return '"' not in text and "or" not in words and not any(w.startswith("-") for w in words)


def search_query(text: str, *, dietary: str | None, min_price_cents: int | None,
                 max_price_cents: int | None, lat: float | None,
                 lng: float | None) -> SearchQuery:
    """Normalise a request's parameters; raise SearchRefused when they contradict."""
    text = " ".join(text.split())
    if not text:
        raise SearchRefused("q must contain a word")
    if (lat is None) != (lng is None):
        raise SearchRefused("give both lat and lng, or neither")
    if lat is not None and lng is not None and not (math.isfinite(lat) and math.isfinite(lng)):
        raise SearchRefused("lat and lng must be finite numbers")
    lo = 0 if min_price_cents is None else min_price_cents
    hi = 2**62 if max_price_cents is None else max_price_cents
    if lo > hi:
        raise SearchRefused("min_price_cents is above max_price_cents")
    tags = tuple(sorted({t.strip().lower() for t in (dietary or "").split(",") if t.strip()}))
    return SearchQuery(text=text, dietary=tags, min_price_cents=lo, max_price_cents=hi,
                       lat=lat, lng=lng, fuzzy=_plain(text))


def box_around(lat: float, lng: float, radius_m: float = MAX_SERVICE_RADIUS_M) -> Box:
    """A latitude/longitude box holding every point within ``radius_m`` of (lat, lng).

    The latitude half-height is the radius over the metres per degree. The longitude
    half-width is that over cos of the box's latitude nearest a pole (where a degree of
    longitude is shortest), so the box covers the whole circle. Near a pole, or where it
    would cross ±180°, it spans every longitude (a larger box is only a weaker prefilter).
    """
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    lat_lo, lat_hi = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_edge = math.cos(math.radians(max(abs(lat_lo), abs(lat_hi))))
    if cos_edge < 1e-6:
        return Box(lat_lo, lat_hi, -180.0, 180.0)
    dlng = dlat / cos_edge
    if lng - dlng < -180.0 or lng + dlng > 180.0:
        return Box(lat_lo, lat_hi, -180.0, 180.0)
    return Box(lat_lo, lat_hi, lng - dlng, lng + dlng)


__all__ = ["MAX_SERVICE_RADIUS_M", "Box", "SearchQuery", "SearchRefused", "box_around",
           "search_query"]
