"""Which OSRM profile (the wheel's Lua files) each vehicle rides."""

from __future__ import annotations

from typing import Literal

from geo.travel import Vehicle

__all__ = ["ALGORITHMS", "PROFILES", "PROFILE_OF", "Algorithm", "Profile", "needed_profiles"]

Profile = Literal["car", "bicycle", "foot"]
PROFILES: tuple[Profile, ...] = ("car", "bicycle", "foot")
"""Built by default; `foot` serves walkers (no dispatch vehicle walks yet)."""

Algorithm = Literal["mld", "ch"]
ALGORITHMS: tuple[Algorithm, ...] = ("mld", "ch")
"""``mld``: extract, partition, customize (segment speeds can be re-customised in seconds);
``ch``: extract, contract (faster queries, a full rebuild for any speed change)."""

# A scooter rides the car network (its one-ways, no footways); its speed differs by a factor
# (`RoadTravelModel.scooter_factor`), not by a profile of its own.
PROFILE_OF: dict[Vehicle, Profile] = {
    Vehicle.BIKE: "bicycle",
    Vehicle.SCOOTER: "car",
    Vehicle.CAR: "car",
}


def needed_profiles() -> tuple[Profile, ...]:
    """The profiles the dispatch vehicles need, in `PROFILES` order."""
    used = set(PROFILE_OF.values())
    return tuple(p for p in PROFILES if p in used)
