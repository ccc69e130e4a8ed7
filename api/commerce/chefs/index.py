"""What the shared H3 chef index needs to know about a chef, and the hook that tells it.

The index itself lives elsewhere (geo). Commerce calls every registered hook after a chef's
indexable state commits (profile saved, availability toggled, verification changed), and the
lead can rebuild the whole index at start-up from ``chefs.services.chef_index_snapshot``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from api.commerce.chefs.hours import OperatingHours


class ChefIndexState(msgspec.Struct, frozen=True, kw_only=True):
    """A chef as the nearby index sees it."""

    chef_id: str
    indexable: bool
    """approved and online and accepting orders: the chef belongs in the index."""
    latitude: float
    longitude: float
    service_radius_km: float
    operating_hours: OperatingHours
    timezone: str


ChefIndexHook = Callable[[ChefIndexState], Awaitable[None]]
