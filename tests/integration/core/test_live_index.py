"""The live index on real Redis: moves leave no stale row, older fixes never win, and nearby
search through the adapter equals a brute-force haversine scan of the latest positions."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator

import pytest

from api.stores.live_index import LiveIndex, Located, Position
from api.stores.lua import compose
from geo.cells import region_of
from geo.index_model import regions_key as index_regions_key
from geo.index_model import where_key as index_where_key
from geo.nearby import nearby_bruteforce
from tests.conftest import StoreUrls

NOW_MS = 1_900_000_000_000
HOME = (12.9716, 77.5946)


@pytest.fixture
async def index(store_urls: StoreUrls, run_id: str) -> AsyncIterator[LiveIndex]:
    client = store_urls.redis_client()
    prefix = f"{run_id}:li{uuid.uuid4().hex[:6]}"
    yield LiveIndex(client, prefix)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    regions = index_regions_key(prefix)
    for key in [*keys, index_where_key(prefix), regions, f"{regions}:complete"]:
        await client.delete(key)
    await client.aclose()


async def cell_rows(index: LiveIndex) -> int:
    total = 0
    async for key in index.redis.scan_iter(match=f"{index.prefix}:cell:*"):
        total += await index.redis.hlen(key)
    return total


async def test_moving_couriers_are_found_exactly_where_they_last_were(index: LiveIndex) -> None:
    """Three rounds of moves for 300 couriers: one cell row per courier, and for several
    radii/limits the search returns exactly the brute-force answer, in order."""
    rng = random.Random(11)
    latest: dict[str, tuple[float, float, int]] = {}
    for step in range(3):
        batch = []
        for i in range(300):
            lat = HOME[0] + rng.uniform(-0.03, 0.03)
            lng = HOME[1] + rng.uniform(-0.03, 0.03)
            ts = NOW_MS - 10_000 + step * 1000 + i
            batch.append(Located(f"c{i}", lat, lng, ts))
            latest[f"c{i}"] = (lat, lng, ts)
        assert await index.upsert(batch) == 300
    assert await cell_rows(index) == 300  # every move removed the old row
    points = [(cid, la, ln, ts) for cid, (la, ln, ts) in latest.items()]
    for radius_m, limit in [(300.0, 5), (1_500.0, 40), (6_000.0, 400)]:
        for _ in range(5):
            qlat = HOME[0] + rng.uniform(-0.02, 0.02)
            qlng = HOME[1] + rng.uniform(-0.02, 0.02)
            got, result = await index.nearby(qlat, qlng, radius_m=radius_m, limit=limit,
                                             now_ms=NOW_MS, stale_s=60)
            want = nearby_bruteforce(points, qlat, qlng, radius_m=radius_m, limit=limit,
                                     now_ms=NOW_MS, stale_s=60)
            assert result.complete
            assert [(m.member_id, m.dist_m) for m in got] == [(h.id, h.dist_m) for h in want]


async def test_older_or_equal_fix_never_moves_the_index_back(index: LiveIndex) -> None:
    """A redelivered or reordered fix (ts not newer) changes nothing; remove() takes the
    courier off the grid but keeps its last position."""
    assert await index.upsert([Located("c1", 12.97, 77.59, NOW_MS)]) == 1
    assert await index.upsert([Located("c1", 12.99, 77.61, NOW_MS)]) == 0
    assert await index.upsert([Located("c1", 12.99, 77.61, NOW_MS - 5)]) == 0
    pos = await index.position("c1")
    assert pos is not None
    assert (pos.lat, pos.lng, pos.ts_ms) == (12.97, 77.59, NOW_MS)
    assert await index.remove("c1")
    got, _ = await index.nearby(12.97, 77.59, radius_m=1000, limit=5, now_ms=NOW_MS)
    assert got == []
    assert await index.position("c1") is not None
    assert await cell_rows(index) == 0


async def test_fixes_in_one_cell_keep_the_member_found_where_it_last_was(
        index: LiveIndex) -> None:
    """A fix that stays in the member's cell writes no cell hash, yet the search reads its
    newest position; a member taken off the grid (offline) is filed again by its next fix
    in the same cell."""
    lat, lng = 12.9716, 77.5946
    for k in range(3):  # ~1 m apart: one res-9 cell
        assert await index.upsert([Located("c1", lat + k * 1e-5, lng, NOW_MS + k)]) == 1
    got, _ = await index.nearby(lat, lng, radius_m=500, limit=5, now_ms=NOW_MS + 2)
    assert [(m.member_id, m.lat, m.updated_at_ms) for m in got] == [
        ("c1", lat + 2e-5, NOW_MS + 2)]
    assert await cell_rows(index) == 1
    assert await index.remove("c1")
    assert await cell_rows(index) == 0
    assert await index.upsert([Located("c1", lat + 3e-5, lng, NOW_MS + 3)]) == 1
    got, _ = await index.nearby(lat, lng, radius_m=500, limit=5, now_ms=NOW_MS + 3)
    assert [(m.member_id, m.lat) for m in got] == [("c1", lat + 3e-5)]
    assert await cell_rows(index) == 1


async def test_many_fixes_in_one_call_are_filed_with_their_cells(index: LiveIndex) -> None:
    """Fixes of many couriers in one call (the indexer's batch, several regions) are each
    filed exactly: position, cell and ts; a member id that would break the script's lines
    is refused before anything is written."""
    rng = random.Random(7)
    fixes = [Located(f"c{i}", 12.97 + rng.uniform(-0.6, 0.6), 77.59 + rng.uniform(-0.6, 0.6),
                     NOW_MS + i) for i in range(300)]
    assert len({region_of(f.lat, f.lng) for f in fixes}) > 1
    assert await index.upsert(fixes) == 300
    for f in fixes[::37]:
        pos = await index.position(f.member_id)
        assert pos is not None
        assert (pos.lat, pos.lng, pos.ts_ms) == (f.lat, f.lng, f.ts_ms)
    assert await cell_rows(index) == 300
    for bad in ("c|1", "c\n1"):
        with pytest.raises(ValueError, match="member id"):
            await index.upsert([Located("ok", 12.97, 77.59, NOW_MS + 999),
                                Located(bad, 12.97, 77.59, NOW_MS)])
    assert await index.position("ok") is None


async def test_thousands_of_fixes_in_one_region_in_one_call(index: LiveIndex) -> None:
    """One region's script with thousands of fixes: 2,600 couriers in one region are filed
    exactly, then in one call a third of them move to other cells (their old rows go), a
    third send an older fix (nothing changes) and the rest a newer one in the same place;
    nearby search then equals brute force."""
    rng = random.Random(3)
    home = region_of(*HOME)
    first: dict[str, Located] = {}
    while len(first) < 2600:
        lat, lng = HOME[0] + rng.uniform(-0.08, 0.08), HOME[1] + rng.uniform(-0.08, 0.08)
        if region_of(lat, lng) == home:
            cid = f"c{len(first)}"
            first[cid] = Located(cid, lat, lng, NOW_MS - 60_000 + len(first))
    assert await index.upsert(first.values()) == 2600
    assert await cell_rows(index) == 2600
    second: list[Located] = []
    latest = dict(first)
    for i, (cid, f) in enumerate(first.items()):
        if i % 3 == 0:  # moves ~1 km, within the region
            fix = Located(cid, f.lat + rng.choice((-0.01, 0.01)), f.lng, f.ts_ms + 5_000)
            if region_of(fix.lat, fix.lng) != home:
                fix = Located(cid, f.lat, f.lng + 0.0001, f.ts_ms + 5_000)
            latest[cid] = fix
        elif i % 3 == 1:  # older: changes nothing
            fix = Located(cid, f.lat + 0.02, f.lng, f.ts_ms - 1)
        else:  # newer, same place
            fix = latest[cid] = Located(cid, f.lat, f.lng, f.ts_ms + 5_000)
        second.append(fix)
    older = sum(1 for i in range(2600) if i % 3 == 1)
    assert await index.upsert(second) == 2600 - older
    assert await cell_rows(index) == 2600  # every move removed its old row
    got_all = await index.positions(list(latest))
    assert [(p.lat, p.lng, p.ts_ms) if p else None for p in got_all] == [
        (f.lat, f.lng, f.ts_ms) for f in latest.values()]
    points = [(f.member_id, f.lat, f.lng, f.ts_ms) for f in latest.values()]
    got, result = await index.nearby(*HOME, radius_m=3_000.0, limit=300, now_ms=NOW_MS,
                                     stale_s=120)
    want = nearby_bruteforce(points, *HOME, radius_m=3_000.0, limit=300, now_ms=NOW_MS,
                             stale_s=120)
    assert result.complete
    assert len(want) > 100
    assert [(m.member_id, m.dist_m) for m in got] == [(h.id, h.dist_m) for h in want]


async def test_upsert_loads_its_script_when_the_server_does_not_have_it(
    index: LiveIndex, run_id: str,
) -> None:
    """Upserts call the script by EVALSHA alone; a server that answers NOSCRIPT (new,
    restarted, promoted) gets it loaded and the fixes are filed all the same. Here the
    script's text is made unique, so no server has seen it yet."""
    unique = f"{compose('api.stores.lua', 'upsert')}\n-- {run_id} {uuid.uuid4().hex}\n"
    index._upsert = index.redis.register_script(unique)
    assert not (await index.redis.script_exists(index._upsert.sha))[0]
    assert await index.upsert([Located("c1", 12.97, 77.59, NOW_MS),
                               Located("c2", 52.52, 13.40, NOW_MS)]) == 2
    assert (await index.redis.script_exists(index._upsert.sha))[0]
    assert await index.upsert([Located("c1", 12.98, 77.60, NOW_MS + 1)]) == 1
    got = await index.positions(["c1", "c2"])
    assert [(p.lat, p.ts_ms) for p in got if p is not None] == [(12.98, NOW_MS + 1),
                                                              (52.52, NOW_MS)]


async def test_a_courier_crossing_a_region_border_is_filed_once(index: LiveIndex) -> None:
    """A move into another res-4 region (another Redis Cluster slot) files the courier
    there and takes it off the region it left; fixes applied out of order across the border
    (two processes) leave only the newest, wherever they arrive from."""
    west, east = (12.97, 77.59), (12.99, 77.61)
    assert region_of(*west) != region_of(*east)
    assert await index.upsert([Located("c1", *west, NOW_MS)]) == 1
    assert await index.upsert([Located("c1", *east, NOW_MS + 1)]) == 1
    assert await cell_rows(index) == 1
    assert (await index.position("c1")) == Position(lat=east[0], lng=east[1], ts_ms=NOW_MS + 1)
    near_west, _ = await index.nearby(*west, radius_m=500, limit=5, now_ms=NOW_MS)
    near_east, _ = await index.nearby(*east, radius_m=500, limit=5, now_ms=NOW_MS)
    assert [m.member_id for m in near_west] == []
    assert [m.member_id for m in near_east] == ["c1"]
    snap = await index.snapshot([region_of(*west), region_of(*east)], now_ms=NOW_MS,
                                stale_s=60, statuses=[""])
    assert snap.ids == ["c1"]
    assert snap.lat.tolist() == [east[0]]
    assert await index.redis.hget(index.where_key, "c1") == (
        f"{region_of(*east)}={NOW_MS + 1}".encode())
    # Out of order: the newer fix (west) is filed first, the older (east) comes late.
    assert await index.upsert([Located("c2", *west, NOW_MS + 10)]) == 1
    assert await index.upsert([Located("c2", *east, NOW_MS + 5)]) == 0
    assert (await index.position("c2")) == Position(lat=west[0], lng=west[1], ts_ms=NOW_MS + 10)
    near_east, _ = await index.nearby(*east, radius_m=500, limit=5, now_ms=NOW_MS)
    assert [m.member_id for m in near_east] == ["c1"]
    assert await cell_rows(index) == 2
    assert await index.redis.hget(index.where_key, "c2") == (
        f"{region_of(*west)}={NOW_MS + 10}".encode())
    # Offline then back in another region: the kept position moves with it.
    assert await index.remove("c2")
    assert await index.upsert([Located("c2", *east, NOW_MS + 20)]) == 1
    assert await index.positions(["c1", "c2", "never"]) == [
        Position(lat=east[0], lng=east[1], ts_ms=NOW_MS + 1),
        Position(lat=east[0], lng=east[1], ts_ms=NOW_MS + 20), None]
    assert await cell_rows(index) == 2


async def test_batched_nearby_equals_one_search_per_point_in_fewer_round_trips(
        index: LiveIndex) -> None:
    """`nearby_many` (a dispatch round's searches in lockstep, one pipeline per step) returns
    exactly what `nearby` returns per point — status filter, per-point limits — and needs
    only as many round trips as the longest single search."""
    rng = random.Random(5)
    batch = [Located(f"c{i}", HOME[0] + rng.uniform(-0.03, 0.03),
                     HOME[1] + rng.uniform(-0.03, 0.03), NOW_MS - 1000 + i) for i in range(400)]
    assert await index.upsert(batch) == 400
    for i in range(400):
        await index.set_status(f"c{i}", "idle" if i % 3 else "to_pickup")
    queries = [(HOME[0] + rng.uniform(-0.03, 0.03), HOME[1] + rng.uniform(-0.03, 0.03))
               for _ in range(60)]
    limits = [rng.choice([1, 4, 12, 50]) for _ in queries]
    many = await index.nearby_many(queries, radius_m=2_500, limit=limits, now_ms=NOW_MS,
                                   stale_s=60, statuses=["idle"])
    single_trips = []
    for (qlat, qlng), k, (got, _) in zip(queries, limits, many, strict=True):
        want, result = await index.nearby(qlat, qlng, radius_m=2_500, limit=k, now_ms=NOW_MS,
                                          stale_s=60, statuses=["idle"])
        single_trips.append(result.round_trips)
        assert [(m.member_id, m.dist_m, m.status) for m in got] == [
            (m.member_id, m.dist_m, m.status) for m in want]
        assert all(m.status == "idle" for m in got)
    assert max(r.round_trips for _, r in many) == max(single_trips)
    assert sum(single_trips) > 5 * max(single_trips)  # what the batching saves


async def test_snapshot_search_equals_nearby_many_across_regions(index: LiveIndex) -> None:
    """A round's read-once + in-memory search (`nearest_by_status`) returns, for every order
    and status, exactly what `nearby_many` returns on the Redis index (and the brute-force
    scan): same members in the same order — with couriers spread over the three res-4
    regions meeting at a vertex, stale and removed couriers, co-located couriers, statuses
    that are not asked for, couriers with no status and per-order limits."""
    import h3

    from geo.cells import REGION_RES, region_of, regions_near

    vertex = h3.cell_to_boundary(h3.latlng_to_cell(*HOME, REGION_RES))[0]
    rng = random.Random(23)
    statuses = ["idle", "to_pickup", "offered", "delivering", None]
    batch, status_of, latest = [], {}, {}
    for i in range(1500):
        lat = vertex[0] + rng.uniform(-0.06, 0.06)
        lng = vertex[1] + rng.uniform(-0.06, 0.06)
        if i % 50 == 1:  # a few couriers share one spot with the one before
            lat, lng = batch[-1].lat, batch[-1].lng
        ts = NOW_MS - (120_000 if i % 17 == 0 else rng.randint(0, 50_000))  # some stale
        cid = f"c{i:05d}" if i % 3 else f"z{i}"
        batch.append(Located(cid, lat, lng, ts))
        latest[cid] = (lat, lng, ts)
        status_of[cid] = rng.choice(statuses)
    await index.upsert(batch)
    for cid, status in status_of.items():
        if status is not None:
            await index.set_status(cid, status)
    for cid in list(latest)[::40]:  # taken off the grid (went offline)
        assert await index.remove(cid)
        del latest[cid]
    regions = {region_of(la, ln) for la, ln, _ in latest.values()}
    assert len(regions) == 3
    orders_region = region_of(vertex[0] + 0.01, vertex[1] + 0.01)
    points = []
    while len(points) < 120:
        p = (vertex[0] + rng.uniform(-0.04, 0.04), vertex[1] + rng.uniform(-0.04, 0.04))
        if region_of(*p) == orders_region:
            points.append(p)
    points.append(points[0])  # the same chef twice
    for radius_m in (800.0, 5000.0):
        limits = {"idle": [rng.randint(1, 14) for _ in points],
                  "to_pickup": [rng.randint(1, 6) for _ in points]}
        got = await index.nearest_by_status(
            points, regions=regions_near(orders_region, radius_m), radius_m=radius_m,
            limits=limits, now_ms=NOW_MS, stale_s=60)
        for status, lim in limits.items():
            want = await index.nearby_many(points, radius_m=radius_m, limit=lim,
                                           now_ms=NOW_MS, stale_s=60, statuses=[status])
            rows = [(cid, la, ln, ts) for cid, (la, ln, ts) in latest.items()
                    if status_of[cid] == status]
            for i, ((members, _), hits) in enumerate(zip(want, got[status], strict=True)):
                assert [h[0] for h in hits] == [m.member_id for m in members]
                assert [h[1:3] for h in hits] == [(m.lat, m.lng) for m in members]
                brute = nearby_bruteforce(rows, *points[i], radius_m=radius_m, limit=lim[i],
                                          now_ms=NOW_MS, stale_s=60)
                assert [h[0] for h in hits] == [b.id for b in brute]
        assert any(len(h) == lim for h, lim in zip(got["idle"], limits["idle"], strict=True))


async def test_snapshot_reads_the_attribute_hash_first_and_the_filed_cells(
        index: LiveIndex) -> None:
    """`snapshot(attr_hash=...)` takes a member's attribute from the attribute hash (one
    HMGET per 4,000 members) and, for members missing there, from the member's own hash
    (`attr`), as before; it also returns each member's live cell as filed with its position
    (what `PointGrid` would compute from the coordinates). The attribute keys are in the
    dispatch slot, as production's courier hashes are."""
    from geo.cells import cell_of, region_of
    from geo.grid_index import anchor_cell, ij_keys

    rng = random.Random(3)
    batch = [Located(f"c{i:03d}", HOME[0] + rng.uniform(-0.03, 0.03),
                     HOME[1] + rng.uniform(-0.03, 0.03), NOW_MS - 1000 + i) for i in range(60)]
    assert await index.upsert(batch) == 60
    r = index.redis
    for i in range(60):
        await index.set_status(f"c{i:03d}", "idle" if i % 4 else "offline")
        await r.hset(f"{index.prefix}:{{d}}:h:c{i:03d}", "vehicle", f"own{i}")
        if i % 3:
            await r.hset(f"{index.prefix}:{{d}}:veh", f"c{i:03d}", f"hash{i}")
    region = region_of(*HOME)
    snap = await index.snapshot([region], now_ms=NOW_MS, stale_s=60, statuses=["idle"],
                                attr=(f"{index.prefix}:{{d}}:h:", "vehicle"),
                                attr_hash=f"{index.prefix}:{{d}}:veh")
    by_id = {b.member_id: b for b in batch}
    want = sorted(b.member_id for b in batch
                  if int(b.member_id[1:]) % 4 and region_of(b.lat, b.lng) == region)
    assert snap.ids == want
    assert snap.attr == [f"hash{int(c[1:])}" if int(c[1:]) % 3 else f"own{int(c[1:])}"
                         for c in snap.ids]
    assert snap.cell is not None
    assert snap.cell == [int(cell_of(by_id[c].lat, by_id[c].lng), 16) for c in snap.ids]
    anchor = anchor_cell(*HOME)
    assert (ij_keys(anchor, snap.lat, snap.lng, cells=snap.cell)
            == ij_keys(anchor, snap.lat, snap.lng)).all()
    plain = await index.snapshot([region], now_ms=NOW_MS, stale_s=60, statuses=["idle"],
                                 attr=(f"{index.prefix}:{{d}}:h:", "vehicle"))
    assert plain.attr == [f"own{int(c[1:])}" for c in plain.ids]
    assert plain.ids == snap.ids
    assert (plain.lat == snap.lat).all()
    assert (plain.lng == snap.lng).all()


async def test_fresh_members_of_every_region_with_their_newest_positions(
        index: LiveIndex) -> None:
    """`fresh` answers every member seen within `stale_s`, whatever region it is filed in
    (the regions set `where.lua` keeps), with its newest position; stale ones are left out.
    An index whose regions set is gone (filed before it existed) has it refilled from the
    directory."""
    far = (-33.8688, 151.2093)  # another region
    await index.upsert([
        Located("near", *HOME, NOW_MS - 5_000),
        Located("away", *far, NOW_MS - 1_000),
        Located("stale", *HOME, NOW_MS - 120_000),
    ])
    await index.upsert([Located("near", HOME[0] + 1e-3, HOME[1], NOW_MS - 2_000)])
    want = {"near": Position(lat=HOME[0] + 1e-3, lng=HOME[1], ts_ms=NOW_MS - 2_000),
            "away": Position(lat=far[0], lng=far[1], ts_ms=NOW_MS - 1_000)}
    assert await index.regions() == sorted({region_of(*HOME), region_of(*far)})
    assert await index.fresh(now_ms=NOW_MS, stale_s=60) == want
    await index.redis.delete(index.regions_key, f"{index.regions_key}:complete")
    assert await index.fresh(now_ms=NOW_MS, stale_s=60) == want
    assert await index.regions() == sorted({region_of(*HOME), region_of(*far)})
