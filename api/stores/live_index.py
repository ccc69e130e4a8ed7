"""Redis adapter of the live H3 index (couriers and chefs) — decisions live in ``geo``.

Layout (see geo/index_model.py): per res-9 cell a hash listing its members; per region a
position hash holding each member's last accepted fix and the cell it is filed under, so a
move can be undone without recomputing anything, and a last-seen sorted set.

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
import h3.api.basic_int as h3i
import msgspec
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from api.stores.lua import compose
from api.stores.scripts import load_for
from geo.cells import (
    LIVE_RES,
    REGION_RES,
    region_of_cell,
)
from geo.grid_index import PointGrid, anchor_cell, anchor_memo, search_box
from geo.index_model import (
    cell_key,
    cell_key_prefix,
    epoch_key,
    parse_where,
    positions_key,
    regions_key,
    seen_key,
    status_key,
    unpack_position,
    where_key,
)
from geo.nearby import MemberRow, NearbyResult, NearbySearch

_floats = msgspec.json.Decoder(list[float])
_ints = msgspec.json.Decoder(list[int])

HMGET_CHUNK = 4000
"""Members per HMGET inside the ring and snapshot scripts (`unpack` is bounded by Lua's
stack, 8,000 values)."""

_LUA = "api.stores.lua"

CELL_MEMO = 1 << 16
"""Live cells whose region and key `LiveIndex.upsert` keeps at hand."""


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
        self.epoch_key = epoch_key(prefix)
        self.where_key = where_key(prefix)
        self.regions_key = regions_key(prefix)
        chunk = {"HMGET_CHUNK": HMGET_CHUNK}
        self._upsert = redis.register_script(compose(_LUA, "upsert"))
        self._where = redis.register_script(compose(_LUA, "where"))
        self._unlist = redis.register_script(compose(_LUA, "unlist"))
        self._ring = redis.register_script(compose(_LUA, "ring", prelude=chunk))
        self._remove = redis.register_script(compose(_LUA, "remove"))
        self._snapshot = redis.register_script(compose(_LUA, "snapshot", prelude=chunk))
        self._statuses = redis.register_script(compose(_LUA, "statuses", prelude=chunk))
        self._cells: dict[int, tuple[str, str]] = {}
        """Live cell (h3 int) -> (region, cell key): `_cell_entry`."""

    def _region_keys(self, region: str) -> list[str]:
        return [seen_key(region, prefix=self.prefix), positions_key(region, prefix=self.prefix)]

    async def upsert(self, items: Iterable[Located]) -> int:
        """File positions (newest per member wins); returns how many changed the index.
        A member id may not hold "|" or a line break (ValueError, nothing filed).

        One script per region touched (a region's keys share a slot), all in one pipeline.
        Members new to a region are then recorded in the directory, and their copies in the
        regions they left are taken off unless newer (the order of two processes' fixes of
        one member cannot move it backwards)."""
        newest: dict[str, Located] = {}
        for it in items:
            had = newest.get(it.member_id)
            if had is None or it.ts_ms > had.ts_ms:
                newest[it.member_id] = it
        if not newest:
            return 0
        if any("|" in m or "\n" in m for m in newest):  # they delimit the script's lines
            raise ValueError("a member id holds '|' or a line break")
        # Per region: KEYS (its seen and position keys, then each fix's cell key) and the
        # fixes as one text argument, a line "id|lat,lng,ts" each (`pack_member` after the
        # bar), in KEYS order. One argument instead of four per fix: redis-py encodes and
        # packs every argument in Python, which was the indexer's largest cost.
        by_region: dict[str, tuple[list[str], list[str]]] = {}
        cells = self._cells
        for it in newest.values():
            lat, lng = it.lat, it.lng
            h = h3i.latlng_to_cell(lat, lng, LIVE_RES)
            known = cells.get(h)
            if known is None:
                known = self._cell_entry(h)
            region, key = known
            group = by_region.get(region)
            if group is None:
                group = by_region[region] = (self._region_keys(region), [])
            group[0].append(key)
            group[1].append(f"{it.member_id}|{lat!r},{lng!r},{it.ts_ms}\n")
        groups = [(keys, [cell_key_prefix(region, prefix=self.prefix), "".join(lines)])
                  for region, (keys, lines) in by_region.items()]
        replies = await self._upsert_regions(groups)
        applied = 0
        entered: list[Any] = []
        for region, (n, entrants) in zip(by_region, replies, strict=True):
            applied += int(n)
            for j in range(0, len(entrants), 2):
                entered += (entrants[j], region, entrants[j + 1])
        if entered:
            left = await self._where(keys=[self.where_key, self.regions_key], args=entered)
            applied -= await self._move_out(
                left, {entered[j]: entered[j + 1] for j in range(0, len(entered), 3)})
        return applied

    def _cell_entry(self, h: int) -> tuple[str, str]:
        """(region, cell key) of a live cell, kept for the next fixes in it (a city has a few
        thousand live cells; the memo starts over past `CELL_MEMO` of them)."""
        if len(self._cells) >= CELL_MEMO:
            self._cells.clear()
        cell = format(h, "x")
        region = format(h3i.cell_to_parent(h, REGION_RES), "x")
        entry = self._cells[h] = (region, cell_key(cell, prefix=self.prefix))
        return entry

    async def _upsert_regions(self, groups: list[tuple[list[str], list[str]]]) -> list[Any]:
        """One upsert script call per region, in one pipeline, by EVALSHA alone: the script
        is loaded only when a server answers NOSCRIPT (a new, restarted or promoted node),
        then the pipeline runs again (the newer-than guard makes a second run harmless).
        redis-py would check (plain pipeline: SCRIPT EXISTS) or load (cluster pipeline:
        SCRIPT LOAD to every primary) before every pipeline, one more round trip per batch
        the indexer applies."""
        script = self._upsert
        for attempt in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                for keys, argv in groups:
                    pipe.evalsha(script.sha, len(keys), *keys, *argv)
                try:
                    return list(await pipe.execute())
                except NoScriptError:
                    if attempt:
                        raise
            await script.registered_client.script_load(script.script)
        raise AssertionError("unreachable")

    async def _move_out(self, left: Sequence[bytes], entered: Mapping[bytes, str]) -> int:
        """Settle members that entered a region (`entered`: id -> region) while listed in
        others (`left`: (id, region, ts) triples from `where.lua`, one per other region):
        each copy there older than the fix that moved the member is taken off. A copy there
        not older means the move was the stale fix (two processes applied one member's
        fixes out of order): the copy just filed goes instead. The directory then forgets
        the regions emptied. Returns how many filed fixes turned out stale."""
        by_region: dict[str, list[Any]] = {}
        for j in range(0, len(left), 3):
            by_region.setdefault(left[j + 1].decode(), []).extend((left[j], left[j + 2]))
        gone = await self._take_off(by_region, forget=True, strict=True)
        taken = {(gone[j], gone[j + 1]) for j in range(0, len(gone), 3)}
        stale: dict[str, list[Any]] = {}
        lost: set[bytes] = set()
        for j in range(0, len(left), 3):
            member = left[j]
            if (member, left[j + 1].decode()) not in taken and member not in lost:
                lost.add(member)
                stale.setdefault(entered[member], []).extend((member, left[j + 2]))
        undone = await self._take_off(stale, forget=True, strict=False) if stale else []
        if gone or undone:
            await self._unlist(keys=[self.where_key], args=[*gone, *undone])
        return len(undone) // 3

    async def _take_off(self, by_region: Mapping[str, Sequence[Any]], *, forget: bool,
                        strict: bool) -> list[Any]:
        """Run `remove.lua` per region ((id, ts guard) pairs); (id, region, ts) of the
        copies taken off."""
        regions = list(by_region)
        async with self.redis.pipeline(transaction=False) as pipe:
            await load_for(self._remove, pipe)
            for region in regions:
                await self._remove(keys=self._region_keys(region),
                                   args=[cell_key_prefix(region, prefix=self.prefix),
                                         "1" if forget else "0", "1" if strict else "0",
                                         *by_region[region]],
                                   client=pipe)
            replies = await pipe.execute()
        gone: list[Any] = []
        for region, done in zip(regions, replies, strict=True):
            pairs = by_region[region]
            for k, flag in enumerate(done):
                if flag:
                    gone += (pairs[2 * k], region, pairs[2 * k + 1])
        return gone

    async def _regions_of(self, member_ids: Sequence[str]) -> list[dict[str, int]]:
        if not member_ids:
            return []
        raw: list[bytes | None] = await self.redis.hmget(  # type: ignore[assignment]
            self.where_key, member_ids)
        return [parse_where(v) for v in raw]

    async def remove(self, member_id: str, *, if_not_newer_than_ms: int | None = None) -> bool:
        """Take a member off the grid (its last position is kept for validation); with
        `if_not_newer_than_ms`, only if its fix is not newer than that."""
        ts = "" if if_not_newer_than_ms is None else str(if_not_newer_than_ms)
        (regions,) = await self._regions_of([member_id])
        if not regions:
            return False
        gone = await self._take_off({r: [member_id, ts] for r in regions}, forget=False,
                                    strict=False)
        return bool(gone)

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
        """`position` of each member: the directory in one HMGET, then one HMGET per region
        in one pipeline (two round trips whatever the count)."""
        listed = await self._regions_of(member_ids)
        by_region: dict[str, list[str]] = {}
        for member_id, regions in zip(member_ids, listed, strict=True):
            for region in regions:
                by_region.setdefault(region, []).append(member_id)
        best: dict[str, Position] = {}
        if by_region:
            names = list(by_region)
            async with self.redis.pipeline(transaction=False) as pipe:
                for region in names:
                    pipe.hmget(positions_key(region, prefix=self.prefix), by_region[region])
                replies = await pipe.execute()
            for region, got in zip(names, replies, strict=True):
                for member_id, raw in zip(by_region[region], got, strict=True):
                    if raw is None:
                        continue
                    lat, lng, ts, _ = unpack_position(raw)
                    had = best.get(member_id)
                    if had is None or ts > had.ts_ms:
                        best[member_id] = Position(lat=lat, lng=lng, ts_ms=ts)
        return [best.get(m) for m in member_ids]

    async def position(self, member_id: str) -> Position | None:
        """The member's last accepted fix (None: it never sent one)."""
        (pos,) = await self.positions([member_id])
        return pos

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

        The positions are those `nearby` reads (both read the position hash), so an
        in-memory search over the snapshot gives `nearby`'s answer; see
        `geo.grid_index.nearest_within`.
        """
        if not statuses:
            raise ValueError("snapshot needs the statuses to keep")
        ids, lat, lng, ts, cells, order = await self._fresh_rows(regions, now_ms, stale_s, box)
        sts, ats = await self._statuses_of([ids[i] for i in order], statuses, attr, attr_hash)
        keep = [k for k, st in enumerate(sts) if st in statuses]
        sel = np.asarray([order[k] for k in keep], dtype=np.int64)
        return IndexSnapshot(ids=[ids[order[k]] for k in keep], lat=lat[sel], lng=lng[sel],
                             ts_ms=ts[sel], status=[sts[k] for k in keep],
                             attr=[ats[k] for k in keep],
                             cell=[int(cells[order[k]], 16) if cells[order[k]] else 0
                                   for k in keep])

    async def _fresh_rows(
        self, regions: Sequence[str], now_ms: int, stale_s: float,
        box: tuple[float, float, float, float],
    ) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64],
               npt.NDArray[np.int64], list[str], list[int]]:
        """The rows of `regions`' fresh members in `box` (one script per region, in one
        pipeline): ids, lat, lng, ts and cells as read, and `order`, the row of each member
        once (its newest copy), by id."""
        min_ts = now_ms - stale_s * 1000.0 if math.isfinite(stale_s) else -1e15
        args = [repr(min_ts), *map(repr, box)]
        async with self.redis.pipeline(transaction=False) as pipe:
            await load_for(self._snapshot, pipe)
            for region in regions:
                await self._snapshot(keys=self._region_keys(region), args=args, client=pipe)
            replies = await pipe.execute()
        ids: list[str] = []
        lat_parts: list[bytes] = []
        lng_parts: list[bytes] = []
        ts_parts: list[bytes] = []
        cells: list[str] = []
        for id_b, lat_b, lng_b, ts_b, cell_b in replies:
            if not id_b:
                continue
            ids += id_b.decode().split("\n")
            lat_parts.append(lat_b)
            lng_parts.append(lng_b)
            ts_parts.append(ts_b)
            cells += cell_b.decode().split("\n")
        # The stored strings are repr() floats and integers: JSON numbers, parsed exactly.
        lat = np.asarray(_floats.decode(b"[" + b",".join(lat_parts) + b"]"), dtype=np.float64)
        lng = np.asarray(_floats.decode(b"[" + b",".join(lng_parts) + b"]"), dtype=np.float64)
        ts = np.asarray(_ints.decode(b"[" + b",".join(ts_parts) + b"]"), dtype=np.int64)
        # The live search drops a member when ts < now - stale (as floats): same test here.
        # A member crossing a border may be filed in two regions for a moment: the newest
        # copy counts.
        fresh = np.flatnonzero(ts.astype(np.float64) >= min_ts).tolist()
        if len(set(ids)) == len(ids):
            order = sorted(fresh, key=ids.__getitem__)
        else:
            ts_list = ts.tolist()
            pick: dict[str, int] = {}
            for i in fresh:
                j = pick.get(ids[i])
                if j is None or ts_list[i] > ts_list[j]:
                    pick[ids[i]] = i
            order = [pick[m] for m in sorted(pick)]
        return ids, lat, lng, ts, cells, order

    async def regions(self) -> list[str]:
        """Every region anything was ever filed in (`where.lua` adds them as members enter).
        An index filed before the set existed has it filled from the directory once."""
        complete = self.regions_key + ":complete"
        if not await self.redis.exists(complete):
            found: set[str] = set()
            async for _, value in self.redis.hscan_iter(self.where_key, count=5000):
                found.update(parse_where(value))
            async with self.redis.pipeline(transaction=False) as pipe:
                if found:
                    pipe.sadd(self.regions_key, *sorted(found))
                pipe.set(complete, "1")
                await pipe.execute()
        raw: set[bytes] = await self.redis.smembers(self.regions_key)  # type: ignore[assignment]
        return sorted(r.decode() for r in raw)

    async def fresh(self, *, now_ms: int, stale_s: float) -> dict[str, Position]:
        """Every member seen within `stale_s` of `now_ms`, whatever its status: its newest
        position (one round trip for the regions, one for their members)."""
        ids, lat, lng, ts, _, order = await self._fresh_rows(
            await self.regions(), now_ms, stale_s, (-90.0, 90.0, -180.0, 180.0))
        lat_l, lng_l, ts_l = lat.tolist(), lng.tolist(), ts.tolist()
        return {ids[i]: Position(lat=lat_l[i], lng=lng_l[i], ts_ms=ts_l[i]) for i in order}

    async def _statuses_of(self, ids: Sequence[str], wanted: Sequence[str],
                           attr: tuple[str, str], attr_hash: str,
                           ) -> tuple[list[str], list[str]]:
        """Each member's status and, for those with a `wanted` status, its attribute (see
        `snapshot`): one script on the dispatch slot."""
        if not ids:
            return [], []
        st_b, at_b = await self._statuses(
            keys=[self.status_key, attr_hash or self.status_key],
            args=["1" if attr_hash else "0", attr[0], attr[1], "\n".join(ids), *wanted])
        return st_b.decode().split("\n"), at_b.decode().split("\n")

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
                    step.append((i, cells))
            if not step:
                break
            found = await self._rings([cells for _, cells in step], statuses, status_of)
            for (i, _), rows in zip(step, found, strict=True):
                searches[i].add_members(rows)
            active = [i for i, _ in step]
        return [self._members(search.result(), status_of) for search in searches]

    async def _rings(self, batches: Sequence[Sequence[str]], statuses: Sequence[str] | None,
                     status_of: dict[str, str]) -> list[list[MemberRow]]:
        """The members of each batch of cells (a search's next ring), with a wanted status:
        one script per region of a batch in one pipeline, then the statuses of the members
        found in one HMGET (the status hash is in the dispatch slot). `status_of` learns
        each member's status."""
        calls: list[tuple[int, list[str]]] = []
        for b, cells in enumerate(batches):
            by_region: dict[str, list[str]] = {}
            for cell in cells:
                region = region_of_cell(cell)
                keys = by_region.get(region)
                if keys is None:
                    keys = by_region[region] = [positions_key(region, prefix=self.prefix)]
                keys.append(cell_key(cell, prefix=self.prefix))
            calls += [(b, keys) for keys in by_region.values()]
        async with self.redis.pipeline(transaction=False) as pipe:
            await load_for(self._ring, pipe)
            for _, keys in calls:
                await self._ring(keys=keys, args=[], client=pipe)
            flats = await pipe.execute()
        rows: list[list[tuple[bytes, bytes]]] = [[] for _ in batches]
        fresh: dict[bytes, None] = {}
        for (b, _), flat in zip(calls, flats, strict=True):
            for j in range(0, len(flat), 2):
                rows[b].append((flat[j], flat[j + 1]))
                fresh[flat[j]] = None
        ids = list(fresh)
        if ids:
            got: list[bytes | None] = await self.redis.hmget(  # type: ignore[assignment]
                self.status_key, ids)
            for raw, st in zip(ids, got, strict=True):
                status_of[raw.decode()] = st.decode() if st else ""
        wanted = None if not statuses else set(statuses)
        out: list[list[MemberRow]] = []
        for batch in rows:
            kept: list[MemberRow] = []
            for raw_id, packed in batch:
                member = raw_id.decode()
                if wanted is not None and status_of[member] not in wanted:
                    continue
                lat, lng, ts, _ = unpack_position(packed)
                kept.append((member, lat, lng, ts))
            out.append(kept)
        return out

    @staticmethod
    def _members(result: NearbyResult,
                 status_of: Mapping[str, str]) -> tuple[list[NearbyMember], NearbyResult]:
        return [NearbyMember(member_id=h.id, lat=h.lat, lng=h.lng, dist_m=h.dist_m,
                             status=status_of.get(h.id) or "unknown",
                             updated_at_ms=h.updated_at_ms)
                for h in result.hits], result

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
        search = NearbySearch(lat, lng, radius_m=radius_m, limit=limit, now_ms=now_ms,
                              stale_s=stale_s if math.isfinite(stale_s) else 1e15)
        status_of: dict[str, str] = {}
        while (cells := search.next_cells()) is not None:
            (rows,) = await self._rings([cells], statuses, status_of)
            search.add_members(rows)
        return self._members(search.result(), status_of)
