"""Travel-time model: straight-line distance × circuity ÷ a speed profile per vehicle type.

One interface (`TravelModel`) so a road-network provider can replace it by configuration.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from geo.distance import haversine_m, haversine_matrix_m


class Vehicle(StrEnum):
    BIKE = "bike"
    SCOOTER = "scooter"
    CAR = "car"


# Urban average speeds (m/s) including stops at lights; circuity converts straight-line
# distance into road distance (typical city grids measure 1.3-1.4).
DEFAULT_SPEED_MPS: dict[Vehicle, float] = {
    Vehicle.BIKE: 4.2,  # ~15 km/h
    Vehicle.SCOOTER: 6.9,  # ~25 km/h
    Vehicle.CAR: 6.1,  # ~22 km/h: faster roads, slower parking
}
DEFAULT_CIRCUITY = 1.35


class TravelModel(Protocol):
    """Seconds to travel between points; implementations must be pure and deterministic."""

    def travel_s(
        self, lat1: float, lng1: float, lat2: float, lng2: float, vehicle: Vehicle
    ) -> float: ...

    def travel_matrix_s(
        self,
        lat_a: npt.ArrayLike,
        lng_a: npt.ArrayLike,
        lat_b: npt.ArrayLike,
        lng_b: npt.ArrayLike,
        vehicle: Vehicle,
    ) -> npt.NDArray[np.float64]: ...


class HaversineTravelModel:
    """Haversine × circuity ÷ vehicle speed (docs/architecture.md)."""

    __slots__ = ("circuity", "speeds_mps")

    def __init__(
        self,
        circuity: float = DEFAULT_CIRCUITY,
        speeds_mps: dict[Vehicle, float] | None = None,
    ) -> None:
        self.circuity = circuity
        self.speeds_mps = dict(DEFAULT_SPEED_MPS if speeds_mps is None else speeds_mps)

    def travel_s(
        self, lat1: float, lng1: float, lat2: float, lng2: float, vehicle: Vehicle
    ) -> float:
        return haversine_m(lat1, lng1, lat2, lng2) * self.circuity / self.speeds_mps[vehicle]

    def travel_matrix_s(
        self,
        lat_a: npt.ArrayLike,
        lng_a: npt.ArrayLike,
        lat_b: npt.ArrayLike,
        lng_b: npt.ArrayLike,
        vehicle: Vehicle,
    ) -> npt.NDArray[np.float64]:
        dist = haversine_matrix_m(lat_a, lng_a, lat_b, lng_b)
        return dist * (self.circuity / self.speeds_mps[vehicle])
