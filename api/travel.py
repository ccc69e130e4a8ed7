"""The travel model of this process: roads when ``ROADS`` names a built folder, else the
straight-line model. Chosen once at start-up; every consumer (dispatch costs, stacking and
queue entry, routing matrices, tracking ETAs, the route endpoint) receives the same one."""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from api.settings import Settings
from dispatch.costs import HaversinePairTravel, PairTravelModel
from geo.travel import HaversineTravelModel, TravelModel
from roads.model import RoadTravelModel

__all__ = ["Travel", "TravelInfo", "open_travel"]

log = logging.getLogger("homechef.travel")


class TravelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Which travel model is live (``/health``, the start-up log)."""

    model: Literal["roads", "straight-line"]
    detail: str


class Travel:
    """One process's travel model in the forms its consumers take: `model` (points and
    matrices), `pairs` (dispatch's element-wise form) and `roads` (routes with geometry;
    None without road data)."""

    __slots__ = ("info", "model", "pairs", "roads")

    def __init__(self, model: TravelModel, pairs: PairTravelModel, info: TravelInfo,
                 roads: RoadTravelModel | None = None) -> None:
        self.model = model
        self.pairs = pairs
        self.info = info
        self.roads = roads

    def close(self) -> None:
        """At shutdown: release the road engines (see `RoadTravelModel.close`)."""
        if self.roads is not None:
            self.roads.close()


def straight_line_travel() -> Travel:
    model = HaversineTravelModel()
    return Travel(model, HaversinePairTravel(model), TravelInfo(
        model="straight-line",
        detail=f"haversine x {model.circuity} / vehicle speed (ROADS not set)"))


def open_travel(settings: Settings) -> Travel:
    """Load the road folder of ``ROADS`` (raises `roads.manifest.RoadsError` when it cannot),
    or the straight-line model when it is unset; log which one is live."""
    r = settings.roads
    if r.path is None:
        travel = straight_line_travel()
    else:
        road = RoadTravelModel.open(r.path, snap_speed_mps=r.snap_speed_mps,
                                    max_snap_m=r.max_snap_m, scooter_factor=r.scooter_factor,
                                    cache_pairs=r.cache_pairs)
        travel = Travel(road, road, TravelInfo(model="roads", detail=road.describe()), road)
    log.info("travel model: %s: %s", travel.info.model, travel.info.detail)
    return travel
