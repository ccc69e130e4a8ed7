"""GPS fixes: the wire model, a decoder that never raises, and pure validation rules.

Every rejection is a value (`RejectReason`), never an exception: the ingest path counts and
drops bad fixes and keeps going.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Final

import msgspec

from geo.distance import EARTH_RADIUS_M, haversine_m

MAX_FUTURE_MS: Final = 30_000  # device clocks run ahead; more than this is a broken clock
MAX_AGE_MS: Final = 600_000  # older fixes are useless for dispatch (a 10-minute-old position)
_M_PER_DEG_1000: Final = EARTH_RADIUS_M * math.pi / 180 * 1000.0  # mm per degree of arc
MAX_SPEED_MPS: Final = 70.0  # 252 km/h: faster than any delivery vehicle, so a GPS glitch


class RejectReason(StrEnum):
    """Why a fix was refused; stable codes for metrics and client errors."""

    MALFORMED = "malformed"  # not JSON, or not a JSON object / array where one is required
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_COORDINATES = "bad_coordinates"  # out of range, NaN or infinite
    NULL_ISLAND = "null_island"  # exactly (0, 0): an unset location, not a place
    FUTURE_TS = "future_ts"
    STALE_TS = "stale_ts"
    BAD_ACCURACY = "bad_accuracy"
    BAD_SPEED = "bad_speed"
    BAD_HEADING = "bad_heading"
    NOT_NEWER = "not_newer"  # ts <= the courier's last accepted fix (duplicate or reordered)
    IMPLAUSIBLE_JUMP = "implausible_jump"


class Fix(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One GPS fix as a courier device sends it (docs/architecture.md, the GPS flow).

    Wire names are those of the device protocol: ``{lat, lng, ts, accuracy?, speed?,
    heading?}``; unknown fields (such as ``courier_id``) are ignored.

    Attributes:
        lat, lng: degrees (WGS84).
        ts: epoch milliseconds, UTC, as stamped by the device.
        accuracy_m: horizontal accuracy radius, metres (wire ``accuracy``).
        speed_mps: ground speed, m/s (wire ``speed``).
        heading_deg: course over ground, degrees clockwise from north, [0, 360) (wire
            ``heading``).
    """

    lat: float
    lng: float
    ts: int
    accuracy_m: float | None = msgspec.field(default=None, name="accuracy")
    speed_mps: float | None = msgspec.field(default=None, name="speed")
    heading_deg: float | None = msgspec.field(default=None, name="heading")


class LastFix(msgspec.Struct, frozen=True, kw_only=True):
    """The part of a courier's last accepted fix that validation compares against."""

    lat: float
    lng: float
    ts_ms: int

    @classmethod
    def of(cls, fix: Fix) -> LastFix:
        return cls(lat=fix.lat, lng=fix.lng, ts_ms=fix.ts)


class BatchVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of validating a batch of fixes for one courier.

    Attributes:
        accepted: accepted fixes in ts order.
        rejected: (index in the input, reason), sorted by index.
        last: the courier's last accepted fix after the batch (unchanged if none accepted).
    """

    accepted: list[Fix]
    rejected: list[tuple[int, RejectReason]]
    last: LastFix | None


_fix_decoder: Final = msgspec.json.Decoder(Fix)
_raw_list_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_fix_list_decoder: Final = msgspec.json.Decoder(list[Fix])


def decode_fix(data: bytes | str | msgspec.Raw) -> Fix | RejectReason:
    """Decode one JSON fix; wrong types and missing fields become a `RejectReason`."""
    try:
        return _fix_decoder.decode(data)
    except msgspec.ValidationError as exc:
        return _reason_of(exc)
    except msgspec.DecodeError:
        return RejectReason.MALFORMED


def decode_fixes(data: bytes | str | msgspec.Raw) -> list[Fix | RejectReason] | RejectReason:
    """Decode a JSON array of fixes element by element, so one bad fix spoils only itself.

    Returns `RejectReason.MALFORMED` when the payload is not a JSON array at all.
    """
    try:  # fast path: a whole batch of good fixes in one decode
        return list[Fix | RejectReason](_fix_list_decoder.decode(data))
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        raws = _raw_list_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):  # ValidationError: JSON, not an array;
        return RejectReason.MALFORMED               # RecursionError: nested too deeply
    return [decode_fix(raw) for raw in raws]


def _reason_of(exc: msgspec.ValidationError) -> RejectReason:
    message = str(exc)
    if message.startswith("Object missing required field"):
        return RejectReason.MISSING_FIELD
    if message.startswith("Expected `object`"):  # the top level is not an object
        return RejectReason.MALFORMED
    if message.startswith("Number out of range") and message.endswith(("`$.lat`", "`$.lng`")):
        # JSON cannot spell NaN or infinity; 1e400 is how infinity arrives.
        return RejectReason.BAD_COORDINATES
    return RejectReason.BAD_TYPE


def validate_fix(
    fix: Fix,
    last: LastFix | None,
    now_ms: int,
    *,
    max_future_ms: int = MAX_FUTURE_MS,
    max_age_ms: int = MAX_AGE_MS,
    max_speed_mps: float = MAX_SPEED_MPS,
) -> RejectReason | None:
    """Check one fix against the rules of the GPS flow (docs/gps.md); None means accept.

    Rules, in the order checked (the first failing rule is reported):
    coordinates in range and finite; not exactly (0, 0); ts at most `max_future_ms` ahead
    of `now_ms` and at most `max_age_ms` behind it (both bounds inclusive); optional fields
    in range (accuracy >= 0, speed >= 0, heading in [0, 360), all finite); ts strictly newer
    than `last`; implied speed from `last` (haversine / Δt) at most `max_speed_mps`.
    """
    lat, lng = fix.lat, fix.lng
    # Written as positive range tests so NaN (which fails every comparison) is rejected too.
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return RejectReason.BAD_COORDINATES
    if lat == 0.0 and lng == 0.0:
        return RejectReason.NULL_ISLAND
    ts_ms = fix.ts
    if ts_ms - now_ms > max_future_ms:
        return RejectReason.FUTURE_TS
    if now_ms - ts_ms > max_age_ms:
        return RejectReason.STALE_TS
    if fix.accuracy_m is not None and not (0.0 <= fix.accuracy_m < math.inf):
        return RejectReason.BAD_ACCURACY
    if fix.speed_mps is not None and not (0.0 <= fix.speed_mps < math.inf):
        return RejectReason.BAD_SPEED
    if fix.heading_deg is not None and not (0.0 <= fix.heading_deg < 360.0):
        return RejectReason.BAD_HEADING
    if last is not None:
        dt_ms = ts_ms - last.ts_ms
        if dt_ms <= 0:
            return RejectReason.NOT_NEWER
        # dist / dt > max  <=>  dist * 1000 > max * dt_ms  (no division, exact at the boundary)
        limit = max_speed_mps * dt_ms
        # The great-circle distance is at most R * (|dlat| + |dlng|) (along a meridian, then a
        # parallel); a step clearly within the limit by that bound needs no haversine (~10 %
        # of a one-fix message's validation). Near the limit the exact test decides.
        if (abs(lat - last.lat) + abs(lng - last.lng)) * _M_PER_DEG_1000 >= 0.99 * limit and (
                haversine_m(last.lat, last.lng, lat, lng) * 1000.0 > limit):
            return RejectReason.IMPLAUSIBLE_JUMP
    return None


def validate_batch(
    items: Sequence[Fix | RejectReason],
    last: LastFix | None,
    now_ms: int,
    *,
    max_future_ms: int = MAX_FUTURE_MS,
    max_age_ms: int = MAX_AGE_MS,
    max_speed_mps: float = MAX_SPEED_MPS,
) -> BatchVerdict:
    """Validate one courier's batch in ts order against a running "last accepted" fix.

    `items` may come straight from `decode_fixes`: entries that already failed decoding are
    reported at their index. Fixes are checked in ascending ts (ties in input order), so a
    device that sends out of order loses nothing; a duplicate ts is `NOT_NEWER`.
    """
    if len(items) == 1:  # one fix per message (what a phone sends): nothing to order
        item = items[0]
        if not isinstance(item, Fix):
            return BatchVerdict(accepted=[], rejected=[(0, item)], last=last)
        reason = validate_fix(item, last, now_ms, max_future_ms=max_future_ms,
                              max_age_ms=max_age_ms, max_speed_mps=max_speed_mps)
        if reason is not None:
            return BatchVerdict(accepted=[], rejected=[(0, reason)], last=last)
        return BatchVerdict(accepted=[item], rejected=[],
                            last=LastFix(lat=item.lat, lng=item.lng, ts_ms=item.ts))
    rejected: list[tuple[int, RejectReason]] = []
    fixes: list[tuple[int, Fix]] = []
    for index, item in enumerate(items):
        if isinstance(item, Fix):
            fixes.append((index, item))
        else:
            rejected.append((index, item))
    fixes.sort(key=lambda pair: pair[1].ts)  # stable: equal ts keep input order
    accepted: list[Fix] = []
    for index, fix in fixes:
        reason = validate_fix(
            fix,
            last,
            now_ms,
            max_future_ms=max_future_ms,
            max_age_ms=max_age_ms,
            max_speed_mps=max_speed_mps,
        )
        if reason is None:
            accepted.append(fix)
            last = LastFix.of(fix)
        else:
            rejected.append((index, reason))
    rejected.sort()
    return BatchVerdict(accepted=accepted, rejected=rejected, last=last)
