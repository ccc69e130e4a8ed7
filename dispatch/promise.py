"""Food-ready and promised delivery times: pure, from ``now`` and the order's facts.

Commerce promises with these (`api.commerce.orders`); the lab draws its day's promises with
the same code (`lab.city`), which is why they sit in the pure core.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


def ready_at(start: datetime, prep_time_minutes: int) -> datetime:
    return start + timedelta(minutes=prep_time_minutes)


def promised_at(ready: datetime, distance_m: float, speed_kmh: float,
                handoff_buffer_min: int) -> datetime:
    """Ready time + straight-line travel at ``speed_kmh`` + a hand-off buffer, whole minutes."""
    travel_min = math.ceil(distance_m / 1000 / speed_kmh * 60)
    return ready + timedelta(minutes=travel_min + handoff_buffer_min)


def promised_after_ride(ready: datetime, ride_s: float, handoff_buffer_min: int) -> datetime:
    """Ready time + a known ride (e.g. along the roads) + a hand-off buffer, whole minutes."""
    return ready + timedelta(minutes=math.ceil(ride_s / 60) + handoff_buffer_min)


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
