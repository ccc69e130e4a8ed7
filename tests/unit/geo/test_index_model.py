"""Specification of the live index writes (plain data the Redis adapter executes)."""

from __future__ import annotations

import h3
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import live_cell_of, region_of
from geo.fixes import Fix, LastFix
from geo.index_model import (
    cell_key,
    cell_keys,
    iter_cell_members,
    last_fix_from_position,
    pack_member,
    position_key,
    seen_key,
    unpack_member,
)
from tests.unit.geo.strategies import offset, seeded

NOW_MS = 1_750_000_000_000
HOME = (37.7749, -122.4194)


def at(north_m: float, east_m: float = 0.0, ts: int = NOW_MS) -> Fix:
    lat, lng = offset(*HOME, north_m, east_m)
    return Fix(lat=lat, lng=lng, ts=ts)


def test_keys_carry_the_region_hash_tag() -> None:
    """Cell and seen keys embed the res-4 region as a Redis Cluster hash tag."""
    cell = live_cell_of(*HOME)
    region = region_of(*HOME)
    assert cell_key(cell) == f"geo:cell:{{r:{region}}}:{cell}"
    assert seen_key(region) == f"geo:seen:{{r:{region}}}"
    assert position_key("c1") == "geo:pos:c1"
    assert cell_keys([cell, cell], prefix="t") == [f"t:cell:{{r:{region}}}:{cell}"] * 2


@seeded(200)
@given(
    lat=st.floats(-90, 90),
    lng=st.floats(-180, 180),
    ts=st.integers(0, 2**53),
)
def test_packed_member_round_trips_exactly(lat: float, lng: float, ts: int) -> None:
    """Packing a position into a cell hash loses no precision (distances stay exact)."""
    packed = pack_member(lat, lng, ts)
    assert unpack_member(packed) == unpack_member(packed.encode()) == (lat, lng, ts)


def test_iter_cell_members_reads_bytes_and_str_replies() -> None:
    """HGETALL replies decode to (id, lat, lng, updated_at_ms) whatever decode_responses is."""
    rows = list(
        iter_cell_members(
            [{b"a": b"1.5,2.5,10"}, {}, {"b": "-3.25,4.0,20"}],
        )
    )
    assert rows == [("a", 1.5, 2.5, 10), ("b", -3.25, 4.0, 20)]


def test_last_fix_from_position_hash() -> None:
    """The position hash gives back the last accepted fix and the courier's cell."""
    fix = at(0)
    stored = {b"lat": repr(fix.lat).encode(), b"lng": repr(fix.lng).encode(),
              b"ts": str(fix.ts).encode(), b"cell": live_cell_of(fix.lat, fix.lng).encode()}
    assert last_fix_from_position(stored) == (
        LastFix.of(fix),
        live_cell_of(fix.lat, fix.lng),
    )
    assert last_fix_from_position({}) is None


def test_h3_cell_ids_are_lowercase_hex() -> None:
    """Cells handed to the adapter are h3 string ids, as `cell_key` expects."""
    cell = live_cell_of(*HOME)
    assert cell == format(h3.str_to_int(cell), "x")
