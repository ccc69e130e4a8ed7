"""The active service zones of this process, polyfilled in memory; ingest checks fixes here.

Every core process keeps its own copy; a change is announced on NATS
(``<ns>.zones.changed``) so all processes reload at once, and a periodic reload covers a
missed announcement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import msgspec

from api.resources import Resources
from geo.zones import PolygonZone, ZoneError, ZoneSet
from streams.jetstream import raise_if_cancelling

log = logging.getLogger("homechef.zones")

RELOAD_S = 30.0
"""Seconds between reloads when no change announcement arrived."""


def changed_subject(namespace: str) -> str:
    """The core NATS subject a zone change is announced on (plain NATS, no stream)."""
    return f"{namespace}.zones.changed"


class ZoneCache:
    """The active zones of this process; ``contains`` is the ingest path's check."""

    def __init__(self) -> None:
        self._set = ZoneSet([])
        self._cells: dict[str, int] = {}

    def in_service_area(self, lat: float, lng: float) -> bool:
        """True when no zone is defined (no restriction) or a zone contains the point."""
        return len(self._set) == 0 or bool(self._set.zones_containing(lat, lng))

    def cells_of(self, zone_id: str) -> int:
        return self._cells.get(zone_id, 0)

    async def reload(self, db: asyncpg.Pool) -> None:
        rows = await db.fetch("SELECT id, geometry FROM service_zones WHERE active")
        zones: list[PolygonZone] = []
        for r in rows:
            try:
                zones.append(await asyncio.to_thread(
                    PolygonZone.from_geojson, str(r["id"]), msgspec.json.decode(r["geometry"])))
            except ZoneError:
                log.exception("stored zone %s is invalid; skipped", r["id"])
        self._set = ZoneSet(zones)
        self._cells = {z.zone_id: len(z.cover.interior) + len(z.cover.boundary) for z in zones}

    async def follow(self, res: Resources, subject: str) -> None:
        """Reload now, on every change announcement, and every RELOAD_S seconds."""
        changed = asyncio.Event()

        async def on_msg(_: Any) -> None:
            changed.set()

        sub = await res.nats.subscribe(subject, cb=on_msg)
        try:
            while True:
                raise_if_cancelling()
                await self.reload(res.db)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RELOAD_S)
                changed.clear()
        finally:
            await sub.unsubscribe()
