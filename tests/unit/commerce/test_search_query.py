"""Search parameters and the customer's prefilter box, without a database."""

from __future__ import annotations

import math
import random

import pytest

from api.commerce.search.query import (
    MAX_SERVICE_RADIUS_M,
    SearchRefused,
    box_around,
    search_query,
)
from geo.distance import haversine_m


def test_box_holds_every_point_within_the_radius() -> None:
    """Points at the radius in every direction, at many latitudes, lie inside the box: the
    prefilter never drops a chef that delivers there (seeded)."""
    rng = random.Random(7)
    for _ in range(300):
        lat, lng = rng.uniform(-85, 85), rng.uniform(-179, 179)
        box = box_around(lat, lng)
        for bearing in range(0, 360, 15):
            # A point ~the radius away along the bearing (small-step walk on the sphere).
            d = MAX_SERVICE_RADIUS_M * 0.999
            b = math.radians(bearing)
            p1, l1 = math.radians(lat), math.radians(lng)
            ang = d / 6_371_008.8
            p2 = math.asin(math.sin(p1) * math.cos(ang)
                           + math.cos(p1) * math.sin(ang) * math.cos(b))
            l2 = l1 + math.atan2(math.sin(b) * math.sin(ang) * math.cos(p1),
                                 math.cos(ang) - math.sin(p1) * math.sin(p2))
            plat, plng = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
            assert haversine_m(lat, lng, plat, plng) <= MAX_SERVICE_RADIUS_M
            assert box.lat_lo <= plat <= box.lat_hi
            assert box.lng_lo <= plng <= box.lng_hi, (lat, lng, bearing)


def test_box_spans_all_longitudes_at_the_antimeridian_and_poles() -> None:
    """Where the box would wrap around ±180° or reach a pole it covers every longitude."""
    assert (box_around(10.0, 179.9).lng_lo, box_around(10.0, 179.9).lng_hi) == (-180.0, 180.0)
    assert (box_around(89.9, 0.0).lng_lo, box_around(89.9, 0.0).lng_hi) == (-180.0, 180.0)
    box = box_around(48.85, 2.35)
    assert 0.85 < box.lat_hi - 48.85 < 0.95  # 100 km ≈ 0.9° of latitude


def test_parameters_are_normalised() -> None:
    """Whitespace is collapsed, tags lower-cased and de-duplicated; plain words are fuzzy,
    web-search syntax is literal."""
    q = search_query("  butter   chicken ", dietary="Vegan, halal,,vegan", min_price_cents=None,
                     max_price_cents=500, lat=None, lng=None)
    assert q.text == "butter chicken"
    assert q.dietary == ("halal", "vegan")
    assert (q.min_price_cents, q.max_price_cents) == (0, 500)
    assert q.fuzzy
    for literal in ('"butter chicken"', "chicken -butter", "dal or salad"):
        assert not search_query(literal, dietary=None, min_price_cents=None,
                                max_price_cents=None, lat=None, lng=None).fuzzy


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"text": "  "}, "word"),
    ({"lat": 1.0}, "both"),
    ({"lat": math.nan, "lng": 1.0}, "finite"),
    ({"min_price_cents": 10, "max_price_cents": 9}, "above"),
])
def test_contradictions_are_refused(kwargs: dict[str, object], why: str) -> None:
    args: dict[str, object] = {"text": "dal", "dietary": None, "min_price_cents": None,
                               "max_price_cents": None, "lat": None, "lng": None, **kwargs}
    text = args.pop("text")
    with pytest.raises(SearchRefused, match=why):
        search_query(text, **args)  # type: ignore[arg-type]
