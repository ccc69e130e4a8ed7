"""Prep-time prediction from a kitchen's history (`dispatch.prep`), on hand-checked
histories."""

from __future__ import annotations

import math

import pytest

from dispatch.prep import PrepParams, predict_ready_ms, prep_ratio

MIN = 60_000
T = 1_900_000_000_000
P = PrepParams()


def predict(kitchen: list[float], city: list[float], params: PrepParams = P,
            declared_min: int = 10) -> float:
    """Predicted prep in minutes for a 10-minute declaration accepted at T."""
    return (predict_ready_ms(accepted_ms=T, declared_ready_ms=T + declared_min * MIN,
                             kitchen=kitchen, city=city, params=params) - T) / MIN


def test_no_history_trusts_the_declared_time() -> None:
    """Nothing observed anywhere: the declared ready time, unchanged."""
    assert predict([], []) == 10.0


def test_a_kitchen_always_twice_as_slow_is_predicted_twice_as_slow() -> None:
    """Every observation says 2x (no spread): 20 minutes, whatever the blend."""
    two = math.log(2.0)
    assert predict([two] * 5, [two] * 50) == pytest.approx(20.0)


def test_few_orders_lean_on_the_city() -> None:
    """One observation of 2x against a punctual city weighs 1 : prior_weight (3): the mean
    log ratio is log(2) / 4; with no spread anywhere, exp of that."""
    p = predict([math.log(2.0)], [0.0, 0.0])
    assert p == pytest.approx(10.0 * math.exp(math.log(2.0) / 4))


def test_only_the_recent_history_counts() -> None:
    """A kitchen that was punctual and is now twice as slow: with history 3, only the last
    three (2x) count; the prior is off (weight 0) to isolate it."""
    params = PrepParams(history=3, prior_weight=0.0)
    assert predict([0.0] * 10 + [math.log(2.0)] * 3, [], params) == pytest.approx(20.0)


def test_a_higher_quantile_predicts_later_on_a_spread_kitchen() -> None:
    """Spread history: the 0.8 quantile is later than the median, the 0.2 earlier; the
    median of a symmetric history is its mean."""
    xs = [math.log(0.8), math.log(1.25)]
    mid = predict(xs, [], PrepParams(prior_weight=0.0))
    assert mid == pytest.approx(10.0)
    assert predict(xs, [], PrepParams(prior_weight=0.0, quantile=0.8)) > mid
    assert predict(xs, [], PrepParams(prior_weight=0.0, quantile=0.2)) < mid


def test_observations_are_clamped_and_need_a_declared_prep() -> None:
    """Ten times slower counts as max_ratio (3); a zero declared prep teaches nothing and is
    not scaled."""
    slow = prep_ratio(accepted_ms=T, declared_ready_ms=T + 10 * MIN, ready_ms=T + 100 * MIN,
                      params=P)
    assert slow == pytest.approx(math.log(3.0))
    assert prep_ratio(accepted_ms=T, declared_ready_ms=T, ready_ms=T + MIN, params=P) is None
    assert predict_ready_ms(accepted_ms=T, declared_ready_ms=T, kitchen=[1.0], city=[1.0],
                            params=P) == T


def test_bad_parameters_are_refused() -> None:
    """Each bound of `PrepParams` is checked."""
    for bad, says in (({"history": 0}, "history"), ({"quantile": 1.0}, "quantile"),
                      ({"min_ratio": 1.5}, "min_ratio"), ({"prior_weight": -1}, "prior_weight")):
        with pytest.raises(ValueError, match=says):
            PrepParams(**bad)  # type: ignore[arg-type]
