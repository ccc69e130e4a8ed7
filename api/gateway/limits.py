"""Token buckets keyed by client IP or user: pure, bounded, with the clock passed in.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; a request takes one.
Only the keys seen most recently are kept (``max_keys``, least recently seen dropped first),
so memory is bounded whatever the number of clients; a dropped key starts with a full bucket
again, which errs on the side of letting a rare client through.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketLimits:
    rate_per_s: float
    burst: int
    max_keys: int


class TokenBuckets:
    __slots__ = ("_buckets", "limits")

    def __init__(self, limits: BucketLimits) -> None:
        self.limits = limits
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key -> (tokens at ``at``, ``at`` in seconds)."""

    def take(self, key: str, now_s: float) -> float:
        """Take one token of ``key``'s bucket: 0.0 when it had one, else the seconds until
        it will (the request is refused and nothing is taken)."""
        lim = self.limits
        tokens, at = self._buckets.pop(key, (float(lim.burst), now_s))
        tokens = min(float(lim.burst), tokens + max(0.0, now_s - at) * lim.rate_per_s)
        wait_s = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait_s = (1.0 - tokens) / lim.rate_per_s
        self._buckets[key] = (tokens, now_s)
        if len(self._buckets) > lim.max_keys:
            self._buckets.popitem(last=False)
        return wait_s

    def __len__(self) -> int:
        return len(self._buckets)


__all__ = ["BucketLimits", "TokenBuckets"]
