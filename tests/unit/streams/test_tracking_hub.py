"""The tracking hub's routing, without NATS or sockets: who receives which message, resume
without gaps or repeats, locations at most once per second per courier, consoles by cell."""

from __future__ import annotations

import json
from typing import Any

import h3

from streams.catalog import Names
from streams.events import (
    CourierAssigned,
    CourierLocated,
    CourierLocatedBatch,
    CourierLocatedMany,
    CourierUnassigned,
    LatLng,
    LocFix,
    LocRun,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
    encode,
)
from streams.outbox import Outbox
from streams.tracking_hub import HubLimits, OrderWatch, TrackingHub, track_of

PICKUP, DROPOFF = LatLng(12.97, 77.59), LatLng(12.99, 77.61)
T0 = 1_704_110_400_000


class Clock:
    def __init__(self) -> None:
        self.s = 100.0

    def mono(self) -> float:
        return self.s

    def ms(self) -> int:
        return T0 + int(self.s * 1000)


def make_hub(clock: Clock) -> TrackingHub:
    return TrackingHub(Names("t"), HubLimits(), clock_ms=clock.ms, monotonic=clock.mono)


def created(order_id: str = "o1", chef: str = "chef1") -> OrderCreated:
    return OrderCreated(order_id=order_id, order_number="HC1", customer_id="cust1",
                        chef_id=chef, pickup=PICKUP, dropoff=DROPOFF, total_cents=2599,
                        created_at_ms=T0)


def status(s: OrderStatus, order_id: str = "o1", chef: str = "chef1") -> OrderStatusChanged:
    return OrderStatusChanged(order_id=order_id, order_number="HC1", customer_id="cust1",
                              chef_id=chef, status=s, at_ms=T0, pickup=PICKUP,
                              dropoff=DROPOFF, ready_at_ms=T0, promised_at_ms=T0 + 1_800_000)


def fix(courier: str, lat: float, lng: float, ts: int) -> CourierLocated:
    return CourierLocated(courier_id=courier, lat=lat, lng=lng, ts=ts, received_ms=ts)


def drain(box: Outbox) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while box.pending():
        events = list(box._events)
        box._events.clear()
        box._events_bytes = 0
        slots = list(box._slots.values())
        box._slots.clear()
        out += [json.loads(m) for m in events + slots]
    return out


def viewing_pickup(clock: Clock) -> tuple[TrackingHub, Outbox, str]:
    """A hub with one console viewing the pickup's res-7 cell, its first messages drained:
    (hub, the console's outbox, the cell)."""
    hub = make_hub(clock)
    here = h3.latlng_to_cell(PICKUP.lat, PICKUP.lng, 7)
    box = hub.new_outbox()
    console = hub.watch_console(box)
    hub.set_view(console, [here])
    drain(box)
    return hub, box, here


def test_status_goes_to_order_watchers_and_the_chef_with_ids() -> None:
    """order.status reaches every socket of the order and the chef's; order.created reaches
    the chef as NEW_ORDER; other orders' events reach neither."""
    hub = make_hub(Clock())
    order_box, chef_box, other_box = hub.new_outbox(), hub.new_outbox(), hub.new_outbox()
    hub.watch_chef(["chef1"], chef_box)
    hub.watch_chef(["chef2"], other_box)
    hub.apply_order_event(created(), 1)
    watch = hub.watch_order(track_of(created()), order_box)
    watch.go_live()
    hub.apply_order_event(status("accepted"), 2)
    hub.apply_order_event(status("accepted", order_id="o2", chef="chef2"), 3)
    assert [(m["type"], m.get("id")) for m in drain(chef_box)] == [
        ("NEW_ORDER", 1), ("ORDER_STATUS_UPDATE", 2)]
    assert [(m["type"], m["id"]) for m in drain(order_box)] == [("ORDER_STATUS_UPDATE", 2)]
    assert [m["payload"]["orderId"] for m in drain(other_box)] == ["o2"]


def test_replay_then_live_has_no_gap_and_no_repeat() -> None:
    """Live events that arrive while a socket replays are held; after the replay only those
    newer than the last replayed one are sent, in sequence order."""
    box = Outbox(max_event_bytes=10_000, max_slots=10)
    watch = OrderWatch("o1", box)
    watch.offer(5, b'"5"')  # live, during replay
    watch.offer(4, b'"4"')
    watch.replay(3, b'"3"')
    watch.replay(4, b'"4"')
    watch.go_live()
    watch.offer(5, b'"5"')  # a duplicate delivery
    watch.offer(6, b'"6"')
    assert [json.loads(m) for m in box._events] == ["3", "4", "5", "6"]


def test_location_at_most_once_per_second_with_eta() -> None:
    """An assigned courier's fixes reach the order's sockets as DELIVERY_LOCATION at most
    once per second (the latest held one is released when the second is over), with an ETA
    via the pickup until the food is on board."""
    clock = Clock()
    hub = make_hub(clock)
    box = hub.new_outbox()
    hub.apply_order_event(created(), 1)
    hub.watch_order(track_of(created()), box).go_live()
    hub.apply_dispatch_event(CourierAssigned(order_id="o1", courier_id="c1", offer_id="f",
                                             at_ms=T0))
    for i in range(5):
        hub.on_fix(fix("c1", 12.99 + i * 1e-4, 77.60, T0 + i * 100))
        clock.s += 0.1
    first = drain(box)
    assert [m["payload"]["ts"] for m in first] == [T0]
    clock.s += 0.6
    hub.release_held()
    second = drain(box)
    assert [m["payload"]["ts"] for m in second] == [T0 + 400]
    via_pickup = second[0]["payload"]["eta_s"]
    hub.apply_order_event(status("picked_up"), 2)
    clock.s += 1.0
    hub.on_fix(fix("c1", 12.99 + 4e-4, 77.60, T0 + 2000))
    direct = next(m for m in drain(box) if m["type"] == "DELIVERY_LOCATION")["payload"]["eta_s"]
    assert direct < via_pickup
    hub.apply_dispatch_event(CourierUnassigned(order_id="o1", courier_id="c1", at_ms=T0,
                                               reason="declined"))
    clock.s += 1.0
    hub.on_fix(fix("c1", 12.96, 77.58, T0 + 3000))
    assert drain(box) == []


def test_console_sees_only_its_cells_and_heat() -> None:
    """Consoles get positions and markers in their cells only, and supply/demand per cell."""
    clock = Clock()
    hub = make_hub(clock)
    here = h3.latlng_to_cell(PICKUP.lat, PICKUP.lng, 7)
    far = fix("c2", 40.0, -3.7, T0)
    box = hub.new_outbox()
    console = hub.watch_console(box)
    hub.apply_order_event(created(), 1)
    hub.on_fix(fix("c1", PICKUP.lat, PICKUP.lng, T0))
    hub.set_view(console, [here])
    first = drain(box)
    kinds = {m["type"] for m in first}
    assert kinds == {"COURIER_POSITION", "ORDER_MARKER", "SUPPLY_DEMAND"}
    heat = next(m for m in first if m["type"] == "SUPPLY_DEMAND")["payload"]["cells"]
    assert heat == [{"cell": here, "supply": 1, "demand": 1}]
    clock.s += 2
    hub.on_fix(far)
    hub.on_fix(fix("c1", PICKUP.lat + 1e-4, PICKUP.lng, T0 + 2000))
    moved = drain(box)
    assert [m["payload"]["courierId"] for m in moved] == ["c1"]
    hub.apply_order_event(status("delivered"), 2)
    marker = drain(box)[0]
    assert (marker["type"], marker["payload"]["status"]) == ("ORDER_MARKER", "delivered")
    hub.unwatch_console(console)
    hub.on_fix(fix("c1", PICKUP.lat, PICKUP.lng, T0 + 5000))
    assert drain(box) == []


def test_location_batches_and_single_fixes_both_reach_the_console() -> None:
    """A ``loc.batch`` message shows its newest fix; an older-format ``loc.fix`` message is
    still understood; undecodable data is ignored."""
    clock = Clock()
    hub, box, _ = viewing_pickup(clock)
    batch = CourierLocatedBatch(courier_id="c1", received_ms=T0, fixes=(
        LocFix(PICKUP.lat, PICKUP.lng, T0), LocFix(PICKUP.lat + 1e-4, PICKUP.lng, T0 + 500)))
    hub.on_location_data(encode(batch))
    shown = [m["payload"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert [(p["courierId"], p["ts"]) for p in shown] == [("c1", T0 + 500)]
    clock.s += 2
    hub.on_location_data(encode(fix("c1", PICKUP.lat + 2e-4, PICKUP.lng, T0 + 2500)))
    shown = [m["payload"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert [p["ts"] for p in shown] == [T0 + 2500]
    clock.s += 2
    hub.on_location_data(b'{"type":"loc.batch","fixes":"nope"}')
    hub.on_location_data(encode(CourierLocatedBatch(courier_id="c1", received_ms=T0, fixes=())))
    assert drain(box) == []


def test_coalesced_fixes_of_several_couriers_reach_the_console() -> None:
    """A ``loc.many`` message (device sockets' fixes, coalesced per region) shows each run's
    newest fix, for every courier in it."""
    clock = Clock()
    hub, box, _ = viewing_pickup(clock)
    many = CourierLocatedMany(runs=(
        LocRun("c1", T0, (LocFix(PICKUP.lat, PICKUP.lng, T0),
                          LocFix(PICKUP.lat + 1e-4, PICKUP.lng, T0 + 400))),
        LocRun("c2", T0, (LocFix(PICKUP.lat, PICKUP.lng + 1e-4, T0 + 100),)),
        LocRun("c3", T0, ()),
    ))
    hub.on_location_data(encode(many))
    shown = [m["payload"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert sorted((p["courierId"], p["ts"]) for p in shown) == [("c1", T0 + 400),
                                                                ("c2", T0 + 100)]


def test_chef_is_found_by_user_id_and_sees_the_items() -> None:
    """Events name the chef's user in chef_user_id: its socket gets NEW_ORDER with the items
    and the status updates; a socket keyed by the profile id gets nothing."""
    from streams.events import OrderLine

    hub = make_hub(Clock())
    by_user, by_profile = hub.new_outbox(), hub.new_outbox()
    hub.watch_chef(["user-9"], by_user)
    hub.watch_chef(["chef1"], by_profile)
    event = OrderCreated(order_id="o1", order_number="HC1", customer_id="cust1",
                         chef_id="chef1", chef_user_id="user-9", pickup=PICKUP,
                         dropoff=DROPOFF, total_cents=1250, created_at_ms=T0,
                         items=(OrderLine(menu_item_id="m1", name="Dosa", quantity=2,
                                          price_cents=500, notes="spicy"),))
    hub.apply_order_event(event, 1)
    (new,) = drain(by_user)
    assert new["type"] == "NEW_ORDER"
    assert new["payload"]["items"] == [{"menuItemId": "m1", "name": "Dosa", "quantity": 2,
                                        "price": 5.0, "priceCents": 500, "notes": "spicy"}]
    assert new["payload"]["total"] == 12.5
    assert drain(by_profile) == []


def test_console_positions_carry_the_couriers_dispatch_state() -> None:
    """COURIER_POSITION carries the courier's state once read; a state change alone re-sends
    the position to consoles viewing that courier (so its colour changes without a move)."""
    clock = Clock()
    hub, box, _ = viewing_pickup(clock)
    hub.on_fix(fix("c1", PICKUP.lat, PICKUP.lng, T0))
    first = [m for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert "status" not in first[0]["payload"]  # unknown until read from the store
    assert hub.set_courier_statuses({"c1": "idle", "c9": "offline"}) == 2
    again = [m for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert [(m["payload"]["courierId"], m["payload"]["status"]) for m in again] == [("c1", "idle")]
    assert hub.set_courier_statuses({"c1": "idle"}) == 0  # unchanged: nothing sent
    assert drain(box) == []
    hub.set_courier_statuses({"c1": "to_pickup"})
    clock.s += 2
    hub.on_fix(fix("c1", PICKUP.lat + 1e-4, PICKUP.lng, T0 + 2000))
    states = [m["payload"]["status"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert states[-1] == "to_pickup"


def heat_of(box: Outbox) -> dict[str, int]:
    """The supply per cell (where there is any) of the last SUPPLY_DEMAND in the outbox."""
    heat = [m for m in drain(box) if m["type"] == "SUPPLY_DEMAND"][-1]["payload"]["cells"]
    return {c["cell"]: c["supply"] for c in heat if c["supply"]}


def test_stale_couriers_leave_the_supply_and_markers_carry_the_promise() -> None:
    """Only couriers heard within courier_stale_s count as supply; ORDER_MARKER carries
    promised_ms."""
    clock = Clock()
    hub = make_hub(clock)
    hub.on_fix(fix("old", PICKUP.lat, PICKUP.lng, T0))
    clock.s += HubLimits().courier_stale_s + 1
    hub.on_fix(fix("new", DROPOFF.lat, DROPOFF.lng, T0 + 61_000))
    box = hub.new_outbox()
    console = hub.watch_console(box)
    hub.apply_order_event(created(), 1)
    hub.apply_order_event(status("accepted"), 2)
    here, there = (h3.latlng_to_cell(p.lat, p.lng, 7) for p in (PICKUP, DROPOFF))
    hub.set_view(console, [here])
    shown = drain(box)
    marker = next(m for m in shown if m["type"] == "ORDER_MARKER")["payload"]
    assert marker["promised_ms"] == T0 + 1_800_000
    hub.set_view(console, [here, there])
    hub.send_heat()
    assert heat_of(box) == {there: 1}  # "old" is stale: no supply at the pickup


def test_fleet_read_from_the_live_index_is_kept_unless_older_and_shown_in_view() -> None:
    """`take_fleet` (the live index's positions, read when fixes start being taken) keeps a
    courier's fix unless a newer one is kept, dates it as seen when it was taken (so an old
    one goes stale sooner), and sends consoles the couriers in their view."""
    clock = Clock()
    hub, box, here = viewing_pickup(clock)
    hub.on_fix(fix("c1", PICKUP.lat, PICKUP.lng, clock.ms()))
    drain(box)
    stale_s = HubLimits().courier_stale_s
    hub.take_fleet([
        ("c1", DROPOFF.lat, DROPOFF.lng, clock.ms() - 5000),  # older than what is kept
        ("c2", PICKUP.lat, PICKUP.lng, clock.ms() - 1000),
        ("c3", PICKUP.lat, PICKUP.lng, clock.ms() - int((stale_s - 1) * 1000)),
        ("c4", DROPOFF.lat, DROPOFF.lng, clock.ms()),  # out of view
    ])
    shown = [m["payload"]["courierId"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert sorted(shown) == ["c2", "c3"]
    hub.send_heat()
    assert heat_of(box) == {here: 3}
    clock.s += 2  # c3's fix is now older than courier_stale_s
    hub.send_heat()
    assert heat_of(box) == {here: 2}


def test_fixes_kept_while_no_console_watches_are_shown_when_one_does() -> None:
    """While no console views a cell, coalesced fixes are kept without their heat cell. A
    console that sets its view then sees every kept courier in its cells (and the heat
    counts them); a kept courier that later moves out of view is seen leaving; an older fix
    never moves a kept courier back, and a customer following a courier still gets its
    location."""
    clock = Clock()
    hub = make_hub(clock)
    here = h3.latlng_to_cell(PICKUP.lat, PICKUP.lng, 7)
    far = LocFix(40.0, -3.7, T0 + 900)
    hub.on_location_data(encode(CourierLocatedMany(runs=(
        LocRun("c1", T0, (LocFix(PICKUP.lat, PICKUP.lng, T0 + 500),)),
        LocRun("c2", T0, (far,)),
        LocRun("c1", T0, (LocFix(PICKUP.lat + 0.5, PICKUP.lng, T0 + 100),)),  # older
        LocRun("bad", T0, (LocFix(95.0, 0.0, T0),)),
    ))))
    box = hub.new_outbox()
    console = hub.watch_console(box)
    hub.set_view(console, [here])
    first = drain(box)
    shown = [m["payload"] for m in first if m["type"] == "COURIER_POSITION"]
    assert [(p["courierId"], p["ts"]) for p in shown] == [("c1", T0 + 500)]
    heat = next(m for m in first if m["type"] == "SUPPLY_DEMAND")["payload"]["cells"]
    assert heat == [{"cell": here, "supply": 1, "demand": 0}]
    clock.s += 2
    hub.on_location_data(encode(CourierLocatedMany(runs=(
        LocRun("c1", T0, (LocFix(40.0, -3.7, T0 + 3000),)),))))
    left = [m["payload"] for m in drain(box) if m["type"] == "COURIER_POSITION"]
    assert [(p["courierId"], p["ts"]) for p in left] == [("c1", T0 + 3000)]
    hub.unwatch_console(console)
    watcher = hub.new_outbox()
    hub.apply_order_event(created(), 1)
    hub.watch_order(track_of(created()), watcher).go_live()
    hub.apply_dispatch_event(CourierAssigned(order_id="o1", courier_id="c2", offer_id="f1",
                                             at_ms=T0))
    drain(watcher)
    clock.s += 2
    hub.on_location_data(encode(CourierLocatedMany(runs=(
        LocRun("c2", T0, (LocFix(PICKUP.lat, PICKUP.lng, T0 + 5000),)),))))
    located = [m["payload"] for m in drain(watcher) if m["type"] == "DELIVERY_LOCATION"]
    assert [p["ts"] for p in located] == [T0 + 5000]
