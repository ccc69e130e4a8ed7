"""Learning segment speeds from matched legs (`roads.traffic`): hand-checked speeds, the
minimum sample count, the decay, and the file osrm-customize reads."""

from __future__ import annotations

import pytest

from roads.traffic import SegmentSpeed, TrafficConfig, TrafficLearner, segment_speed_csv


def test_a_segment_is_reported_only_with_enough_samples_at_their_mean_speed() -> None:
    """Three legs over segment 1->2 at 5, 10 and 15 m/s: nothing after two (min 3), then
    the mean, 10 m/s = 36 km/h. The leg's other segment (2->3) learns the same speeds."""
    learner = TrafficLearner(TrafficConfig(min_samples=3, half_life_s=1e9))
    assert learner.observe([1, 2, 3], 50.0, 10.0, now_s=0) == 2
    assert learner.observe([1, 2, 3], 100.0, 10.0, now_s=1) == 2
    assert learner.speeds(now_s=2) == []
    assert learner.observe([1, 2], 150.0, 10.0, now_s=2) == 1
    speeds = learner.speeds(now_s=2)
    assert [(s.from_node, s.to_node, s.speed_kmh) for s in speeds] == [(1, 2, 36)]
    assert speeds[0].samples == pytest.approx(3.0)


def test_directions_are_separate_segments() -> None:
    """1->2 and 2->1 are different ways (a one-way street, the other carriageway)."""
    learner = TrafficLearner(TrafficConfig(min_samples=1, half_life_s=1e9))
    learner.observe([1, 2], 100.0, 10.0, now_s=0)
    learner.observe([2, 1], 100.0, 50.0, now_s=0)
    assert {(s.from_node, s.to_node): s.speed_kmh for s in learner.speeds(0)} == {
        (1, 2): 36, (2, 1): 7}


def test_samples_decay_so_the_speed_follows_the_traffic_and_fades_out() -> None:
    """Half-life 60 s. Three old samples at 10 m/s and, two half-lives later, three at
    2 m/s: the old ones weigh 1/4 each, the mean is (0.75 x 10 + 3 x 2) / 3.75 = 3.6 m/s
    (13 km/h). Much later nothing weighs enough to be reported, and `forget` drops it."""
    learner = TrafficLearner(TrafficConfig(min_samples=3, half_life_s=60))
    for _ in range(3):
        learner.observe([7, 8], 100.0, 10.0, now_s=0)
    for _ in range(3):
        learner.observe([7, 8], 20.0, 10.0, now_s=120)
    (speed,) = learner.speeds(now_s=120)
    assert speed.speed_kmh == round(3.6 * 3.6)
    assert speed.samples == pytest.approx(3.75)
    assert learner.speeds(now_s=180) == []  # 3.75 / 2 < 3
    assert learner.forget(now_s=120 + 60 * 20) == 1
    assert len(learner) == 0


@pytest.mark.parametrize(("distance_m", "observed_s"), [
    (2.0, 10.0),      # shorter than min_leg_m: standing still, GPS noise
    (1000.0, 10.0),   # 100 m/s: a matching error
    (100.0, 0.0),     # no time passed
    (float("nan"), 10.0),
])
def test_legs_that_say_nothing_about_speed_are_ignored(distance_m: float,
                                                       observed_s: float) -> None:
    learner = TrafficLearner(TrafficConfig(min_samples=1))
    assert learner.observe([1, 2], distance_m, observed_s, now_s=0) == 0
    assert learner.speeds(0) == []


def test_a_crawl_is_never_reported_as_a_closed_road() -> None:
    """OSRM reads 0 km/h as closed: 0.1 m/s is reported as 1 km/h."""
    learner = TrafficLearner(TrafficConfig(min_samples=1, min_leg_m=1))
    learner.observe([1, 2], 6.0, 60.0, now_s=0)
    assert learner.speeds(0)[0].speed_kmh == 1


def test_the_number_of_segments_is_bounded_lightest_first() -> None:
    learner = TrafficLearner(TrafficConfig(min_samples=1, max_segments=2, half_life_s=1e9))
    learner.observe([1, 2], 100.0, 10.0, now_s=0)
    learner.observe([1, 2], 100.0, 10.0, now_s=0)
    learner.observe([3, 4], 100.0, 10.0, now_s=0)
    learner.observe([3, 4], 100.0, 10.0, now_s=0)
    learner.observe([5, 6], 100.0, 10.0, now_s=0)
    assert len(learner) == 2
    assert [(s.from_node, s.to_node) for s in learner.speeds(0)] == [(1, 2), (3, 4)]


def test_the_speed_file_is_what_osrm_customize_reads() -> None:
    speeds = [SegmentSpeed(from_node=1, to_node=2, speed_kmh=36, samples=3.0),
              SegmentSpeed(from_node=25239346, to_node=2603968449, speed_kmh=7, samples=4.5)]
    assert segment_speed_csv(speeds) == "1,2,36\n25239346,2603968449,7\n"
