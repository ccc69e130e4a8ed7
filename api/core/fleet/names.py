"""Couriers' names for the fleet console: the display name their token carries (commerce
puts it there), kept in one Redis hash when they go online. Core never reads commerce's
users; a courier never seen going online is shown by its id."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

__all__ = ["CourierNames"]

MAX_NAME = 80


class CourierNames:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self.redis = redis
        self.key = key

    async def remember(self, courier_id: str, name: str) -> None:
        if name:
            await self.redis.hset(self.key, courier_id, name[:MAX_NAME])

    async def of(self, courier_ids: Sequence[str]) -> dict[str, str]:
        """The names known of ``courier_ids`` (the others left out)."""
        if not courier_ids:
            return {}
        raws: list[bytes | str | None] = await self.redis.hmget(self.key, list(courier_ids))
        return {cid: raw.decode() if isinstance(raw, bytes) else raw
                for cid, raw in zip(courier_ids, raws, strict=True) if raw}
