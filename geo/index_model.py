"""The live index's key layout and member encoding, shared by the Redis adapter and readers.

The writes themselves are one Lua script per batch in `api/stores/live_index.py` (it applies a
fix only when newer than the stored one, which a client-side plan cannot guarantee across
processes). Key layout (the res-4 region is a Redis Cluster hash tag, docs/architecture.md, so one
region's keys share a shard)::

    {prefix}:cell:{r:<region>}:<cell>   HASH  courier_id -> "lat,lng,ts_ms"   res-9 members
    {prefix}:seen:{r:<region>}          ZSET  courier_id -> ts_ms            stale sweeper
    {prefix}:pos:<courier_id>           HASH  lat, lng, ts, cell, ...        last accepted fix
    {prefix}:status:{d}                 HASH  courier_id -> status           dispatch slot

Cell membership is a hash whose values are the packed position, so a nearby search reads
positions with one HGETALL per cell (one round trip per ring). A fix in the same cell rewrites
its field; only a change of cell removes the courier from the old cell's hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Final, cast

from geo.cells import region_of_cell
from geo.fixes import LastFix
from geo.nearby import MemberRow

DEFAULT_PREFIX: Final = "geo"

DISPATCH_TAG: Final = "{d}"
"""The Redis Cluster hash tag of a namespace's dispatch state (docs/architecture.md): every
dispatch key and every status hash carry it, so each dispatch script runs on one shard."""


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


def status_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Key of the members' status hash (member -> status). It lives in the dispatch slot
    (`DISPATCH_TAG`): dispatch scripts write a courier's status with its dispatch state."""
    return f"{prefix}:status:{DISPATCH_TAG}"


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
