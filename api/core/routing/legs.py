"""GET /api/v1/routing/route: one leg between two points, with its geometry, from the
process's travel model (roads when ``ROADS`` is set, else the straight line)."""

from __future__ import annotations

from api.core.routing.schemas import LineString, RouteLeg
from api.problems import Problem as HttpProblem
from api.travel import Travel
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel, Vehicle

__all__ = ["route_leg"]


def route_leg(travel: Travel, from_lat: float, from_lng: float, to_lat: float, to_lng: float,
              vehicle: Vehicle) -> RouteLeg:
    """The fastest leg (roads: OSRM Route, snapped ends included; straight-line: haversine
    x circuity / speed along the straight line).

    Raises:
        HttpProblem: 422 ``unreachable`` when the road network cannot connect the points (one
            is off the map, or no road of the vehicle's profile joins them).
    """
    if travel.roads is None:
        model = travel.model
        circuity = model.circuity if isinstance(model, HaversineTravelModel) else 1.0
        return RouteLeg(
            duration_s=round(model.travel_s(from_lat, from_lng, to_lat, to_lng, vehicle), 1),
            distance_m=round(haversine_m(from_lat, from_lng, to_lat, to_lng) * circuity, 1),
            geometry=LineString(coordinates=[(from_lng, from_lat), (to_lng, to_lat)]),
            vehicle=vehicle.value, model="straight-line")
    leg = travel.roads.route(from_lat, from_lng, to_lat, to_lng, vehicle)
    if leg is None:
        raise HttpProblem(422, "no route on the road network between these points (one is "
                          "off the map, or no road joins them)", code="unreachable")
    return RouteLeg(duration_s=round(leg.duration_s, 1), distance_m=round(leg.distance_m, 1),
                    geometry=LineString(coordinates=leg.coordinates),
                    vehicle=vehicle.value, model="roads")
