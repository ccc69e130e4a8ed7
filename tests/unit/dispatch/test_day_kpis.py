"""KPI arithmetic on hand-made timelines."""

from __future__ import annotations

import pytest

from dispatch.day_kpis import (
    Holding,
    OrderTimeline,
    compute_kpis,
    double_assignments,
    fleet_snapshot_conflicts,
    kpi_table,
    percentile,
)


def test_percentile_interpolates_like_numpy() -> None:
    """Linear interpolation between ranks; one value is every percentile; none is None."""
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([10, 20, 30, 40], 90) == pytest.approx(37)
    assert percentile([40, 10, 30, 20], 0) == 10
    assert percentile([5], 90) == 5
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="q must be"):
        percentile([1], 101)


def test_kpis_from_timelines() -> None:
    """Time to assign counts from dispatchable to assigned; wait at chef from arrival to
    pick-up; order to door from placing; late % over delivered orders with a promise."""
    orders = [
        OrderTimeline(order_id="a", placed_s=0, dispatchable_s=10, assigned_s=14, at_chef_s=60,
                      picked_up_s=90, delivered_s=300, promised_s=400),
        OrderTimeline(order_id="b", placed_s=5, dispatchable_s=15, assigned_s=35, at_chef_s=80,
                      picked_up_s=80, delivered_s=505, promised_s=500),
        OrderTimeline(order_id="c", placed_s=10, dispatchable_s=20),  # never assigned
        OrderTimeline(order_id="d", placed_s=12, cancelled_s=30),
    ]
    k = compute_kpis(orders, [])
    assert (k.placed, k.assigned, k.picked_up, k.delivered, k.cancelled) == (4, 2, 2, 2, 1)
    assert k.time_to_assign_p50_s == 12  # 4 and 20
    assert k.time_to_assign_p90_s == pytest.approx(4 + 0.9 * 16)
    assert k.wait_at_chef_p50_s == 15  # 30 and 0
    assert k.order_to_door_p50_s == 400  # 300 and 500
    assert k.late_pct == 50.0
    assert k.double_assignments == 0
    assert "| orders delivered" in kpi_table(k)
    empty = compute_kpis([], [])
    assert empty.late_pct is None
    assert empty.order_to_door_p90_s is None


def test_eta_errors_compare_the_tracked_arrival_with_the_delivery() -> None:
    """Absolute error of the arrival time the tracking gave at assignment and at pick-up,
    over delivered orders that have one; early and late count alike."""
    orders = [
        OrderTimeline(order_id="a", placed_s=0, delivered_s=600, eta_at_assign_s=540,
                      eta_at_pickup_s=610),
        OrderTimeline(order_id="b", placed_s=0, delivered_s=900, eta_at_assign_s=1000,
                      eta_at_pickup_s=870),
        OrderTimeline(order_id="c", placed_s=0, delivered_s=700),  # no ETA asked
        OrderTimeline(order_id="d", placed_s=0, eta_at_assign_s=50),  # not delivered
    ]
    k = compute_kpis(orders, [])
    assert k.eta_error_assign_p50_s == 80  # 60 and 100
    assert k.eta_error_assign_p90_s == pytest.approx(96)
    assert k.eta_error_pickup_p50_s == 20  # 10 and 30
    assert "| ETA error at pick-up p50 / p90" in kpi_table(k)
    assert compute_kpis([], []).eta_error_pickup_p90_s is None


def test_double_assignment_detection() -> None:
    """An order held by two couriers at once, or a courier given a second order at once that
    was not offered as stacked, is a double assignment; back-to-back holdings and an order
    stacked on the one the courier already carries are not."""
    fine = [
        Holding(order_id="o1", courier_id="c1", start_s=0, end_s=10),
        Holding(order_id="o2", courier_id="c1", start_s=10, end_s=20),  # after o1 ended
        Holding(order_id="o1", courier_id="c2", start_s=10, end_s=15),  # o1 re-assigned later
        Holding(order_id="o3", courier_id="c3", start_s=0),
        Holding(order_id="o4", courier_id="c3", start_s=1, stacked=True),  # stacked on o3
    ]
    assert double_assignments(fine) == 0
    assert compute_kpis([], fine).stacked == 1
    # A plain offer to a courier already carrying a stacked pair is a conflict with both.
    plain_on_top = [*fine[3:], Holding(order_id="o5", courier_id="c3", start_s=2)]
    assert double_assignments(plain_on_top) == 2
    same_order = [Holding(order_id="o1", courier_id="c1", start_s=0, end_s=10),
                  Holding(order_id="o1", courier_id="c2", start_s=5)]
    assert double_assignments(same_order) == 1
    same_courier = [Holding(order_id="o1", courier_id="c1", start_s=0),
                    Holding(order_id="o2", courier_id="c1", start_s=3, end_s=4)]
    assert double_assignments(same_courier) == 1
    k = compute_kpis([], same_order + same_courier, fleet_conflicts=2)
    assert k.double_assignments == 1 + 2 + 2
    assert (k.double_in_holdings, k.double_in_fleet_snapshots) == (3, 2)


def test_a_holding_counts_until_its_delivery_was_reported() -> None:
    """Core may end a delivered holding as soon as the report arrives and offer the courier
    its next order before the answer gets back: a next order taken after the report was sent
    is no conflict, one taken before it is."""
    delivered = Holding(order_id="o1", courier_id="c1", start_s=0, end_s=12, reported_s=10,
                        ended="delivered")
    assert double_assignments(
        [delivered, Holding(order_id="o2", courier_id="c1", start_s=11, end_s=20)]) == 0
    assert double_assignments(
        [delivered, Holding(order_id="o2", courier_id="c1", start_s=9, end_s=20)]) == 1
    assert double_assignments(  # without a report, the answer's arrival ends it
        [Holding(order_id="o1", courier_id="c1", start_s=0, end_s=12),
         Holding(order_id="o2", courier_id="c1", start_s=11, end_s=20)]) == 1


def test_fleet_snapshot_conflicts() -> None:
    """In one /fleet/orders snapshot a courier on two orders is a conflict unless all but its
    first were offered as stacked; unassigned orders are ignored."""
    assert fleet_snapshot_conflicts([("o1", "c1"), ("o2", "c2"), ("o3", None)]) == []
    assert fleet_snapshot_conflicts([("o1", "c1"), ("o2", "c1")]) == [
        "courier c1 carries unstacked o1, o2"]
    assert fleet_snapshot_conflicts([("o1", "c1"), ("o2", "c1")],
                                    stacked=frozenset({"o2"})) == []
    assert len(fleet_snapshot_conflicts([("o1", "c1"), ("o2", "c1"), ("o3", "c1")],
                                        stacked=frozenset({"o2"}))) == 1
    assert fleet_snapshot_conflicts([("o1", "c1"), ("o1", "c2")]) == [
        "order o1 listed with couriers c1 and c2"]
