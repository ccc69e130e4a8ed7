"""The live index's key layout and member encoding, shared by the Redis adapter and readers.

The writes themselves are Lua scripts in `api/stores/live_index.py` (a fix is applied only when
newer than the stored one, which a client-side plan cannot guarantee across processes). Every
key of a fix's write is in its res-4 region's Redis Cluster slot (hash tag ``{r:<region>}``,
docs/architecture.md), so one region's writes are one script on one shard::

    {prefix}:cell:{r:<region>}:<cell>   HASH  member -> ts_ms it was filed     res-9 members
    {prefix}:seen:{r:<region>}          ZSET  member -> ts_ms                  on the grid, by age
    {prefix}:pos:{r:<region>}           HASH  member -> "lat,lng,ts_ms,cell"   last accepted fix
    {<prefix>:epoch}:where              HASH  member -> "region=ts;..."        regions filed in
    {<prefix>:epoch}:regions            SET   region                           every region filed
    {prefix}:status:{d}                 HASH  member -> status                 dispatch slot

A cell hash lists its members; their positions live in the region's position hash, so a fix
in the member's cell writes no cell hash (most fixes do not change cell). A nearby search
reads a ring's cells and their members' positions in one script per region (one round trip
per ring). A member is in its cell's hash exactly while it is in the ``seen`` set. The ``where``
directory names the region(s) a member's position is filed in (one, except for the moment a
member crosses a border); it is written only when a member enters a region, and it shares the
epoch key's slot, so losing one loses the other and the index is rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Final, cast

from geo.cells import region_of_cell
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


def positions_key(region: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Key of a region's last-accepted-fix hash (member -> `pack_position`)."""
    return f"{prefix}:pos:{{r:{region}}}"


def cell_key_prefix(region: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """What every `cell_key` of `region` starts with (the cell id follows)."""
    return f"{prefix}:cell:{{r:{region}}}:"


def epoch_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Key whose presence says the index is populated (the indexer rebuilds when it is gone)."""
    return f"{prefix}:epoch"


def where_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Key of the directory member -> regions its position is filed in. Its hash tag is the
    whole `epoch_key`, so both live in one slot: a shard lost with the directory takes the
    epoch with it, and the index is rebuilt rather than left with positions nobody can find."""
    return f"{{{epoch_key(prefix)}}}:where"


def regions_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Key of the set of regions anything was ever filed in (`where.lua` adds a member's new
    region), in the directory's slot; `regions_key(...) + ":complete"` marks that set as
    holding every region of the directory (`LiveIndex.regions`)."""
    return f"{{{epoch_key(prefix)}}}:regions"


def parse_where(value: bytes | str | None) -> dict[str, int]:
    """A directory entry (``"region=ts;region=ts"``) as region -> ts_ms of the fix that
    filed the member there."""
    if not value:
        return {}
    text = value.decode() if isinstance(value, bytes) else value
    out: dict[str, int] = {}
    for part in text.split(";"):
        region, _, ts = part.partition("=")
        if region:
            out[region] = int(ts)
    return out


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


def pack_position(lat: float, lng: float, ts_ms: int, cell: str) -> str:
    """Position-hash value ``"lat,lng,ts_ms,cell"`` (`pack_member` and the res-9 cell)."""
    return f"{pack_member(lat, lng, ts_ms)},{cell}"


def unpack_position(value: bytes | str) -> tuple[float, float, int, str]:
    """Inverse of `pack_position`."""
    text = value.decode() if isinstance(value, bytes) else value
    lat_s, lng_s, ts_s, cell = text.split(",")
    return float(lat_s), float(lng_s), int(ts_s), cell
