"""Chefs on the shared H3 index (the same `LiveIndex` core uses for couriers).

Commerce keeps it current through the chef-index hook: an indexable chef (approved, online,
accepting orders) is filed at its location; any other chef is taken off the grid. The index
is rebuilt at start-up from PostgreSQL, so losing Redis loses nothing.
"""

from __future__ import annotations

import time

from api.commerce.chefs.index import ChefIndexState
from api.resources import Resources
from api.stores.live_index import LiveIndex, Located, NearbyMember

MAX_CANDIDATES = 500


class ChefGeoIndex:
    def __init__(self) -> None:
        self._index: LiveIndex | None = None

    async def bind(self, res: Resources) -> None:
        self._index = LiveIndex(res.redis, f"{res.settings.server.namespace}:chefgeo")

    @property
    def index(self) -> LiveIndex:
        if self._index is None:
            raise RuntimeError("chef index used before start-up bound it")
        return self._index

    async def on_change(self, state: ChefIndexState) -> None:
        """The chef-index hook: file or remove one chef."""
        if state.indexable:
            await self.index.upsert([Located(state.chef_id, state.latitude, state.longitude,
                                             time.time_ns() // 1_000_000)])
        else:
            await self.index.remove(state.chef_id)

    async def near(self, lat: float, lng: float, radius_m: float) -> list[NearbyMember]:
        members, _ = await self.index.nearby(lat, lng, radius_m=radius_m,
                                             limit=MAX_CANDIDATES,
                                             now_ms=time.time_ns() // 1_000_000)
        return members
