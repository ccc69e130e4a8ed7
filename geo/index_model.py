"""The live courier index as plain data: the Redis writes a fix needs, and how members read back.

The Redis adapter only translates `IndexOp` values into pipeline commands and Redis replies
into `MemberRow` tuples; every decision lives here. Key layout (the res-4 region is a Redis
Cluster hash tag, DESIGN.md §7, so one region's keys share a shard)::

    {prefix}:cell:{r:<region>}:<cell>   HASH  courier_id -> "lat,lng,ts_ms"   res-9 members
    {prefix}:seen:{r:<region>}          ZSET  courier_id -> ts_ms            stale sweeper
    {prefix}:pos:<courier_id>           HASH  lat, lng, ts, cell, ...        last accepted fix

Cell membership is a hash whose values are the packed position, so a nearby search reads
positions with one HGETALL per cell (one round trip per ring). A fix in the same cell rewrites
its field; only a change of cell removes the courier from the old cell's hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Final, cast

import msgspec

from geo.cells import LIVE_RES, cell_of, region_of_cell
from geo.fixes import Fix, LastFix
from geo.nearby import MemberRow

DEFAULT_PREFIX: Final = "geo"


class HSet(msgspec.Struct, frozen=True, tag="hset"):
    """HSET key field value [field value ...]."""

    key: str
    mapping: dict[str, str]


class HDel(msgspec.Struct, frozen=True, tag="hdel"):
    """HDEL key field [field ...]."""

    key: str
    fields: list[str]


class ZAdd(msgspec.Struct, frozen=True, tag="zadd"):
    """ZADD key score member [score member ...] (mapping is member -> score)."""

    key: str
    mapping: dict[str, int]


class ZRem(msgspec.Struct, frozen=True, tag="zrem"):
    """ZREM key member [member ...]."""

    key: str
    members: list[str]


IndexOp = HSet | HDel | ZAdd | ZRem
"""One Redis write. Apply a plan's ops in order, in one pipeline (MULTI for atomic moves)."""


class IndexPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Writes for a batch of fixes.

    Attributes:
        ops: Redis writes, additions before removals (a reader never misses a moving courier;
            at worst it sees both rows and keeps the newer).
        cells: courier_id -> res-9 cell after the batch (the next batch's `prev_cells`).
    """

    ops: list[IndexOp]
    cells: dict[str, str]


# -- keys ---------------------------------------------------------------------------------------


def cell_key(cell: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Key of the members hash of a live (res-9) cell."""
    return _cell_key(cell, prefix)


@lru_cache(maxsize=1 << 15)
def _cell_key(cell: str, prefix: str) -> str:
    # Cached: a nearby search builds a key for every cell it fetches, and parent lookup is
    # the costly part (a city has only a few thousand live cells).
    return f"{prefix}:cell:{{r:{region_of_cell(cell)}}}:{cell}"


def cell_keys(cells: Iterable[str], *, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """`cell_key` for each cell, e.g. for the cells `NearbySearch.next_cells` returns."""
    return [_cell_key(cell, prefix) for cell in cells]


def seen_key(region: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Key of a region's last-seen sorted set (score = ts_ms), scanned by the stale sweeper."""
    return f"{prefix}:seen:{{r:{region}}}"


def position_key(courier_id: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Key of a courier's last-accepted-fix hash."""
    return f"{prefix}:pos:{courier_id}"


# -- values -------------------------------------------------------------------------------------


def pack_member(lat: float, lng: float, ts_ms: int) -> str:
    """Cell-hash value ``"lat,lng,ts_ms"``: repr() floats round-trip exactly, so distances
    computed from the index equal those computed from the fix."""
    return f"{lat!r},{lng!r},{ts_ms}"


def unpack_member(value: bytes | str) -> tuple[float, float, int]:
    """Inverse of `pack_member`."""
    text = value.decode() if isinstance(value, bytes) else value
    lat_s, lng_s, ts_s = text.split(",")
    return float(lat_s), float(lng_s), int(ts_s)


def iter_cell_members(
    hashes: Iterable[Mapping[bytes, bytes] | Mapping[str, str]],
) -> Iterator[MemberRow]:
    """Turn HGETALL replies (one per cell, bytes or str) into nearby-search rows."""
    for members in hashes:
        for member_id, packed in members.items():
            if isinstance(packed, bytes):
                # float() and int() parse bytes directly; only the id needs decoding.
                lat_b, lng_b, ts_b = packed.split(b",")
                yield cast(bytes, member_id).decode(), float(lat_b), float(lng_b), int(ts_b)
            else:
                lat_s, lng_s, ts_s = packed.split(",")
                yield cast(str, member_id), float(lat_s), float(lng_s), int(ts_s)


def last_fix_from_position(
    position: Mapping[bytes, bytes] | Mapping[str, str],
) -> tuple[LastFix, str] | None:
    """Read a `position_key` hash (HGETALL reply) as (last accepted fix, cell); None if empty."""
    if not position:
        return None
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in position.items()
    }
    last = LastFix(lat=float(fields["lat"]), lng=float(fields["lng"]), ts_ms=int(fields["ts"]))
    return last, fields["cell"]


# -- plans --------------------------------------------------------------------------------------


def plan_fixes(
    fixes: Iterable[tuple[str, Fix]],
    prev_cells: Mapping[str, str | None],
    *,
    prefix: str = DEFAULT_PREFIX,
) -> IndexPlan:
    """Redis writes for a batch of accepted fixes (courier_id, fix).

    Only each courier's newest fix in the batch is written: the index holds positions, not
    tracks. `prev_cells` gives each courier's cell before the batch (missing or None = not
    indexed). Writes to the same key are merged into one command.

    The fixes must already be accepted by `validate_fix` (so ts only moves forward).
    """
    newest: dict[str, Fix] = {}
    for courier_id, fix in fixes:
        seen = newest.get(courier_id)
        if seen is None or fix.ts > seen.ts:
            newest[courier_id] = fix

    cell_sets: dict[str, dict[str, str]] = {}
    seen_adds: dict[str, dict[str, int]] = {}
    cell_dels: dict[str, list[str]] = {}
    seen_rems: dict[str, list[str]] = {}
    position_sets: list[HSet] = []
    cells: dict[str, str] = {}
    for courier_id, fix in newest.items():
        cell = cell_of(fix.lat, fix.lng, LIVE_RES)
        region = region_of_cell(cell)
        cells[courier_id] = cell
        packed = pack_member(fix.lat, fix.lng, fix.ts)
        cell_sets.setdefault(cell_key(cell, prefix=prefix), {})[courier_id] = packed
        seen_adds.setdefault(seen_key(region, prefix=prefix), {})[courier_id] = fix.ts
        position_sets.append(HSet(position_key(courier_id, prefix=prefix), _position(fix, cell)))
        prev_cell = prev_cells.get(courier_id)
        if prev_cell is not None and prev_cell != cell:
            cell_dels.setdefault(cell_key(prev_cell, prefix=prefix), []).append(courier_id)
            prev_region = region_of_cell(prev_cell)
            if prev_region != region:
                seen_rems.setdefault(seen_key(prev_region, prefix=prefix), []).append(courier_id)

    ops: list[IndexOp] = [HSet(key, mapping) for key, mapping in cell_sets.items()]
    ops += [ZAdd(key, mapping) for key, mapping in seen_adds.items()]
    ops += position_sets
    ops += [HDel(key, fields) for key, fields in cell_dels.items()]
    ops += [ZRem(key, members) for key, members in seen_rems.items()]
    return IndexPlan(ops=ops, cells=cells)


def plan_fix(
    courier_id: str, fix: Fix, prev_cell: str | None, *, prefix: str = DEFAULT_PREFIX
) -> list[IndexOp]:
    """Redis writes for one accepted fix (see `plan_fixes`)."""
    return plan_fixes([(courier_id, fix)], {courier_id: prev_cell}, prefix=prefix).ops


def stale_cutoff_ms(now_ms: int, stale_s: float) -> int:
    """Members whose ts_ms is below this are stale (the nearby search already skips them)."""
    return now_ms - round(stale_s * 1000)


def plan_evictions(
    stale: Iterable[tuple[str, str]], *, prefix: str = DEFAULT_PREFIX
) -> list[IndexOp]:
    """Writes removing stale couriers, given (courier_id, cell) pairs, from the live index.

    The position hash is kept (it is the last accepted fix that validation compares with).
    Run it conditionally (e.g. in a Lua script that re-checks the ZSET score against the
    cutoff): a fix arriving between the sweeper's read and these writes must win.
    """
    cell_dels: dict[str, list[str]] = {}
    seen_rems: dict[str, list[str]] = {}
    for courier_id, cell in stale:
        cell_dels.setdefault(cell_key(cell, prefix=prefix), []).append(courier_id)
        region = region_of_cell(cell)
        seen_rems.setdefault(seen_key(region, prefix=prefix), []).append(courier_id)
    ops: list[IndexOp] = [HDel(key, fields) for key, fields in cell_dels.items()]
    ops += [ZRem(key, members) for key, members in seen_rems.items()]
    return ops


def _position(fix: Fix, cell: str) -> dict[str, str]:
    # Absent optional fields are written as "" so a previous fix's values never linger.
    def opt(value: float | None) -> str:
        return "" if value is None else repr(value)

    return {
        "lat": repr(fix.lat),
        "lng": repr(fix.lng),
        "ts": str(fix.ts),
        "cell": cell,
        "accuracy": opt(fix.accuracy_m),
        "speed": opt(fix.speed_mps),
        "heading": opt(fix.heading_deg),
    }
