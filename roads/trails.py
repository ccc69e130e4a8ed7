"""Couriers' recent fixes waiting to be matched to roads, and their matched trails (pure).

The fleet matcher (`api/core/gps/matcher.py`) appends every fix it hears (O(1), never
awaits) and, on its own schedule, takes the couriers with a batch of new fixes to match.
Everything is bounded: a courier keeps at most `max_fixes` unmatched fixes (the oldest go
when the matcher falls behind: matching is best-effort, ingest never waits for it), at most
`max_couriers` couriers are tracked (the longest silent goes), a trail keeps its last
`trail_points` snapped positions. Each batch starts with the last fix of the one before,
so the legs between batches are matched too.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import msgspec

__all__ = ["FixBuffers", "Trail", "TrailLimits"]


class TrailLimits(msgspec.Struct, frozen=True, kw_only=True):
    batch: int = 8
    """A courier is due for matching with this many new fixes (~20-30 s of riding)."""
    max_fixes: int = 64
    """Unmatched fixes kept per courier (the oldest dropped beyond it)."""
    max_couriers: int = 100_000
    """Couriers tracked at once (the longest silent dropped beyond it)."""
    trail_points: int = 120
    """Snapped positions kept per courier for its trail."""


class Trail(msgspec.Struct, kw_only=True):
    """A courier's matched positions, oldest first: (lat, lng, ts_s)."""

    points: deque[tuple[float, float, float]]
    confidence: float = 0.0
    """The matcher's confidence in the last batch (0..1)."""


class _Courier:
    __slots__ = ("fixes", "new", "trail")

    def __init__(self, max_fixes: int, trail_points: int) -> None:
        self.fixes: deque[tuple[float, float, float]] = deque(maxlen=max_fixes)
        self.new = 0
        self.trail = Trail(points=deque(maxlen=trail_points))


class FixBuffers:
    """Per courier: unmatched fixes and the trail matched so far (module docstring)."""

    def __init__(self, limits: TrailLimits | None = None) -> None:
        self.limits = limits or TrailLimits()
        self._couriers: OrderedDict[str, _Courier] = OrderedDict()
        self.dropped = 0
        """Fixes dropped unmatched (a courier's buffer full: the matcher behind)."""

    def __len__(self) -> int:
        return len(self._couriers)

    def add(self, courier_id: str, lat: float, lng: float, ts_s: float) -> None:
        """Hold one fix; an older or same-time fix than the courier's last is ignored."""
        c = self._couriers.get(courier_id)
        if c is None:
            lim = self.limits
            if len(self._couriers) >= lim.max_couriers:
                self._couriers.popitem(last=False)
            c = self._couriers[courier_id] = _Courier(lim.max_fixes, lim.trail_points)
        else:
            self._couriers.move_to_end(courier_id)
            if c.fixes and ts_s <= c.fixes[-1][2]:
                return
        if len(c.fixes) == c.fixes.maxlen:
            self.dropped += 1
        c.fixes.append((lat, lng, ts_s))
        c.new = min(c.new + 1, len(c.fixes))

    def due(self) -> list[str]:
        """Couriers with a batch of new fixes, the longest silent first."""
        batch = self.limits.batch
        return [cid for cid, c in self._couriers.items() if c.new >= batch]

    def take(self, courier_id: str) -> list[tuple[float, float, float]]:
        """The courier's fixes to match now, (lat, lng, ts_s) oldest first: the new ones
        after the last one already matched (kept for the next batch's first leg)."""
        c = self._couriers.get(courier_id)
        if c is None or not c.new:
            return []
        fixes = list(c.fixes)[-(c.new + 1):]
        last = c.fixes[-1]
        c.fixes.clear()
        c.fixes.append(last)
        c.new = 0
        return fixes

    def matched(self, courier_id: str, snapped: list[tuple[float, float, float]],
                confidence: float) -> None:
        """Extend the courier's trail with its matched positions (lat, lng, ts_s)."""
        c = self._couriers.get(courier_id)
        if c is None:
            return
        points = c.trail.points
        for p in snapped:
            if not points or p[2] > points[-1][2]:
                points.append(p)
        c.trail.confidence = confidence

    def trail(self, courier_id: str) -> Trail | None:
        c = self._couriers.get(courier_id)
        return None if c is None or not c.trail.points else c.trail
