"""Event codecs: every event round-trips through JSON with its ``type`` tag and version."""

from __future__ import annotations

import msgspec
import pytest

from streams.catalog import STREAMS, Names
from streams.events import (
    CourierAssigned,
    CourierLocated,
    CourierLocatedBatch,
    CourierLocatedMany,
    LatLng,
    LocFix,
    LocRun,
    OrderStatusChanged,
    decode,
    decode_dispatch_event,
    decode_locations,
    encode,
)


def test_events_round_trip_with_type_tag() -> None:
    """encode → decode gives the same event; the wire carries its type tag and v=1."""
    ev = OrderStatusChanged(
        order_id="o1", order_number="HC1", customer_id="c", chef_id="k", status="accepted",
        previous_status="pending", at_ms=1, pickup=LatLng(12.9, 77.5),
        dropoff=LatLng(12.95, 77.6), ready_at_ms=10, promised_at_ms=20,
    )
    wire = encode(ev)
    assert msgspec.json.decode(wire)["type"] == "order.status"
    assert msgspec.json.decode(wire)["v"] == 1
    assert decode(wire) == ev
    fix = CourierLocated(courier_id="d1", lat=1.5, lng=2.5, ts=3, received_ms=4)
    assert decode(encode(fix)) == fix


def test_location_batches_round_trip_and_single_fixes_still_decode() -> None:
    """``loc.batch`` carries one courier's fixes as compact arrays; the location decoder
    reads both it and the older one-fix-per-message ``loc.fix``."""
    batch = CourierLocatedBatch(courier_id="d1", received_ms=9, fixes=(
        LocFix(1.5, 2.5, 3), LocFix(1.6, 2.6, 4, 5.0, 90.0, 3.0, True)))
    wire = encode(batch)
    assert msgspec.json.decode(wire)["fixes"][0][:3] == [1.5, 2.5, 3]
    assert decode_locations(wire) == batch
    assert decode(wire) == batch
    assert batch.newest() == CourierLocated(
        courier_id="d1", lat=1.6, lng=2.6, ts=4, received_ms=9, speed_mps=5.0,
        heading_deg=90.0, accuracy_m=3.0, outside_zones=True)
    assert [f.ts for f in batch.located()] == [3, 4]
    assert CourierLocatedBatch(courier_id="d1", received_ms=9, fixes=()).newest() is None
    single = CourierLocated(courier_id="d1", lat=1.5, lng=2.5, ts=3, received_ms=4)
    assert decode_locations(encode(single)) == single
    with pytest.raises(msgspec.ValidationError):
        decode_locations(encode(CourierAssigned(order_id="o", courier_id="d", offer_id="x",
                                                at_ms=1)))


def test_coalesced_locations_round_trip_and_give_each_runs_newest_fix() -> None:
    """``loc.many`` carries several couriers' runs of fixes; `newest` gives each run's last
    fix with its courier and receive time (empty runs give nothing)."""
    many = CourierLocatedMany(runs=(
        LocRun("d1", 9, (LocFix(1.5, 2.5, 3), LocFix(1.6, 2.6, 4, 5.0))),
        LocRun("d2", 10, ()),
        LocRun("d3", 11, (LocFix(1.7, 2.7, 5, None, None, None, True),)),
    ))
    wire = encode(many)
    assert msgspec.json.decode(wire)["runs"][0][:2] == ["d1", 9]
    assert decode_locations(wire) == many
    assert decode(wire) == many
    assert many.newest() == [
        CourierLocated(courier_id="d1", lat=1.6, lng=2.6, ts=4, received_ms=9, speed_mps=5.0),
        CourierLocated(courier_id="d3", lat=1.7, lng=2.7, ts=5, received_ms=11,
                       outside_zones=True)]


def test_family_decoder_refuses_other_families() -> None:
    """The dispatch decoder does not accept an order event (wrong family is an error)."""
    ok = CourierAssigned(order_id="o", courier_id="d", offer_id="x", at_ms=1)
    assert decode_dispatch_event(encode(ok)) == ok
    wrong = encode(CourierLocated(courier_id="d1", lat=1, lng=2, ts=3, received_ms=4))
    with pytest.raises(msgspec.ValidationError):
        decode_dispatch_event(wrong)


def test_names_are_namespaced() -> None:
    """Subjects start with '<ns>.' and streams with '<NS>_': namespaces never overlap."""
    n = Names("t1")
    assert n.location("841f91dffffffff", "d1") == "t1.loc.841f91dffffffff.d1"
    assert n.order_event("status", "o1") == "t1.order.status.o1"
    assert [n.stream(s) for s in STREAMS] == ["T1_ORDERS", "T1_DISPATCH", "T1_LOCATIONS"]
    assert n.stream_subjects(STREAMS[2]) == ["t1.loc.>"]
