"""`observe_many` against the Prometheus client's own `observe`."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from api.observability import observe_many

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value
            for metric in registry.collect() for s in metric.samples
            if not s.name.endswith("_created")}


def test_observe_many_equals_observing_one_at_a_time() -> None:
    """Same buckets (values on a bound included, values past the last bound in +Inf), same
    count and same sum as `observe` called `count` times for each value."""
    rng = random.Random(3)
    observations = [(rng.choice([0.0, 0.01, 0.3, 2.5, 7.0, rng.uniform(0, 3)]),
                     rng.randint(1, 4)) for _ in range(300)]
    one, many = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=one)
    h2 = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=many)
    for value, count in observations:
        for _ in range(count):
            h1.observe(value)
    observe_many(h2, iter(observations))
    observe_many(h2, [])  # nothing to add: nothing changes
    got, want = samples(many), samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) < 1e-6, key
    assert want[("lag_seconds_count", "")] == sum(c for _, c in observations)
    assert want[("lag_seconds_bucket", "0.01")] > want[("lag_seconds_bucket", "0.005")]
