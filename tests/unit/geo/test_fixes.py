"""Specification of GPS fix decoding and validation (docs/gps.md)."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from geo.distance import haversine_m
from geo.fixes import (
    MAX_AGE_MS,
    MAX_FUTURE_MS,
    Fix,
    LastFix,
    RejectReason,
    decode_fix,
    decode_fixes,
    validate_batch,
    validate_fix,
)
from tests.unit.geo.strategies import seeded

NOW_MS = 1_750_000_000_000
R = RejectReason


def fix(lat: float = 37.77, lng: float = -122.42, ts: int = NOW_MS, **kw: float) -> Fix:
    return Fix(lat=lat, lng=lng, ts=ts, **kw)


# -- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"lat": 1.5, "lng": 2, "ts": 3}', Fix(lat=1.5, lng=2.0, ts=3)),
        (
            b'{"lat":1,"lng":2,"ts":3,"accuracy":4.5,"speed":5,"heading":6,"courier_id":"c1"}',
            Fix(lat=1.0, lng=2.0, ts=3, accuracy_m=4.5, speed_mps=5.0, heading_deg=6.0),
        ),
        (b'{"lat":1,"lng":2,"ts":3,"speed":null}', Fix(lat=1.0, lng=2.0, ts=3)),
        (b'{"lng": 2, "ts": 3}', R.MISSING_FIELD),
        (b'{"lat": 1, "lng": 2}', R.MISSING_FIELD),
        (b'{"lat": "1", "lng": 2, "ts": 3}', R.BAD_TYPE),
        (b'{"lat": 1, "lng": 2, "ts": 3.5}', R.BAD_TYPE),
        (b'{"lat": 1, "lng": 2, "ts": true}', R.BAD_TYPE),
        (b'{"lat": null, "lng": 2, "ts": 3}', R.BAD_TYPE),
        (b'{"lat": 1, "lng": 2, "ts": 3, "speed": "fast"}', R.BAD_TYPE),
        (b'{"lat": 1, "lng": 2, "ts": 3', R.MALFORMED),
        (b'{"lat": NaN, "lng": 2, "ts": 3}', R.MALFORMED),
        (b"[1, 2, 3]", R.MALFORMED),
        (b'"hello"', R.MALFORMED),
        (b"", R.MALFORMED),
    ],
)
def test_decode_fix_table(payload: bytes, expected: Fix | RejectReason) -> None:
    """Wire JSON decodes to a Fix; wrong types, missing fields and non-objects become a
    reason code, never an exception."""
    assert decode_fix(payload) == expected


def test_fix_wire_names_round_trip() -> None:
    """Optional fields travel as `accuracy`/`speed`/`heading`; absent ones are not encoded."""
    wire = msgspec.json.encode(fix(speed_mps=3.5))
    assert b'"speed":3.5' in wire
    assert b"accuracy" not in wire
    assert decode_fix(wire) == fix(speed_mps=3.5)


def test_decode_fixes_isolates_bad_elements() -> None:
    """In a batch, each bad element is reported at its index; the good ones still decode."""
    decoded = decode_fixes(b'[{"lat":1,"lng":2,"ts":3}, 5, {"lat":1}, {"lat":1,"lng":"x","ts":3}]')
    assert decoded == [Fix(lat=1.0, lng=2.0, ts=3), R.MALFORMED, R.MISSING_FIELD, R.BAD_TYPE]


@pytest.mark.parametrize("payload", [b'{"lat": 1}', b"not json", b"7"])
def test_decode_fixes_requires_an_array(payload: bytes) -> None:
    """A batch payload that is not a JSON array is malformed as a whole."""
    assert decode_fixes(payload) == R.MALFORMED


# -- single-fix rules, with their boundaries ---------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (fix(lat=90.0, lng=180.0), None),
        (fix(lat=-90.0, lng=-180.0), None),
        (fix(lat=90.000001), R.BAD_COORDINATES),
        (fix(lat=-90.000001), R.BAD_COORDINATES),
        (fix(lng=180.000001), R.BAD_COORDINATES),
        (fix(lng=-180.000001), R.BAD_COORDINATES),
        (fix(lat=math.nan), R.BAD_COORDINATES),
        (fix(lng=math.nan), R.BAD_COORDINATES),
        (fix(lat=math.inf), R.BAD_COORDINATES),
        (fix(lng=-math.inf), R.BAD_COORDINATES),
        (fix(lat=0.0, lng=0.0), R.NULL_ISLAND),
        (fix(lat=-0.0, lng=0.0), R.NULL_ISLAND),
        (fix(lat=0.0, lng=0.000001), None),
        (fix(lat=0.000001, lng=0.0), None),
    ],
)
def test_coordinate_rules(candidate: Fix, expected: RejectReason | None) -> None:
    """lat in [-90, 90] and lng in [-180, 180] inclusive, finite; exactly (0, 0) is refused
    as an unset location, anything next to it is a real place."""
    assert validate_fix(candidate, None, NOW_MS) == expected


@pytest.mark.parametrize(
    ("ts_ms", "expected"),
    [
        (NOW_MS + 30_000, None),  # exactly 30 s ahead: tolerated clock skew
        (NOW_MS + 30_001, R.FUTURE_TS),  # 30.001 s ahead
        (NOW_MS - 600_000, None),  # exactly 10 min old
        (NOW_MS - 600_001, R.STALE_TS),  # 10 min + 1 ms
        (NOW_MS, None),
    ],
)
def test_timestamp_window(ts_ms: int, expected: RejectReason | None) -> None:
    """A fix may be at most 30 s in the future and at most 10 min old, both inclusive."""
    assert validate_fix(fix(ts=ts_ms), None, NOW_MS) == expected


def test_timestamp_window_is_configurable() -> None:
    """The window limits are named parameters, defaulting to 30 s and 10 min."""
    assert (MAX_FUTURE_MS, MAX_AGE_MS) == (30_000, 600_000)
    assert validate_fix(fix(ts=NOW_MS + 5_001), None, NOW_MS, max_future_ms=5_000) == (R.FUTURE_TS)
    assert validate_fix(fix(ts=NOW_MS - 61_000), None, NOW_MS, max_age_ms=60_000) == R.STALE_TS


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"accuracy_m": 0.0}, None),
        ({"accuracy_m": 1e4}, None),
        ({"accuracy_m": -0.001}, R.BAD_ACCURACY),
        ({"accuracy_m": math.nan}, R.BAD_ACCURACY),
        ({"accuracy_m": math.inf}, R.BAD_ACCURACY),
        ({"speed_mps": 0.0}, None),
        ({"speed_mps": 500.0}, None),  # the device's own speed is informative, not a rule
        ({"speed_mps": -0.1}, R.BAD_SPEED),
        ({"speed_mps": math.inf}, R.BAD_SPEED),
        ({"speed_mps": math.nan}, R.BAD_SPEED),
        ({"heading_deg": 0.0}, None),
        ({"heading_deg": 359.999}, None),
        ({"heading_deg": 360.0}, R.BAD_HEADING),
        ({"heading_deg": -0.001}, R.BAD_HEADING),
        ({"heading_deg": math.nan}, R.BAD_HEADING),
    ],
)
def test_optional_field_ranges(extra: dict[str, Any], expected: RejectReason | None) -> None:
    """accuracy >= 0 and speed >= 0, both finite; heading in [0, 360)."""
    assert validate_fix(fix(**extra), None, NOW_MS) == expected


def test_ts_must_be_strictly_newer_than_last_accepted() -> None:
    """A fix not newer than the courier's last accepted one (duplicate or reordered) is
    refused; one millisecond newer is fine."""
    last = LastFix(lat=37.77, lng=-122.42, ts_ms=NOW_MS - 1_000)
    assert validate_fix(fix(ts=NOW_MS - 1_000), last, NOW_MS) == R.NOT_NEWER
    assert validate_fix(fix(ts=NOW_MS - 2_000), last, NOW_MS) == R.NOT_NEWER
    assert validate_fix(fix(ts=NOW_MS - 999), last, NOW_MS) is None


def test_implausible_jump_boundary() -> None:
    """The speed implied by the last accepted fix (haversine / Δt) may be 70 m/s, not more."""
    last = LastFix(lat=37.77, lng=-122.42, ts_ms=NOW_MS - 60_000)
    new_lat, new_lng = 37.77, -122.40
    dist_m = haversine_m(last.lat, last.lng, new_lat, new_lng)
    dt_ok_ms = math.ceil(dist_m * 1000 / 70.0)  # speed <= 70 m/s
    assert dist_m / (dt_ok_ms / 1000) <= 70.0 < dist_m / ((dt_ok_ms - 1) / 1000)
    at_limit = fix(lat=new_lat, lng=new_lng, ts=last.ts_ms + dt_ok_ms)
    too_fast = fix(lat=new_lat, lng=new_lng, ts=last.ts_ms + dt_ok_ms - 1)
    assert validate_fix(at_limit, last, NOW_MS) is None
    assert validate_fix(too_fast, last, NOW_MS) == R.IMPLAUSIBLE_JUMP
    assert validate_fix(too_fast, last, NOW_MS, max_speed_mps=80.0) is None


@given(lat=st.floats(-89.9, 89.9), lng=st.floats(-179.9, 179.9),
       dlat=st.floats(-0.02, 0.02), dlng=st.floats(-0.02, 0.02),
       dt_ms=st.integers(1, 60_000))
def test_jump_verdict_equals_the_haversine_rule(lat: float, lng: float, dlat: float,
                                                dlng: float, dt_ms: int) -> None:
    """Validation skips the haversine when a cheap upper bound of the distance is clearly
    within the limit; the verdict is still exactly the haversine rule's, at any latitude."""
    last = LastFix(lat=lat, lng=lng, ts_ms=NOW_MS - 60_000)
    new_lat, new_lng = lat + dlat, lng + dlng
    assume((new_lat, new_lng) != (0.0, 0.0))  # null island has its own reason
    got = validate_fix(fix(lat=new_lat, lng=new_lng, ts=last.ts_ms + dt_ms), last, NOW_MS)
    too_fast = haversine_m(lat, lng, new_lat, new_lng) * 1000 > 70.0 * dt_ms
    assert got == (R.IMPLAUSIBLE_JUMP if too_fast else None)


def test_jump_across_the_antimeridian_is_measured_the_short_way() -> None:
    """179.999° to -179.999° is ~220 m, not a trip around the world."""
    last = LastFix(lat=0.5, lng=179.999, ts_ms=NOW_MS - 10_000)
    assert validate_fix(fix(lat=0.5, lng=-179.999), last, NOW_MS) is None


def test_first_fix_has_no_continuity_rules() -> None:
    """Without a last accepted fix, only the stand-alone rules apply."""
    assert validate_fix(fix(lat=-33.9, lng=151.2), None, NOW_MS) is None


@seeded(200)
@given(
    lat=st.floats(allow_nan=True, allow_infinity=True),
    lng=st.floats(allow_nan=True, allow_infinity=True),
    dt_ms=st.integers(-2_000_000, 2_000_000),
)
def test_validate_never_raises_and_accepts_only_sane_fixes(
    lat: float, lng: float, dt_ms: int
) -> None:
    """Any float input yields a verdict, and an accepted fix is in range and in the window."""
    verdict = validate_fix(fix(lat=lat, lng=lng, ts=NOW_MS + dt_ms), None, NOW_MS)
    if verdict is None:
        assert -90 <= lat <= 90
        assert -180 <= lng <= 180
        assert (lat, lng) != (0.0, 0.0)
        assert -MAX_AGE_MS <= dt_ms <= MAX_FUTURE_MS


# -- batches ------------------------------------------------------------------------------------


def test_batch_is_validated_in_ts_order_against_a_running_last() -> None:
    """Fixes are checked oldest first, each against the last accepted one; rejections keep
    their input index and the returned `last` is the newest accepted fix."""
    last = LastFix(lat=37.77, lng=-122.42, ts_ms=NOW_MS - 50_000)
    items: list[Fix | RejectReason] = [
        fix(ts=NOW_MS - 10_000, lat=37.7701),  # 0: accepted (second in ts order)
        fix(ts=NOW_MS - 20_000, lat=37.7700),  # 1: accepted (first)
        fix(ts=NOW_MS - 10_000, lat=37.7702),  # 2: same ts as 0 -> not newer
        R.BAD_TYPE,  # 3: failed decoding upstream
        fix(ts=NOW_MS - 5_000, lat=38.5),  # 4: ~80 km in 5 s
        fix(ts=NOW_MS - 60_000),  # 5: older than last
        fix(ts=NOW_MS - 1_000, lat=37.7703),  # 6: accepted, compared with 0 not with 4
    ]
    verdict = validate_batch(items, last, NOW_MS)
    assert [f.ts for f in verdict.accepted] == [NOW_MS - 20_000, NOW_MS - 10_000, NOW_MS - 1_000]
    assert verdict.rejected == [
        (2, R.NOT_NEWER),
        (3, R.BAD_TYPE),
        (4, R.IMPLAUSIBLE_JUMP),
        (5, R.NOT_NEWER),
    ]
    assert verdict.last == LastFix(lat=37.7703, lng=-122.42, ts_ms=NOW_MS - 1_000)


def test_batch_with_nothing_accepted_keeps_last() -> None:
    """If every fix is refused, the running last accepted fix is unchanged."""
    last = LastFix(lat=1.0, lng=1.0, ts_ms=NOW_MS)
    verdict = validate_batch([fix(lat=0.0, lng=0.0)], last, NOW_MS)
    assert verdict.accepted == []
    assert verdict.rejected == [(0, R.NULL_ISLAND)]
    assert verdict.last is last


def test_decode_then_validate_composes() -> None:
    """`decode_fixes` output feeds `validate_batch` directly."""
    decoded = decode_fixes(f'[{{"lat":37.77,"lng":-122.42,"ts":{NOW_MS}}}, {{"lat":"x"}}]'.encode())
    assert not isinstance(decoded, RejectReason)
    verdict = validate_batch(decoded, None, NOW_MS)
    assert len(verdict.accepted) == 1
    assert verdict.rejected == [(1, R.BAD_TYPE)]


def test_json_number_beyond_float_range_is_bad_coordinates() -> None:
    """JSON has no NaN/inf literal; a coordinate like 1e400 decodes out of range and is
    rejected as bad coordinates (not a type error), for lat and lng alike."""
    from geo.fixes import RejectReason, decode_fix

    assert decode_fix(b'{"lat": 1e400, "lng": 1.0, "ts": 1}') is RejectReason.BAD_COORDINATES
    assert decode_fix(b'{"lat": 1.0, "lng": -1e400, "ts": 1}') is RejectReason.BAD_COORDINATES
    assert decode_fix(b'{"lat": 1.0, "lng": 1.0, "ts": 1e400}') is RejectReason.BAD_TYPE
