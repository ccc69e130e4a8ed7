"""Specification of the live index writes (plain data the Redis adapter executes)."""

from __future__ import annotations

from collections.abc import Iterable

import h3
from hypothesis import given
from hypothesis import strategies as st

from geo.cells import live_cell_of, region_of
from geo.fixes import Fix, LastFix
from geo.index_model import (
    HDel,
    HSet,
    IndexOp,
    ZAdd,
    ZRem,
    cell_key,
    cell_keys,
    iter_cell_members,
    last_fix_from_position,
    pack_member,
    plan_evictions,
    plan_fix,
    plan_fixes,
    position_key,
    seen_key,
    stale_cutoff_ms,
    unpack_member,
)
from geo.nearby import nearby, nearby_bruteforce
from tests.unit.geo.strategies import offset, seeded

NOW_MS = 1_750_000_000_000
HOME = (37.7749, -122.4194)


def at(north_m: float, east_m: float = 0.0, ts: int = NOW_MS) -> Fix:
    lat, lng = offset(*HOME, north_m, east_m)
    return Fix(lat=lat, lng=lng, ts=ts)


class FakeRedis:
    """Just enough of Redis to execute plans: hashes and sorted sets in dicts."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.zsets: dict[str, dict[str, int]] = {}

    def apply(self, ops: Iterable[IndexOp]) -> None:
        for op in ops:
            match op:
                case HSet(key, mapping):
                    self.hashes.setdefault(key, {}).update(mapping)
                case HDel(key, fields):
                    for field in fields:
                        self.hashes.get(key, {}).pop(field, None)
                case ZAdd(key, mapping):
                    self.zsets.setdefault(key, {}).update(mapping)
                case ZRem(key, members):
                    for member in members:
                        self.zsets.get(key, {}).pop(member, None)

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return {k.encode(): v.encode() for k, v in self.hashes.get(key, {}).items()}


def test_keys_carry_the_region_hash_tag() -> None:
    """Cell and seen keys embed the res-4 region as a Redis Cluster hash tag."""
    cell = live_cell_of(*HOME)
    region = region_of(*HOME)
    assert cell_key(cell) == f"geo:cell:{{r:{region}}}:{cell}"
    assert seen_key(region) == f"geo:seen:{{r:{region}}}"
    assert position_key("c1") == "geo:pos:c1"
    assert cell_keys([cell, cell], prefix="t") == [f"t:cell:{{r:{region}}}:{cell}"] * 2


def test_first_fix_indexes_the_courier() -> None:
    """A courier not yet indexed: add to its cell hash and region's seen set, store its
    position; nothing to remove."""
    fix = at(0)
    cell = live_cell_of(fix.lat, fix.lng)
    ops = plan_fix("c1", fix, None)
    assert ops == [
        HSet(cell_key(cell), {"c1": pack_member(fix.lat, fix.lng, fix.ts)}),
        ZAdd(seen_key(region_of(fix.lat, fix.lng)), {"c1": fix.ts}),
        HSet(
            position_key("c1"),
            {
                "lat": repr(fix.lat),
                "lng": repr(fix.lng),
                "ts": str(fix.ts),
                "cell": cell,
                "accuracy": "",
                "speed": "",
                "heading": "",
            },
        ),
    ]


def test_fix_in_the_same_cell_moves_nothing() -> None:
    """A fix that stays in the courier's cell only overwrites its row: no HDEL, no ZREM."""
    fix = at(0)
    ops = plan_fix("c1", fix, live_cell_of(fix.lat, fix.lng))
    assert not any(isinstance(op, HDel | ZRem) for op in ops)


def test_fix_in_a_new_cell_moves_between_cell_hashes() -> None:
    """A change of cell removes the courier from the old cell's hash, after adding it to the
    new one (a concurrent reader sees it twice at worst, never zero times)."""
    start = at(0)
    old_cell = live_cell_of(start.lat, start.lng)
    fix = at(1_000)
    new_cell = live_cell_of(fix.lat, fix.lng)
    assert new_cell != old_cell
    ops = plan_fix("c1", fix, old_cell)
    assert ops[-1] == HDel(cell_key(old_cell), ["c1"])
    assert ops[0] == HSet(cell_key(new_cell), {"c1": pack_member(fix.lat, fix.lng, fix.ts)})
    assert not any(isinstance(op, ZRem) for op in ops)  # same region


def test_region_change_moves_the_seen_entry_too() -> None:
    """Crossing into another res-4 region also moves the courier between seen sets."""
    region0 = region_of(*HOME)
    # Walk north until the region changes.
    step = 0
    while region_of(at(step).lat, at(step).lng) == region0:
        step += 2_000
    before, after = at(step - 2_000), at(step)
    old_cell = live_cell_of(before.lat, before.lng)
    ops = plan_fix("c1", after, old_cell)
    assert ZRem(seen_key(region0), ["c1"]) in ops
    assert ZAdd(seen_key(region_of(after.lat, after.lng)), {"c1": after.ts}) in ops


def test_batch_writes_only_the_newest_fix_per_courier_and_merges_keys() -> None:
    """In a batch, each courier's newest fix wins, and writes to one key are one command."""
    f_old, f_new, g = at(0, ts=NOW_MS - 2_000), at(5, ts=NOW_MS - 1_000), at(10)
    plan = plan_fixes([("a", f_new), ("a", f_old), ("b", g)], {})
    cell = live_cell_of(*HOME)
    assert plan.cells == {"a": cell, "b": cell}
    cell_writes = [op for op in plan.ops if isinstance(op, HSet) and op.key == cell_key(cell)]
    assert cell_writes == [
        HSet(
            cell_key(cell),
            {
                "a": pack_member(f_new.lat, f_new.lng, f_new.ts),
                "b": pack_member(g.lat, g.lng, g.ts),
            },
        )
    ]


def test_additions_precede_removals() -> None:
    """All HSET/ZADD come before any HDEL/ZREM in a plan."""
    plan = plan_fixes([("a", at(3_000)), ("b", at(-3_000))], {"a": "89283082803ffff"})
    kinds = [isinstance(op, HDel | ZRem) for op in plan.ops]
    assert kinds == sorted(kinds)


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
    redis = FakeRedis()
    redis.apply(plan_fix("c1", fix, None))
    assert last_fix_from_position(redis.hgetall(position_key("c1"))) == (
        LastFix.of(fix),
        live_cell_of(fix.lat, fix.lng),
    )
    assert last_fix_from_position({}) is None


def test_evictions_remove_from_cell_and_seen_but_keep_position() -> None:
    """Evicting a stale courier removes its cell row and seen entry; its last fix stays."""
    fix = at(0)
    redis = FakeRedis()
    redis.apply(plan_fix("c1", fix, None))
    cell = live_cell_of(fix.lat, fix.lng)
    redis.apply(plan_evictions([("c1", cell)]))
    assert redis.hashes[cell_key(cell)] == {}
    assert redis.zsets[seen_key(region_of(fix.lat, fix.lng))] == {}
    assert redis.hashes[position_key("c1")]["ts"] == str(fix.ts)
    assert stale_cutoff_ms(NOW_MS, 60) == NOW_MS - 60_000


def test_plans_and_search_work_together() -> None:
    """Couriers moving around a city, indexed by executing plans and searched through HGETALL
    replies, are found exactly as brute force finds their latest positions."""
    redis = FakeRedis()
    cells: dict[str, str] = {}
    latest: dict[str, Fix] = {}
    for step in range(3):
        batch = [
            (
                f"c{i}",
                at(
                    97.0 * i * (step + 1) % 4_000 - 2_000,
                    53.0 * i % 3_000 - 1_500,
                    NOW_MS - 3 + step,
                ),
            )
            for i in range(200)
        ]
        plan = plan_fixes(batch, cells)
        redis.apply(plan.ops)
        cells.update(plan.cells)
        latest.update(batch)

    def members(batch_cells: list[str]) -> Iterable[tuple[str, float, float, int]]:
        return iter_cell_members(redis.hgetall(key) for key in cell_keys(batch_cells))

    rows = [(cid, f.lat, f.lng, f.ts) for cid, f in latest.items()]
    total_rows = sum(len(h) for k, h in redis.hashes.items() if ":cell:" in k)
    assert total_rows == len(latest)  # every move removed the old row
    for radius_m, limit in [(500.0, 5), (2_000.0, 50), (10_000.0, 500)]:
        result = nearby(*HOME, radius_m=radius_m, limit=limit, members=members, now_ms=NOW_MS)
        assert result.hits == nearby_bruteforce(
            rows, *HOME, radius_m=radius_m, limit=limit, now_ms=NOW_MS
        )


def test_h3_cell_ids_are_lowercase_hex() -> None:
    """Cells handed to the adapter are h3 string ids, as `cell_key` expects."""
    cell = live_cell_of(*HOME)
    assert cell == format(h3.str_to_int(cell), "x")
