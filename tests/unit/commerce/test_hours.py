"""Operating hours in the seed mock's shape: open now or not, overnight windows included."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from api.commerce.chefs.hours import DayHours, OperatingHours, is_open, local_time

MOCK: OperatingHours = {
    "monday": DayHours("08:00", "21:00"),
    "friday": DayHours("18:00", "02:00"),
}


@pytest.mark.parametrize(("when", "expected"), [
    (datetime(2026, 1, 5, 7, 59), False),   # Monday before opening
    (datetime(2026, 1, 5, 8, 0), True),     # Monday at opening
    (datetime(2026, 1, 5, 20, 59), True),
    (datetime(2026, 1, 5, 21, 0), False),   # closing time is exclusive
    (datetime(2026, 1, 6, 12, 0), False),   # Tuesday: not listed → closed
    (datetime(2026, 1, 9, 23, 0), True),    # Friday evening, overnight window
    (datetime(2026, 1, 10, 1, 30), True),   # Saturday 01:30 is Friday's night
    (datetime(2026, 1, 10, 2, 0), False),
])
def test_is_open(when: datetime, expected: bool) -> None:
    """Windows are [open, close); a close before open runs past midnight."""
    assert is_open(MOCK, when) is expected


def test_mock_shape_decodes_and_24h() -> None:
    """The seed mock's JSON decodes; "24:00" closes at midnight; bad times are refused."""
    hours = msgspec.json.decode(
        b'{"sunday": {"open": "00:00", "close": "24:00"}}', type=OperatingHours)
    assert is_open(hours, datetime(2026, 1, 4, 23, 59))
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"sunday": {"open": "25:00", "close": "24:00"}}',
                            type=OperatingHours)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"funday": {"open": "10:00", "close": "11:00"}}',
                            type=OperatingHours)


def test_local_time_uses_the_chef_zone() -> None:
    """12:00 UTC is 17:30 in Asia/Kolkata; an unknown zone falls back to UTC."""
    at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert local_time(at, "Asia/Kolkata").strftime("%H:%M") == "17:30"
    assert local_time(at, "Nowhere/Land").hour == 12
