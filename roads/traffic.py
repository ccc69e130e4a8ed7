"""Live traffic learnt from the fleet: speeds per road segment from matched traces (pure).

A matched trace (`roads.model.RoadTravelModel.match`) gives, between two kept fixes, the OSM
nodes ridden, the distance along them and the time it took. Its speed is what the roads
were like there and then. `TrafficLearner` keeps, per directed segment (one pair of
consecutive OSM nodes), an exponentially decayed mean of the speeds ridden over it: a sample
weighs 1 when taken and half that every `half_life_s`, so the speed follows the traffic and
a segment nobody rides any more fades out. A segment is reported (`speeds`) only while its
samples weigh at least `min_samples`: one courier waiting at a light is not a jam.

What it reports is what OSRM's ``osrm-customize --segment-speed-file`` reads
(`segment_speed_csv`): ``from_osm_node,to_osm_node,speed_kmh`` per line. Re-customising
from the built data with the whole file each time (`roads.live`) makes a segment that is no
longer reported return to its profile's speed.

No I/O, no clock: the caller passes `now_s`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import msgspec

__all__ = ["SegmentSpeed", "TrafficConfig", "TrafficLearner", "segment_speed_csv"]


class TrafficConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How speeds are learnt (finite defaults; each one says why)."""

    half_life_s: float = 900.0
    """A sample's weight halves every this long: traffic changes over tens of minutes."""
    min_samples: float = 3.0
    """A segment's speed is reported only while its samples weigh at least this much."""
    min_leg_m: float = 5.0
    """Shorter legs (a courier standing still, GPS noise) say nothing about speed."""
    max_speed_mps: float = 45.0
    """Faster legs are a matching error, never traffic (160 km/h)."""
    min_speed_kmh: int = 1
    """OSRM reads speed 0 as a closed road; a crawl is reported as this."""
    max_segments: int = 500_000
    """At most this many segments are tracked (the lightest go first, ~100 bytes each)."""


class SegmentSpeed(msgspec.Struct, frozen=True, kw_only=True):
    from_node: int
    to_node: int
    speed_kmh: int
    samples: float
    """The decayed weight behind the speed."""


class _Segment:
    __slots__ = ("t_s", "weight", "weighted_mps")

    def __init__(self, t_s: float) -> None:
        self.t_s = t_s
        self.weight = 0.0
        self.weighted_mps = 0.0

    def decay_to(self, now_s: float, half_life_s: float) -> None:
        if now_s > self.t_s:
            k = math.exp2(-(now_s - self.t_s) / half_life_s)
            self.weight *= k
            self.weighted_mps *= k
            self.t_s = now_s


class TrafficLearner:
    """Decayed mean speed per directed OSM segment (module docstring). One per profile:
    a car's speed says little about a bicycle's."""

    def __init__(self, config: TrafficConfig | None = None) -> None:
        self.config = config or TrafficConfig()
        self._segments: dict[tuple[int, int], _Segment] = {}

    def __len__(self) -> int:
        return len(self._segments)

    def observe(self, nodes: Iterable[int], distance_m: float, observed_s: float,
                now_s: float) -> int:
        """One matched leg: `distance_m` along `nodes` (OSM ids, in riding order) in
        `observed_s`. Every segment of the leg takes the leg's speed as one sample. Answers
        how many segments learnt from it (0: too short, too fast, or no time passed)."""
        c = self.config
        if not (distance_m >= c.min_leg_m and observed_s > 0
                and math.isfinite(distance_m) and math.isfinite(observed_s)):
            return 0
        speed_mps = distance_m / observed_s
        if speed_mps > c.max_speed_mps:
            return 0
        learnt = 0
        for a, b in itertools.pairwise(nodes):
            if a == b:
                continue
            seg = self._segments.get((a, b))
            if seg is None:
                seg = self._segments[(a, b)] = _Segment(now_s)
            seg.decay_to(now_s, c.half_life_s)
            seg.weight += 1.0
            seg.weighted_mps += speed_mps
            learnt += 1
        if len(self._segments) > c.max_segments:
            self.forget(now_s, keep=c.max_segments)
        return learnt

    def speeds(self, now_s: float) -> list[SegmentSpeed]:
        """The segments whose samples still weigh `min_samples` at `now_s`, with their
        mean speed, sorted by segment (the same learning gives the same file)."""
        c = self.config
        out = []
        for (a, b), seg in sorted(self._segments.items()):
            seg.decay_to(now_s, c.half_life_s)
            if seg.weight >= c.min_samples - 1e-6:  # float decay of a whole count
                kmh = max(c.min_speed_kmh, round(seg.weighted_mps / seg.weight * 3.6))
                out.append(SegmentSpeed(from_node=a, to_node=b, speed_kmh=kmh,
                                        samples=round(seg.weight, 3)))
        return out

    def forget(self, now_s: float, *, keep: int | None = None) -> int:
        """Drop segments whose samples weigh under 1 % of `min_samples` at `now_s` (they
        can no longer be reported without new samples), then the lightest beyond `keep`.
        Answers how many were dropped."""
        c = self.config
        before = len(self._segments)
        for seg in self._segments.values():
            seg.decay_to(now_s, c.half_life_s)
        floor = 0.01 * c.min_samples
        kept = {k: s for k, s in self._segments.items() if s.weight >= floor}
        if keep is not None and len(kept) > keep:
            heaviest = sorted(kept.items(), key=lambda kv: kv[1].weight, reverse=True)[:keep]
            kept = dict(heaviest)
        self._segments = kept
        return before - len(kept)


def segment_speed_csv(speeds: Iterable[SegmentSpeed]) -> str:
    """The lines ``osrm-customize --segment-speed-file`` reads: from,to,km/h."""
    return "".join(f"{s.from_node},{s.to_node},{s.speed_kmh}\n" for s in speeds)
