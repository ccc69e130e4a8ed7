"""A seeded demo city: chefs with menus, couriers with vehicles, customers with homes (pure).

Everything is drawn from one `random.Random(seed)`, so the same seed and sizes give the same
city; the order stream has its own generator (`OrderStream`) so changing the city's size does
not reshuffle which customer orders when.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import msgspec

from geo.distance import haversine_m
from geo.travel import Vehicle

DEFAULT_CENTER = (12.9716, 77.5946)
"""Bengaluru, as in the seed's mock data."""
_M_PER_DEG_LAT = 111_320.0

_CUISINES = ("South Indian", "North Indian", "Italian", "Chinese", "Bengali", "Kerala",
             "Mughlai", "Gujarati", "Thai", "Continental")
_DISHES = ("Masala Dosa", "Idli Sambar", "Paneer Butter Masala", "Veg Biryani", "Chole Bhature",
           "Pasta Arrabbiata", "Hakka Noodles", "Fish Curry", "Dal Makhani", "Pad Thai",
           "Rajma Chawal", "Appam Stew", "Thali", "Khichdi", "Lasagne")


class Point(msgspec.Struct, frozen=True):
    lat: float
    lng: float


class Dish(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    price_cents: int


class ChefSpec(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    name: str
    cuisine: str
    at: Point
    dishes: tuple[Dish, ...]
    prep_s: float
    """How long this kitchen really takes (the simulated chef marks the food ready then)."""


class CourierSpec(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    vehicle: Vehicle
    start: Point


class CustomerSpec(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    home: Point
    chefs: tuple[int, ...]
    """Nearest chefs first: the ones this customer orders from."""


class CityConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 42
    center: Point = Point(*DEFAULT_CENTER)
    radius_m: float = 1000.0
    chefs: int = 12
    couriers: int = 60
    customers: int = 60
    prep_s: tuple[float, float] = (40.0, 80.0)
    """Each chef's real preparation time is drawn from this range (seconds)."""
    vehicle_mix: tuple[tuple[Vehicle, float], ...] = (
        (Vehicle.SCOOTER, 0.7), (Vehicle.BIKE, 0.2), (Vehicle.CAR, 0.1))
    chefs_per_customer: int = 2


class City(msgspec.Struct, frozen=True, kw_only=True):
    config: CityConfig
    chefs: tuple[ChefSpec, ...]
    couriers: tuple[CourierSpec, ...]
    customers: tuple[CustomerSpec, ...]


def offset(origin: Point, north_m: float, east_m: float) -> Point:
    """The point `north_m` / `east_m` away (flat-earth: fine over a few kilometres)."""
    lat = origin.lat + north_m / _M_PER_DEG_LAT
    lng = origin.lng + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(origin.lat)))
    return Point(lat, lng)


def random_point(rng: random.Random, center: Point, radius_m: float) -> Point:
    """Uniform over the disk (sqrt of a uniform radius)."""
    r = radius_m * math.sqrt(rng.random())
    theta = rng.uniform(0.0, 2.0 * math.pi)
    return offset(center, r * math.cos(theta), r * math.sin(theta))


def _vehicle(rng: random.Random, mix: tuple[tuple[Vehicle, float], ...]) -> Vehicle:
    roll = rng.random() * sum(w for _, w in mix)
    for vehicle, weight in mix:
        roll -= weight
        if roll < 0:
            return vehicle
    return mix[-1][0]


Snap = Callable[[Point], "Point | None"]
"""Puts a drawn spot on a street, or refuses it (None: draw again)."""

PLACE_ATTEMPTS = 200


def _place(rng: random.Random, config: CityConfig, snap: Snap | None) -> Point:
    """A spot drawn uniformly over the disk; with `snap`, the street spot it gives (drawn
    again while refused)."""
    for _ in range(PLACE_ATTEMPTS if snap is not None else 1):
        p = random_point(rng, config.center, config.radius_m)
        if snap is None:
            return p
        q = snap(p)
        if q is not None:
            return q
    raise ValueError(f"no street spot found in {PLACE_ATTEMPTS} draws: is the city on the "
                     "road data's map?")


def build_city(config: CityConfig, snap: Snap | None = None) -> City:
    """The city of `config.seed`: chefs, couriers and customers inside the disk. With
    `snap` (a city on real roads, `api.simulator.cities.road_snapper`), every place is on a
    street: the same seed and road data give the same city."""
    if config.radius_m <= 0:
        raise ValueError("radius_m must be positive")
    if config.chefs < 1 or config.couriers < 1 or config.customers < 1:
        raise ValueError("a city needs at least one chef, courier and customer")
    rng = random.Random(config.seed)
    lo, hi = config.prep_s
    chefs = []
    for i in range(config.chefs):
        dishes = tuple(Dish(name=name, price_cents=rng.randrange(120, 450) * 5)
                       for name in rng.sample(_DISHES, 3))
        chefs.append(ChefSpec(index=i, name=f"Kitchen {i + 1:03d}",
                              cuisine=rng.choice(_CUISINES),
                              at=_place(rng, config, snap),
                              dishes=dishes, prep_s=round(rng.uniform(lo, hi), 1)))
    couriers = tuple(
        CourierSpec(index=i, vehicle=_vehicle(rng, config.vehicle_mix),
                    start=_place(rng, config, snap))
        for i in range(config.couriers))
    customers = []
    k = max(1, min(config.chefs_per_customer, config.chefs))
    for i in range(config.customers):
        home = _place(rng, config, snap)
        near = sorted(chefs, key=lambda c: (haversine_m(home.lat, home.lng, c.at.lat, c.at.lng),
                                            c.index))
        customers.append(CustomerSpec(index=i, home=home,
                                      chefs=tuple(c.index for c in near[:k])))
    return City(config=config, chefs=tuple(chefs), couriers=couriers,
                customers=tuple(customers))


class PlannedOrder(msgspec.Struct, frozen=True, kw_only=True):
    at_s: float
    """Seconds after the start of the day."""
    customer: int
    chef: int
    lines: tuple[tuple[int, int], ...]
    """(dish index in the chef's menu, quantity)."""


class OrderStream:
    """Poisson arrivals at `orders_per_min`; each picks a customer and one of its chefs."""

    def __init__(self, city: City, orders_per_min: float, seed: int) -> None:
        if orders_per_min < 0:
            raise ValueError("orders_per_min must be >= 0")
        self.city = city
        self.rate_per_s = orders_per_min / 60.0
        self.rng = random.Random(f"orders-{seed}")
        self.t_s = 0.0

    def next(self) -> PlannedOrder | None:
        """The next order, or None when the rate is 0."""
        if self.rate_per_s <= 0:
            return None
        self.t_s += self.rng.expovariate(self.rate_per_s)
        customer = self.city.customers[self.rng.randrange(len(self.city.customers))]
        chef = customer.chefs[min(int(self.rng.expovariate(1.5)), len(customer.chefs) - 1)]
        n_dishes = len(self.city.chefs[chef].dishes)
        picks = self.rng.sample(range(n_dishes), self.rng.randint(1, min(2, n_dishes)))
        lines = tuple((d, self.rng.randint(1, 2)) for d in sorted(picks))
        return PlannedOrder(at_s=self.t_s, customer=customer.index, chef=chef, lines=lines)
