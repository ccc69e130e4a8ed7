"""Operating hours (the seed mock's shape) and "open now": pure functions, no clock."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

import msgspec

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class DayHours(msgspec.Struct, frozen=True):
    """``{"open": "08:00", "close": "21:00"}``; close may be "24:00" or before open
    (past midnight, e.g. 18:00-02:00)."""

    open: HHMM
    close: HHMM


OperatingHours = dict[
    Annotated[str, msgspec.Meta(pattern=r"^(monday|tuesday|wednesday|thursday|friday|"
                                r"saturday|sunday)$")],
    DayHours | None,
]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def is_open(hours: OperatingHours, local: datetime) -> bool:
    """Open at the chef's local wall-clock time ``local``? A missing day means closed."""
    now_min = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    day = hours.get(today)
    if day is not None:
        o, c = _minutes(day.open), _minutes(day.close)
        if o < c and o <= now_min < c:
            return True
        if c <= o and now_min >= o:  # overnight window, evening part
            return True
    prev = hours.get(yesterday)
    if prev is not None:
        o, c = _minutes(prev.open), _minutes(prev.close)
        if c <= o and now_min < c:  # overnight window from yesterday, morning part
            return True
    return False


def local_time(at_utc: datetime, tz: str) -> datetime:
    """``at_utc`` on the chef's wall clock (unknown zones fall back to UTC)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return at_utc.astimezone(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return at_utc.astimezone(ZoneInfo("UTC"))


__all__ = ["DAYS", "DayHours", "OperatingHours", "is_open", "local_time", "time"]
