"""A lab day as data: the city, its kitchens, customers, order curve and fleet (msgspec).

A `Scenario` holds distributions, not individuals: `lab.city.build_day` draws the chefs,
homes, couriers and orders from it with a seed. Presets are in `PRESETS`; `--scenario FILE`
reads the same Struct from JSON (`load_scenario`), every field optional over the defaults.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "PRESETS",
    "Arrivals",
    "Chefs",
    "Couriers",
    "Customers",
    "Scenario",
    "Shift",
    "load_scenario",
]


class Chefs(msgspec.Struct, frozen=True, kw_only=True):
    """Home kitchens, placed uniformly in the central `spread` share of the city's radius."""

    count: int = 400
    spread: float = 0.8
    prep_median_min: tuple[float, float] = (10.0, 25.0)
    """Each kitchen's real median prep time, uniform in this range (minutes)."""
    prep_sigma: float = 0.25
    """Log-normal spread of one order's real prep time around its kitchen's median."""
    concurrency: tuple[int, int] = (2, 5)
    """Orders a kitchen cooks at once (uniform integer range); more wait for a free slot."""
    honesty: tuple[float, float] = (0.75, 1.15)
    """Declared prep ÷ real median, uniform per kitchen: below 1 the kitchen promises
    faster food than it cooks (the declared minutes are what commerce and dispatch see)."""
    accept_delay_s: tuple[float, float] = (20.0, 90.0)
    """From the order being placed to the chef accepting it (cooking starts then)."""
    busy_backlog_min: float = 20.0
    """A kitchen whose next free slot is further away than this shows as busy: the customer
    orders from another of its kitchens (the least busy one when all are)."""


class Customers(msgspec.Struct, frozen=True, kw_only=True):
    """Homes in Gaussian clusters (neighbourhoods) placed uniformly in the city."""

    count: int = 6000
    clusters: int = 14
    cluster_sigma_m: float = 700.0
    choice: int = 12
    """A customer orders from one of its `choice` nearest kitchens (uniformly)."""


class Arrivals(msgspec.Struct, frozen=True, kw_only=True):
    """Orders placed over the day, following a piecewise-linear rate curve."""

    orders: int = 5000
    curve: tuple[tuple[float, float], ...] = (
        (0.0, 0.55), (1.0, 0.65), (2.0, 0.85), (3.0, 1.0), (4.0, 1.0), (5.0, 0.7), (6.0, 0.5))
    """(hours since the day's start, relative rate) points; the rate between them is linear."""


class Shift(msgspec.Struct, frozen=True, kw_only=True):
    start_h: float
    end_h: float
    """Hours since the day's start; a courier busy at the end finishes its orders first."""
    share: float
    """Share of the fleet on this shift."""


class Couriers(msgspec.Struct, frozen=True, kw_only=True):
    count: int = 300
    vehicles: dict[str, float] = msgspec.field(
        default_factory=lambda: {"bike": 0.4, "scooter": 0.45, "car": 0.15})
    """Vehicle mix (weights)."""
    shifts: tuple[Shift, ...] = (
        Shift(start_h=0.0, end_h=6.5, share=0.5), Shift(start_h=0.0, end_h=3.5, share=0.25),
        Shift(start_h=2.0, end_h=6.5, share=0.25))
    """Default: 225 couriers online, 300 from 18:00, 225 again from 19:30 as the early shift
    leaves in the middle of the peak; the last shifts end half an hour after the last order."""
    accept_prob: tuple[float, float] = (0.75, 0.98)
    """Each courier's probability of accepting an offer, uniform in this range."""
    think_s: tuple[float, float] = (3.0, 25.0)
    """Delay before a courier answers an offer (beyond the offer TTL: it expires)."""
    speed_sigma: float = 0.12
    """Log-normal spread of a courier's own pace around the travel model (per courier)."""
    leg_sigma: float = 0.15
    """Log-normal noise of each leg around the courier's pace (traffic, lights, parking)."""
    handover_s: float = 60.0
    """Time at a door or a kitchen counter per stop (the cost model counts 2 × 60 s)."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """One city day (module docstring)."""

    name: str = "dinner-peak"
    center: tuple[float, float] = (12.9716, 77.5946)
    radius_m: float = 4000.0
    start_utc_ms: int = 1_788_796_800_000
    """The day's first instant (2026-09-07 16:00 UTC; only differences matter)."""
    hours: float = 6.0
    drain_h: float = 2.0
    """After the last order is placed, the day runs on this long for deliveries to finish."""
    chefs: Chefs = msgspec.field(default_factory=Chefs)
    customers: Customers = msgspec.field(default_factory=Customers)
    arrivals: Arrivals = msgspec.field(default_factory=Arrivals)
    couriers: Couriers = msgspec.field(default_factory=Couriers)
    promise_speed_kmh: float = 20.0
    """Commerce's promise: ready + straight line at this speed + `promise_buffer_min`
    (api/commerce/context.py defaults)."""
    promise_buffer_min: int = 10

    def __post_init__(self) -> None:
        if self.hours <= 0 or self.drain_h < 0 or self.radius_m <= 0:
            raise ValueError("hours and radius_m must be > 0, drain_h >= 0")
        if self.chefs.count < 1 or self.customers.count < 1 or self.couriers.count < 1:
            raise ValueError("a day needs at least one chef, customer and courier")
        if self.arrivals.orders < 0 or not self.arrivals.curve:
            raise ValueError("arrivals need a curve and orders >= 0")
        if any(r < 0 for _, r in self.arrivals.curve) or not any(
                r > 0 for _, r in self.arrivals.curve):
            raise ValueError("the arrival curve's rates must be >= 0, one of them > 0")
        if not self.couriers.shifts or sum(s.share for s in self.couriers.shifts) <= 0:
            raise ValueError("couriers need shifts with a positive total share")
        unknown = set(self.couriers.vehicles) - {"bike", "scooter", "car"}
        if unknown or sum(self.couriers.vehicles.values()) <= 0:
            raise ValueError(f"vehicles must weigh bike/scooter/car (unknown: {unknown})")


DINNER_PEAK = Scenario()
"""A 6-hour evening (16:00-22:00 UTC) in a city of 4 km radius: 5,000 orders peaking at
19:00-20:00, 300 couriers on three shifts, 225 online from 19:30: couriers are scarce at the
peak."""

TINY = Scenario(
    name="tiny", radius_m=2000.0, hours=0.5, drain_h=1.0,
    chefs=Chefs(count=10), customers=Customers(count=40, clusters=3, cluster_sigma_m=300.0,
                                               choice=3),
    arrivals=Arrivals(orders=30, curve=((0.0, 1.0), (0.5, 1.0))),
    couriers=Couriers(count=15, shifts=(Shift(start_h=0.0, end_h=1.5, share=1.0),)))
"""A half hour with 30 orders and 15 couriers (tests, quick checks)."""

LUNCH_DINNER = Scenario(
    name="lunch-dinner", start_utc_ms=1_788_775_200_000, hours=12.0,
    arrivals=Arrivals(orders=6000, curve=(
        (0.0, 0.3), (1.0, 0.9), (2.0, 1.0), (3.0, 0.5), (5.0, 0.25), (7.0, 0.45),
        (8.5, 1.0), (9.5, 1.0), (11.0, 0.4), (12.0, 0.2))),
    couriers=Couriers(count=450, shifts=(
        Shift(start_h=0.0, end_h=5.0, share=0.45), Shift(start_h=3.5, end_h=8.5, share=0.15),
        Shift(start_h=6.5, end_h=12.5, share=0.4))))
"""A 12-hour day (09:00-21:00 UTC) with a lunch and a dinner peak."""

PRESETS: dict[str, Scenario] = {s.name: s for s in (DINNER_PEAK, LUNCH_DINNER, TINY)}


def load_scenario(raw: bytes) -> Scenario:
    """A scenario from JSON (fields left out take the defaults above).

    Raises:
        msgspec.ValidationError: the JSON does not fit (the message names the field);
            a ValueError from the checks is reported the same way.
    """
    return msgspec.json.decode(raw, type=Scenario)
