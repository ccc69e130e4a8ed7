"""Prep-time prediction per kitchen from its history, pure (issue 19, item 3).

A kitchen declares a prep time; the real one differs (optimistic cooks, a queue of orders at
the peak). Each order the kitchen marks ready adds one observation: the log of observed ÷
declared prep, both counted from the chef's acceptance (`prep_ratio`). The prediction for a
new order scales its declared prep by the kitchen's recent ratios, shrunk toward the city's
(few kitchens have many orders in one evening: 5,000 orders over 400 kitchens is 12 each):

    mean  = (n * kitchen_mean + prior_weight * city_mean) / (n + prior_weight)
    sd    = the same blend of the two spreads (the city's when the kitchen has < 2)
    ratio = exp(mean + z(quantile) * sd)          clamped to [min_ratio, max_ratio]
    ready = accepted + declared * ratio

Only the last `history` observations of a kitchen (and `city_history` of the city) count, so
a kitchen that falls behind at the peak is seen as late within a few orders.

`quantile` states the uncertainty trade: the prediction is that quantile of the kitchen's
ready time (log-normal), so below 0.5 couriers are sent earlier (more waiting at the counter,
less food waiting), above it later.

No history at all: the declared time, unchanged. Pure: numbers in, numbers out; the adapter
(`api.core.dispatch.service.Dispatcher`, `DISPATCH_PREP_PREDICTION`) keeps the observations
and the lab (`lab.engine`) keeps them in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import msgspec

__all__ = ["PrepParams", "predict_ready_ms", "prep_ratio"]


class PrepParams(msgspec.Struct, frozen=True, kw_only=True):
    """How history corrects a declared prep time; every field has a finite default."""

    history: int = 20
    """Observations kept per kitchen (the most recent)."""
    city_history: int = 500
    """Observations kept for the whole city (the prior)."""
    prior_weight: float = 3.0
    """The city's ratio counts as this many observations of the kitchen."""
    quantile: float = 0.5
    """Which quantile of the kitchen's ready time is predicted (0.5: the median)."""
    min_ratio: float = 0.5
    max_ratio: float = 3.0
    """Bounds on observed ÷ declared (one odd order, or a bad clock, moves it no further)."""

    def __post_init__(self) -> None:
        if self.history < 1 or self.city_history < 1 or self.prior_weight < 0:
            raise ValueError("history and city_history must be >= 1, prior_weight >= 0")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError("quantile must be within (0, 1)")
        if not 0.0 < self.min_ratio <= 1.0 <= self.max_ratio:
            raise ValueError("min_ratio must be in (0, 1], max_ratio >= 1")


def prep_ratio(*, accepted_ms: int, declared_ready_ms: int, ready_ms: int,
               params: PrepParams) -> float | None:
    """One observation: log(observed ÷ declared prep), clamped; None when the declared prep
    is not positive (nothing to scale)."""
    declared = declared_ready_ms - accepted_ms
    if declared <= 0:
        return None
    observed = max(0, ready_ms - accepted_ms)
    ratio = min(params.max_ratio, max(params.min_ratio, observed / declared))
    return math.log(ratio)


def _mean_sd(xs: Sequence[float]) -> tuple[float, float | None]:
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))


def predict_ready_ms(*, accepted_ms: int, declared_ready_ms: int, kitchen: Sequence[float],
                     city: Sequence[float], params: PrepParams) -> int:
    """When the food should be ready (module docstring). `kitchen` and `city` are
    `prep_ratio` observations, oldest first; only the last `history` / `city_history`
    count."""
    declared = declared_ready_ms - accepted_ms
    kitchen = kitchen[-params.history:]
    city = city[-params.city_history:]
    if declared <= 0 or not (kitchen or city):
        return declared_ready_ms
    n = len(kitchen)
    w = params.prior_weight if city else 0.0
    city_mean, city_sd = _mean_sd(city) if city else (0.0, None)
    k_mean, k_sd = _mean_sd(kitchen) if kitchen else (0.0, None)
    mean = (n * k_mean + w * city_mean) / (n + w)
    spreads = [(n, k_sd), (w, city_sd)]
    known = [(weight, sd) for weight, sd in spreads if sd is not None and weight > 0]
    sd = (sum(weight * s for weight, s in known) / sum(weight for weight, _ in known)
          if known else 0.0)
    z = NormalDist().inv_cdf(params.quantile)
    ratio = min(params.max_ratio, max(params.min_ratio, math.exp(mean + z * sd)))
    return accepted_ms + round(declared * ratio)
