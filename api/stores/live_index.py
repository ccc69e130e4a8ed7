"""Redis adapter of the live H3 index (couriers and chefs) — decisions live in ``geo``.

Layout (see geo/index_model.py): per res-9 cell a hash ``member -> "lat,lng,ts"``; per member
a position hash holding its last accepted fix and the keys it is filed under, so a move can
be undone without recomputing anything; per region a last-seen sorted set.

Writes go through one Lua script per batch that applies a fix only when it is newer than the
stored one and moves the member between cell hashes only when its cell changed: redelivered,
replayed or reordered fixes can never move the index backwards. Reads walk k-rings with
`geo.nearby.NearbySearch`, one script call (one round trip) per ring. The scripts are the
``.lua`` files of `api.stores.lua`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import h3
import msgspec
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from api.stores.lua import compose
from geo.cells import LIVE_RES, REGION_RES, cell_of, parent_of
from geo.grid_index import PointGrid, anchor_cell, anchor_memo, search_box
from geo.index_model import (
    cell_key,
    pack_member,
    position_key,
    seen_key,
    status_key,
    unpack_member,
)
from geo.nearby import MemberRow, NearbyResult, NearbySearch

_floats = msgspec.json.Decoder(list[float])
_ints = msgspec.json.Decoder(list[int])

HMGET_CHUNK = 4000
"""Members per HMGET inside the ring and snapshot scripts (`unpack` is bounded by Lua's
stack, 8,000 values)."""

_LUA = "api.stores.lua"


class Located(msgspec.Struct, frozen=True):
    """A member's position to file in the index."""

    member_id: str
    lat: float
    lng: float
    ts_ms: int


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """A member's last accepted fix, as its position hash holds it (kept when `remove`
    takes the member off the grid)."""

    lat: float
    lng: float
    ts_ms: int
    """When the fix was taken, epoch ms UTC."""


def _position(raw: Mapping[bytes, bytes]) -> Position | None:
    """A position hash (HGETALL reply) as its `Position`; None when it holds no fix."""
    lat, lng, ts = raw.get(b"lat"), raw.get(b"lng"), raw.get(b"ts")
    if lat is None or lng is None or ts is None:
        return None
    return Position(lat=float(lat), lng=float(lng), ts_ms=int(ts))  # both parse bytes


class NearbyMember(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    lat: float
    lng: float
    dist_m: float
    status: str
    updated_at_ms: int


Hit = tuple[str, float, float, float, str]
"""A member found by `LiveIndex.nearest_by_status`: (member_id, lat, lng, dist_m, attr), attr
the field asked for with `attr=` ('' when not asked or by the `nearby_many` fallback)."""


class IndexSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Fresh members of some regions with their status, read in one round trip; ids sorted,
    so a member's position in these arrays orders like its id (the live search's tie rule)."""

    ids: list[str]
    lat: npt.NDArray[np.float64]
    lng: npt.NDArray[np.float64]
    ts_ms: npt.NDArray[np.int64]
    status: list[str]
    attr: list[str]
    """Per member, the field `snapshot` was asked to read alongside ('' when none)."""
    cell: list[int] | None = None
    """Per member, its live cell as filed (integer H3 id, 0 when unknown); None when not
    read."""

    def __len__(self) -> int:
        return len(self.ids)

    def with_status(self, status: str) -> npt.NDArray[np.int64]:
        """Indices of the members whose status is `status`."""
        return np.asarray([i for i, s in enumerate(self.status) if s == status],
                          dtype=np.int64)


class NearestFinder:
    """Candidates of many query points per status, as indices into one member table
    (`members`, ids sorted): `nearest(status)` is an (n, width) array of member indices,
    nearest first (ties by id), padded with -1, with the distances alongside."""

    def __init__(self, members: IndexSnapshot, *, grid: PointGrid | None,
                 query_key: npt.NDArray[np.int64], query_lat: npt.NDArray[np.float64],
                 query_lng: npt.NDArray[np.float64], limits: Mapping[str, Sequence[int]],
                 radius_m: float,
                 found: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]
                 | None = None) -> None:
        self.members = members
        self._grid = grid
        self._qkey, self._qlat, self._qlng = query_key, query_lat, query_lng
        self._limits = limits
        self._radius_m = radius_m
        self._found = dict(found or {})

    @classmethod
    def from_hits(cls, found: Mapping[str, list[list[Hit]]], n: int) -> NearestFinder:
        """A finder over search results given as hit lists (the `nearby_many` fallback and
        the live search): the members are every member found, ids sorted."""
        seen: dict[str, Hit] = {}
        for rows in found.values():
            for row in rows:
                for h in row:
                    seen.setdefault(h[0], h)
        ids = sorted(seen)
        index = {cid: i for i, cid in enumerate(ids)}
        members = IndexSnapshot(
            ids=ids, lat=np.asarray([seen[c][1] for c in ids], dtype=np.float64),
            lng=np.asarray([seen[c][2] for c in ids], dtype=np.float64),
            ts_ms=np.zeros(len(ids), dtype=np.int64), status=[""] * len(ids),
            attr=[seen[c][4] for c in ids])
        arrays = {}
        for status, rows in found.items():
            width = max(1, max((len(r) for r in rows), default=1))
            cand = np.full((n, width), -1, dtype=np.int64)
            dist = np.full((n, width), np.inf)
            for i, row in enumerate(rows):
                for slot, h in enumerate(row):
                    cand[i, slot] = index[h[0]]
                    dist[i, slot] = h[3]
            arrays[status] = (cand, dist)
        empty = np.zeros(0, dtype=np.float64)
        return cls(members, grid=None, query_key=np.zeros(0, dtype=np.int64), query_lat=empty,
                   query_lng=empty, limits={}, radius_m=0.0, found=arrays)

    def nearest(self, status: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(member indices, distances in metres) per query point for `status`, searched on
        first use."""
        got = self._found.get(status)
        if got is None:
            assert self._grid is not None, f"{status} was not searched"
            got = self._found[status] = self._grid.nearest(
                self.members.with_status(status), self._qkey, self._qlat, self._qlng,
                limit=np.asarray(self._limits[status], dtype=np.int64),
                radius_m=self._radius_m)
        return got

    def hits(self, status: str) -> list[list[Hit]]:
        """`nearest(status)` as hit lists (member id, lat, lng, distance, attribute)."""
        cand, dist = self.nearest(status)
        m = self.members
        lat, lng = m.lat.tolist(), m.lng.tolist()
        return [[(m.ids[c], lat[c], lng[c], d, m.attr[c])
                 for c, d in zip(crow, drow, strict=True) if c >= 0]
                for crow, drow in zip(cand.tolist(), dist.tolist(), strict=True)]


class LiveIndex:
    """One kind of member (couriers or chefs) on the res-9 grid, under ``prefix``."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.status_key = status_key(prefix)
        self.epoch_key = f"{prefix}:epoch"
        chunk = {"HMGET_CHUNK": HMGET_CHUNK}
        self._upsert = redis.register_script(compose(_LUA, "upsert"))
        self._ring = redis.register_script(compose(_LUA, "ring", prelude=chunk))
        self._remove = redis.register_script(compose(_LUA, "remove"))
        self._snapshot = redis.register_script(compose(_LUA, "snapshot", prelude=chunk))
        self._pos_prefix = position_key("", prefix=prefix)

    async def upsert(self, items: Iterable[Located]) -> int:
        """File positions (newest per member wins); returns how many changed the index."""
        argv: list[Any] = [self._pos_prefix]
        for it in items:
            cell = cell_of(it.lat, it.lng, LIVE_RES)
            argv += (
                it.member_id,
                cell_key(cell, prefix=self.prefix),
                seen_key(parent_of(cell, REGION_RES), prefix=self.prefix),
                pack_member(it.lat, it.lng, it.ts_ms),
                it.ts_ms,
                cell,
                repr(it.lat),
                repr(it.lng),
            )
        if len(argv) == 1:
            return 0
        return int(await self._upsert(args=argv))

    async def remove(self, member_id: str, *, if_not_newer_than_ms: int | None = None) -> bool:
        """Take a member off the grid (its last position is kept for validation)."""
        ts = "" if if_not_newer_than_ms is None else str(if_not_newer_than_ms)
        key = position_key(member_id, prefix=self.prefix)
        return bool(await self._remove(keys=[key], args=[member_id, ts]))

    async def set_status(self, member_id: str, status: str) -> None:
        await self.redis.hset(self.status_key, member_id, status)

    async def status_of(self, member_ids: Sequence[str]) -> list[str]:
        """Each member's status ('' when it has none), one HMGET."""
        if not member_ids:
            return []
        raw: list[bytes | None] = await self.redis.hmget(  # type: ignore[assignment]
            self.status_key, member_ids)
        return [s.decode() if s else "" for s in raw]

    async def statuses(self) -> dict[str, str]:
        """Every member's status, member -> status (one HGETALL)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[assignment]
            self.status_key)
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def positions(self, member_ids: Sequence[str]) -> list[Position | None]:
        """`position` of each member, in one pipeline (one connection, one round trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for member_id in member_ids:
                pipe.hgetall(position_key(member_id, prefix=self.prefix))
            raws: list[dict[bytes, bytes]] = await pipe.execute()
        return [_position(raw) for raw in raws]

    async def position(self, member_id: str) -> Position | None:
        """The member's last accepted fix (None: it never sent one)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[assignment]
            position_key(member_id, prefix=self.prefix)
        )
        return _position(raw)

    async def snapshot(
        self,
        regions: Sequence[str],
        *,
        now_ms: int,
        stale_s: float,
        statuses: Sequence[str],
        box: tuple[float, float, float, float] = (-90.0, 90.0, -180.0, 180.0),
        attr: tuple[str, str] = ("", ""),
        attr_hash: str = "",
    ) -> IndexSnapshot:
        """Every member of `regions` (res-4) that is fresh (seen within `stale_s`), has one of
        `statuses` and lies in `box` (lat_lo, lat_hi, lng_lo, lng_hi; a prefilter, so give
        it a margin): one script per region, all in one pipeline (one round trip). `attr`
        = (key prefix, field) also reads HGET <prefix><member id> <field> per member (e.g.
        the dispatch courier hash's vehicle); with `attr_hash` (a hash member -> value kept
        equal to that field) the value comes from one HMGET of it per 4,000 members, and
        from the member's own hash only when missing there. The members' live cells come
        along (as filed with their positions).

        The positions are those `nearby` reads (the position hash is written in the same
        script as the cell hash, from the same strings), so an in-memory search over the
        snapshot gives `nearby`'s answer; see `geo.grid_index.nearest_within`.
        """
        if not statuses:
            raise ValueError("snapshot needs the statuses to keep")
        min_ts = now_ms - stale_s * 1000.0 if math.isfinite(stale_s) else -1e15
        args = [self._pos_prefix, self.status_key, repr(min_ts), *map(repr, box), *attr,
                attr_hash, *statuses]
        async with self.redis.pipeline(transaction=False) as pipe:
            for region in regions:
                await self._snapshot(keys=[seen_key(region, prefix=self.prefix)], args=args,
                                     client=pipe)
            replies = await pipe.execute()
        ids: list[str] = []
        lat_parts: list[bytes] = []
        lng_parts: list[bytes] = []
        ts_parts: list[bytes] = []
        sts: list[str] = []
        ats: list[str] = []
        cells: list[str] = []
        for id_b, lat_b, lng_b, ts_b, st_b, at_b, cell_b in replies:
            if not id_b:
                continue
            ids += id_b.decode().split("\n")
            lat_parts.append(lat_b)
            lng_parts.append(lng_b)
            ts_parts.append(ts_b)
            sts += st_b.decode().split("\n")
            ats += at_b.decode().split("\n")
            cells += cell_b.decode().split("\n")
        # The stored strings are repr() floats and integers: JSON numbers, parsed exactly.
        lat = np.asarray(_floats.decode(b"[" + b",".join(lat_parts) + b"]"), dtype=np.float64)
        lng = np.asarray(_floats.decode(b"[" + b",".join(lng_parts) + b"]"), dtype=np.float64)
        ts = np.asarray(_ints.decode(b"[" + b",".join(ts_parts) + b"]"), dtype=np.int64)
        # The live search drops a member when ts < now - stale (as floats): same test here.
        fresh = (ts.astype(np.float64) >= min_ts).tolist()
        order = sorted((i for i in range(len(ids)) if fresh[i]), key=ids.__getitem__)
        sel = np.asarray(order, dtype=np.int64)
        return IndexSnapshot(ids=[ids[i] for i in order], lat=lat[sel], lng=lng[sel],
                             ts_ms=ts[sel], status=[sts[i] for i in order],
                             attr=[ats[i] for i in order],
                             cell=[int(cells[i], 16) if cells[i] else 0 for i in order])

    async def nearest_finder(
        self,
        points: Sequence[tuple[float, float]],
        *,
        regions: Sequence[str],
        radius_m: float,
        limits: Mapping[str, Sequence[int]],
        now_ms: int,
        stale_s: float = math.inf,
        attr: tuple[str, str] = ("", ""),
        attr_hash: str = "",
        anchor: int | None = None,
    ) -> NearestFinder:
        """What `nearest_by_status` answers, as member indices into one table (a snapshot):
        one read, then each status searched in memory when asked (`NearestFinder.nearest`),
        so a caller can start other I/O between two statuses' searches. Falls back to
        `nearby_many` (every status at once) when the points are too spread for one local
        IJ frame.

        `anchor`: the res-9 cell (integer id) of the grid's local IJ frame, near the points
        (default: the cell of their mean). With the same anchor from call to call (a
        region's centre child), the cells' local IJ keys are remembered between calls
        (`geo.grid_index.anchor_memo`)."""
        qlat = np.asarray([p[0] for p in points], dtype=np.float64)
        qlng = np.asarray([p[1] for p in points], dtype=np.float64)
        if not points:
            return NearestFinder.from_hits({status: [] for status in limits}, 0)
        snap = await self.snapshot(regions, now_ms=now_ms, stale_s=stale_s,
                                   statuses=list(limits),
                                   box=search_box(qlat, qlng, radius_m), attr=attr,
                                   attr_hash=attr_hash)
        try:
            if anchor is None:
                anchor, cache = anchor_cell(float(qlat.mean()), float(qlng.mean())), None
            else:
                cache = anchor_memo(anchor)
            grid = PointGrid(snap.lat, snap.lng, anchor, cells=snap.cell, cache=cache)
            qkey = grid.query_keys(qlat, qlng)
        except h3.H3BaseException:
            found: dict[str, list[list[Hit]]] = {}
            for status, lim in limits.items():
                many = await self.nearby_many(points, radius_m=radius_m, limit=lim,
                                              now_ms=now_ms, stale_s=stale_s,
                                              statuses=[status])
                found[status] = [[(m.member_id, m.lat, m.lng, m.dist_m, "") for m in ms]
                                 for ms, _ in many]
            return NearestFinder.from_hits(found, len(points))
        return NearestFinder(snap, grid=grid, query_key=qkey, query_lat=qlat, query_lng=qlng,
                             limits=limits, radius_m=radius_m)

    async def nearest_by_status(
        self,
        points: Sequence[tuple[float, float]],
        *,
        regions: Sequence[str],
        radius_m: float,
        limits: Mapping[str, Sequence[int]],
        now_ms: int,
        stale_s: float = math.inf,
        attr: tuple[str, str] = ("", ""),
        attr_hash: str = "",
    ) -> dict[str, list[list[Hit]]]:
        """For each status in `limits` and each point, the first `limits[status][i]` members
        with that status within `radius_m`, nearest first — what `nearby_many(...,
        statuses=[status])` returns — from one `snapshot` of `regions` (one round trip)
        searched in memory (`geo.grid_index`). `regions` must hold every member within
        `radius_m` of the points (`geo.cells.regions_near` of the points' region).

        Falls back to `nearby_many` when the points are too spread for one local IJ frame.
        """
        finder = await self.nearest_finder(points, regions=regions, radius_m=radius_m,
                                           limits=limits, now_ms=now_ms, stale_s=stale_s,
                                           attr=attr, attr_hash=attr_hash)
        return {status: finder.hits(status) for status in limits}

    async def nearby_many(
        self,
        points: Sequence[tuple[float, float]],
        *,
        radius_m: float,
        limit: int | Sequence[int],
        now_ms: int,
        stale_s: float = math.inf,
        statuses: Sequence[str] | None = None,
    ) -> list[tuple[list[NearbyMember], NearbyResult]]:
        """`nearby` for many points at once (a dispatch round's orders): the searches grow
        in lockstep and each step's ring reads go out in one pipeline, so a round costs about
        as many Redis round trips as one search, not one search's per point. Same results as
        calling `nearby` per point."""
        wanted = None if not statuses else {s.encode() for s in statuses}
        limits = [limit] * len(points) if isinstance(limit, int) else list(limit)
        stale = stale_s if math.isfinite(stale_s) else 1e15
        searches = [NearbySearch(lat, lng, radius_m=radius_m, limit=k, now_ms=now_ms,
                                 stale_s=stale)
                    for (lat, lng), k in zip(points, limits, strict=True)]
        status_of: dict[str, str] = {}
        active = list(range(len(searches)))
        while active:
            step: list[tuple[int, list[str]]] = []
            for i in active:
                cells = searches[i].next_cells()
                if cells is not None:
                    step.append((i, [cell_key(c, prefix=self.prefix) for c in cells]))
            if not step:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for _, keys in step:
                    await self._ring(keys=keys, args=[self.status_key], client=pipe)
                flats = await pipe.execute()
            for (i, _), flat in zip(step, flats, strict=True):
                rows: list[MemberRow] = []
                for j in range(0, len(flat), 3):
                    status = flat[j + 2]
                    if wanted is not None and status not in wanted:
                        continue
                    member = flat[j].decode()
                    lat, lng_, ts = unpack_member(flat[j + 1])
                    rows.append((member, lat, lng_, ts))
                    status_of[member] = bytes(status).decode() or "unknown"
                searches[i].add_members(rows)
            active = [i for i, _ in step]
        out = []
        for search in searches:
            result = search.result()
            out.append(([
                NearbyMember(member_id=h.id, lat=h.lat, lng=h.lng, dist_m=h.dist_m,
                             status=status_of.get(h.id, "unknown"),
                             updated_at_ms=h.updated_at_ms)
                for h in result.hits], result))
        return out

    async def nearby(
        self,
        lat: float,
        lng: float,
        *,
        radius_m: float,
        limit: int,
        now_ms: int,
        stale_s: float = math.inf,
        statuses: Sequence[str] | None = None,
    ) -> tuple[list[NearbyMember], NearbyResult]:
        """Members within ``radius_m`` sorted by distance; ``statuses`` filters before ``limit``."""
        wanted = None if not statuses else {s.encode() for s in statuses}
        search = NearbySearch(lat, lng, radius_m=radius_m, limit=limit, now_ms=now_ms,
                              stale_s=stale_s if math.isfinite(stale_s) else 1e15)
        status_of: dict[str, str] = {}
        while (cells := search.next_cells()) is not None:
            keys = [cell_key(c, prefix=self.prefix) for c in cells]
            flat = await self._ring(keys=keys, args=[self.status_key])
            rows: list[MemberRow] = []
            for j in range(0, len(flat), 3):
                status = flat[j + 2]
                if wanted is not None and status not in wanted:
                    continue
                member = flat[j].decode()
                lat, lng_, ts = unpack_member(flat[j + 1])
                rows.append((member, lat, lng_, ts))
                status_of[member] = bytes(status).decode() or "unknown"
            search.add_members(rows)
        result = search.result()
        members = [
            NearbyMember(member_id=h.id, lat=h.lat, lng=h.lng, dist_m=h.dist_m,
                         status=status_of.get(h.id, "unknown"), updated_at_ms=h.updated_at_ms)
            for h in result.hits
        ]
        return members, result
