"""The seeded day of a scenario: chefs, homes, couriers and orders, all drawn up front.

Everything that does not depend on dispatch is decided here, before the simulation, so two
policies replay the very same day: who orders what from whom and when, when each chef
accepts, when the food is really ready (the kitchen's queue included) and what the customer
was promised. A kitchen whose queue is longer than `Chefs.busy_backlog_min` shows as busy
and the customer orders elsewhere, as apps hide overloaded kitchens. Each part has its own
random stream (`numpy.random.SeedSequence` spawned from the seed), so resizing one part does
not reshuffle the others.

Promise and ready estimate follow commerce (`dispatch.promise`): estimated ready =
acceptance + the kitchen's declared minutes; promised = that + the straight-line ride at the
promise speed, in whole minutes, + a buffer.
"""

from __future__ import annotations

import heapq
import math
from datetime import UTC, datetime

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.promise import epoch_ms, promised_at, ready_at
from geo.distance import haversine_matrix_m
from lab.scenario import Scenario

__all__ = ["Day", "LabCourier", "LabOrder", "build_day", "disk_points"]

FloatArray = npt.NDArray[np.float64]
_M_PER_DEG = 111_320.0


class LabOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order of the day, with what only the simulation knows (the real ready time)."""

    order_id: str
    chef: int
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    placed_ms: int
    accepted_ms: int
    estimated_ready_ms: int
    """What commerce tells dispatch (acceptance + declared prep)."""
    ready_ms: int
    """When the kitchen really has it ready (its queue and its real prep time)."""
    promised_ms: int


class LabCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    vehicle: str
    start: tuple[float, float]
    shift_start_ms: int
    shift_end_ms: int
    accept_prob: float
    pace: float
    """Real travel time ÷ the travel model's (this courier's own speed)."""


class Day(msgspec.Struct, frozen=True, kw_only=True):
    scenario: Scenario
    seed: int
    chefs: tuple[tuple[float, float], ...]
    declared_prep_min: tuple[int, ...]
    orders: tuple[LabOrder, ...]
    """By placement time (ids o00000.. in that order)."""
    couriers: tuple[LabCourier, ...]
    """Ids c0000.., in id order."""

    @property
    def start_ms(self) -> int:
        return self.scenario.start_utc_ms

    @property
    def end_ms(self) -> int:
        """When the simulation stops: the last placement window plus the drain."""
        return self.start_ms + round((self.scenario.hours + self.scenario.drain_h) * 3.6e6)


def disk_points(rng: np.random.Generator, n: int, center: tuple[float, float],
                radius_m: float) -> FloatArray:
    """`n` points uniform in a disk, as an (n, 2) array of (lat, lng)."""
    r = radius_m * np.sqrt(rng.random(n))
    a = rng.uniform(0.0, 2 * math.pi, n)
    return _offset(center, r * np.cos(a), r * np.sin(a))


def _offset(center: tuple[float, float], north_m: FloatArray, east_m: FloatArray) -> FloatArray:
    lat0, lng0 = center
    lat = lat0 + north_m / _M_PER_DEG
    lng = lng0 + east_m / (_M_PER_DEG * math.cos(math.radians(lat0)))
    return np.column_stack([lat, lng])


def _arrival_offsets_ms(rng: np.random.Generator, s: Scenario) -> list[int]:
    """Placement times (ms after the day's start), sorted: the orders spread over the
    minutes by the curve's rate (multinomial), uniform within each minute."""
    minutes = max(1, round(s.hours * 60))
    hours, rates = zip(*s.arrivals.curve, strict=True)
    rate = np.interp((np.arange(minutes) + 0.5) / 60.0, hours, rates)
    counts = rng.multinomial(s.arrivals.orders, rate / rate.sum())
    minute = np.repeat(np.arange(minutes), counts)
    offsets = (minute + rng.random(len(minute))) * 60_000.0
    return sorted(int(x) for x in offsets)


def build_day(s: Scenario, seed: int) -> Day:
    """The day of scenario `s` with `seed` (module docstring); same inputs, same day."""
    streams = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)]
    kitchen_rng, home_rng, order_rng, fleet_rng = streams
    c = s.chefs
    chef_at = disk_points(kitchen_rng, c.count, s.center, s.radius_m * c.spread)
    median_s = kitchen_rng.uniform(*c.prep_median_min, c.count) * 60.0
    slots = kitchen_rng.integers(c.concurrency[0], c.concurrency[1] + 1, c.count)
    honesty = kitchen_rng.uniform(*c.honesty, c.count)
    declared_min = np.maximum(1, np.rint(median_s / 60.0 * honesty)).astype(int)

    cu = s.customers
    centres = disk_points(home_rng, cu.clusters, s.center, s.radius_m * 0.85)
    which = home_rng.integers(0, cu.clusters, cu.count)
    homes = centres[which] + np.column_stack([
        home_rng.normal(0.0, cu.cluster_sigma_m, cu.count) / _M_PER_DEG,
        home_rng.normal(0.0, cu.cluster_sigma_m, cu.count)
        / (_M_PER_DEG * math.cos(math.radians(s.center[0])))])
    dist = haversine_matrix_m(homes[:, 0], homes[:, 1], chef_at[:, 0], chef_at[:, 1])
    choice = min(cu.choice, c.count)
    nearest_chefs = np.argsort(dist, axis=1, kind="stable")[:, :choice]

    placed = _arrival_offsets_ms(order_rng, s)
    n = len(placed)
    customer = order_rng.integers(0, cu.count, n)
    pick = order_rng.integers(0, choice, n)
    accept_delay = order_rng.uniform(*c.accept_delay_s, n) * 1000.0
    prep_noise = order_rng.lognormal(0.0, c.prep_sigma, n)
    kitchens: list[list[int]] = [[0] * int(k) for k in slots]  # slot free-at, per kitchen
    orders = []
    busy_ms = c.busy_backlog_min * 60_000.0
    for i in range(n):
        home = int(customer[i])
        placed_ms = s.start_utc_ms + placed[i]
        accepted_ms = placed_ms + round(float(accept_delay[i]))
        # The chosen kitchen first, then the customer's others in order; a busy one is
        # skipped (the least busy is taken when all are).
        options = [int(k) for k in np.roll(nearest_chefs[home], -int(pick[i]))]
        chef = next((k for k in options if kitchens[k][0] - accepted_ms <= busy_ms),
                    min(options, key=lambda k: (kitchens[k][0], k)))
        free_at = heapq.heappop(kitchens[chef])
        ready_ms = max(accepted_ms, free_at) + round(float(median_s[chef] * prep_noise[i]) * 1000)
        heapq.heappush(kitchens[chef], ready_ms)
        estimate = ready_at(_dt(accepted_ms), int(declared_min[chef]))
        promise = promised_at(estimate, float(dist[home, chef]), s.promise_speed_kmh,
                              s.promise_buffer_min)
        orders.append(LabOrder(
            order_id=f"o{i:05d}", chef=chef, pickup=_pt(chef_at[chef]), dropoff=_pt(homes[home]),
            placed_ms=placed_ms, accepted_ms=accepted_ms, estimated_ready_ms=epoch_ms(estimate),
            ready_ms=ready_ms, promised_ms=epoch_ms(promise)))
    return Day(scenario=s, seed=seed, chefs=tuple(_pt(p) for p in chef_at),
               declared_prep_min=tuple(int(d) for d in declared_min), orders=tuple(orders),
               couriers=_fleet(fleet_rng, s))


def _fleet(rng: np.random.Generator, s: Scenario) -> tuple[LabCourier, ...]:
    f = s.couriers
    starts = disk_points(rng, f.count, s.center, s.radius_m * 0.9)
    names = sorted(f.vehicles)
    weights = np.asarray([f.vehicles[v] for v in names], dtype=np.float64)
    vehicle = rng.choice(len(names), f.count, p=weights / weights.sum())
    shares = np.asarray([sh.share for sh in f.shifts], dtype=np.float64)
    shift = rng.choice(len(f.shifts), f.count, p=shares / shares.sum())
    jitter_ms = rng.uniform(0.0, 600_000.0, f.count)  # arrivals on shift spread over 10 min
    accept = rng.uniform(*f.accept_prob, f.count)
    pace = rng.lognormal(0.0, f.speed_sigma, f.count)
    out = []
    for k in range(f.count):
        sh = f.shifts[int(shift[k])]
        start_ms = s.start_utc_ms + round(sh.start_h * 3.6e6 + float(jitter_ms[k]))
        out.append(LabCourier(
            courier_id=f"c{k:04d}", vehicle=names[int(vehicle[k])], start=_pt(starts[k]),
            shift_start_ms=start_ms, shift_end_ms=s.start_utc_ms + round(sh.end_h * 3.6e6),
            accept_prob=float(accept[k]), pace=float(pace[k])))
    return tuple(out)


def _pt(p: FloatArray) -> tuple[float, float]:
    return (float(p[0]), float(p[1]))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
