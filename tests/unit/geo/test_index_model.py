"""Specification of the live index writes (plain data the Redis adapter executes)."""

from __future__ import annotations

import h3
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import live_cell_of, region_of
from geo.fixes import Fix
from geo.index_model import (
    cell_key,
    cell_keys,
    epoch_key,
    iter_cell_members,
    pack_member,
    pack_position,
    parse_where,
    positions_key,
    seen_key,
    unpack_member,
    unpack_position,
    where_key,
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
    assert positions_key(region) == f"geo:pos:{{r:{region}}}"
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


def test_directory_shares_the_epoch_keys_slot() -> None:
    """The directory's hash tag is the whole epoch key: Redis Cluster hashes a key with no
    tag whole, so both land in one slot (and are lost or kept together)."""
    assert where_key("ns:geo") == "{ns:geo:epoch}:where"
    assert epoch_key("ns:geo") == "ns:geo:epoch"


def test_position_and_directory_values_round_trip() -> None:
    """A position-hash value gives back the fix and its cell; a directory entry its regions."""
    fix = at(0)
    cell = live_cell_of(fix.lat, fix.lng)
    packed = pack_position(fix.lat, fix.lng, fix.ts, cell)
    assert unpack_position(packed) == unpack_position(packed.encode()) == (
        fix.lat, fix.lng, fix.ts, cell)
    assert parse_where(b"8428309ffffffff=10;842830dffffffff=12") == {
        "8428309ffffffff": 10, "842830dffffffff": 12}
    assert parse_where(None) == {}


def test_h3_cell_ids_are_lowercase_hex() -> None:
    """Cells handed to the adapter are h3 string ids, as `cell_key` expects."""
    cell = live_cell_of(*HOME)
    assert cell == format(h3.str_to_int(cell), "x")
