"""The wall clock, in one place: services take a `Clock` and default to `wall_ms`.

Injected rather than read where it is needed, so tests drive time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "wall_ms"]

Clock = Callable[[], int]
"""Returns the current time as epoch milliseconds UTC."""


def wall_ms() -> int:
    """Epoch milliseconds UTC from the system clock."""
    return time.time_ns() // 1_000_000
