"""Demo cities on real roads: which extract, where the city lies, its road data under
DATA_DIR (built on first use), and placing chefs, customers and couriers on its streets.

`homechef simulate --city monaco` and `homechef up --demo` use the Monaco extract shipped in
`roads/data/` (© OpenStreetMap contributors, ODbL 1.0).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from api.simulator.city import Point
from geo.distance import haversine_m
from geo.travel import Vehicle
from roads.build import SAMPLE_EXTRACT, build_roads, file_sha256
from roads.manifest import RoadsError, read_manifest

__all__ = ["CITIES", "DemoCity", "city_roads", "road_snapper"]


class DemoCity(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    extract: Path
    center: Point
    radius_m: float
    """Chefs, customers and couriers are placed within this distance of `center`."""


CITIES: dict[str, DemoCity] = {
    # Monte-Carlo, La Condamine and Port Hercule: the harbour and the one-way boulevards
    # make road times differ from the straight line (tests/monaco.py).
    "monaco": DemoCity(name="monaco", extract=SAMPLE_EXTRACT, center=Point(43.7372, 7.4236),
                       radius_m=1000.0),
}

MAX_PLACE_SNAP_M = 60.0
"""A drawn spot farther than this from a street is drawn again (the sea, a park, a cliff):
the city's places are at the roadside."""
MAX_BIKE_GAP_M = 10.0
"""A street spot whose nearest bicycle way is farther than this is drawn again (a tunnel, an
expressway bikes may not ride): a bike's route there would end with a long cut across."""


def city_roads(city: DemoCity, data_dir: Path,
               progress: Callable[[str], None] = lambda _line: None) -> Path:
    """The city's road data (car and bicycle, MLD) in ``DATA_DIR/roads/<name>``, built on
    first use and again when the extract changed. A lock file keeps two processes from
    building the same folder at once (the second waits, then finds it built)."""
    out = data_dir / "roads" / city.name
    out.mkdir(parents=True, exist_ok=True)
    with (out.parent / f".{city.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(RoadsError):
                manifest = read_manifest(out)
                if (manifest.source_sha256 == file_sha256(city.extract)
                        and {"car", "bicycle"} <= set(manifest.profiles)):
                    return out
            progress(f"building the road data of {city.name} in {out} (once) ...")
            build_roads(city.extract, out, profiles=("car", "bicycle"), progress=progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


@contextlib.contextmanager
def road_snapper(directory: Path, center: Point) -> Iterator[Callable[[Point], Point | None]]:
    """A function that puts a spot on the nearest street (car network) that bikes ride too
    and cars and bikes can reach from the city's centre and leave again, or answers None
    (farther than `MAX_PLACE_SNAP_M` from a street, no bicycle way within `MAX_BIKE_GAP_M`,
    or a street cut off from the centre). The road data
    is loaded in this process for as long as the context lasts."""
    from roads.model import RoadTravelModel

    model = RoadTravelModel.open(directory)
    try:
        hub = model.nearest(center.lat, center.lng, Vehicle.CAR)
        if hub is None:
            raise RoadsError(f"the city centre {center} is off the map of {directory}")
        a = Point(hub[0], hub[1])

        def snap(p: Point) -> Point | None:
            near = model.nearest(p.lat, p.lng, Vehicle.CAR)
            if near is None or near[2] > MAX_PLACE_SNAP_M:
                return None
            q = Point(near[0], near[1])
            bike = model.nearest(q.lat, q.lng, Vehicle.BIKE)
            if bike is None or bike[2] > MAX_BIKE_GAP_M:
                return None
            for vehicle in (Vehicle.CAR, Vehicle.BIKE):
                there = model.travel_s(a.lat, a.lng, q.lat, q.lng, vehicle)
                back = model.travel_s(q.lat, q.lng, a.lat, a.lng, vehicle)
                # A street "reached" only by walking far from another is not reached.
                if not (there < 3600 and back < 3600):
                    return None
            if haversine_m(q.lat, q.lng, p.lat, p.lng) > MAX_PLACE_SNAP_M:
                return None
            return q

        yield snap
    finally:
        model.close()
