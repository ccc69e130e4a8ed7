"""What a courier is shown of a job: commerce's details plus distances and ETAs (pure).

A courier decides on an offer by how far the chef is, how far the door is beyond it and what
it pays; on the way it needs the addresses and who to ask for. The details come from
commerce's order events; the legs are computed here from the courier's last fix.
"""

from __future__ import annotations

import math

from geo.distance import haversine_m
from geo.travel import HaversineTravelModel, TravelModel, Vehicle
from streams.events import DeliveryDetails
from streams.wire import CourierJob, Point

__all__ = ["Leg", "courier_job", "job_legs"]

_STRAIGHT = HaversineTravelModel()


class Leg:
    """A leg's straight-line distance (m) and travel time (s)."""

    __slots__ = ("distance_m", "eta_s")

    def __init__(self, distance_m: int, eta_s: int) -> None:
        self.distance_m = distance_m
        self.eta_s = eta_s


def _leg(a: Point, b: Point, model: TravelModel, vehicle: Vehicle) -> Leg:
    travel_s = model.travel_s(a.lat, a.lng, b.lat, b.lng, vehicle)
    if not math.isfinite(travel_s):  # the roads cannot connect them: a straight-line guess
        travel_s = _STRAIGHT.travel_s(a.lat, a.lng, b.lat, b.lng, vehicle)
    return Leg(round(haversine_m(a.lat, a.lng, b.lat, b.lng)), math.ceil(travel_s))


def job_legs(courier: Point | None, pickup: Point, dropoff: Point, *, on_board: bool,
             model: TravelModel, vehicle: Vehicle) -> tuple[Leg | None, Leg]:
    """(to the chef, to the door). Before pickup: courier → chef (None without a fix) and
    chef → door. Once the food is on board: (0, 0) and courier → door (chef → door without
    a fix)."""
    if on_board:
        start = courier if courier is not None else pickup
        return Leg(0, 0), _leg(start, dropoff, model, vehicle)
    to_pickup = _leg(courier, pickup, model, vehicle) if courier is not None else None
    return to_pickup, _leg(pickup, dropoff, model, vehicle)


def courier_job(details: DeliveryDetails | None, legs: tuple[Leg | None, Leg]) -> CourierJob:
    """The job as the courier APIs carry it (empty texts when commerce sent no details)."""
    d = details or DeliveryDetails()
    to_pickup, to_door = legs
    return CourierJob(
        pickup_address=d.pickup_address, dropoff_address=d.dropoff_address,
        chef_name=d.chef_name, customer_name=d.customer_name,
        customer_phone_masked=d.customer_phone_masked, instructions=d.instructions,
        items_count=d.items_count, payout_cents=d.payout_cents,
        pickup_distance_m=to_pickup.distance_m if to_pickup else None,
        pickup_eta_s=to_pickup.eta_s if to_pickup else None,
        dropoff_distance_m=to_door.distance_m, dropoff_eta_s=to_door.eta_s)
