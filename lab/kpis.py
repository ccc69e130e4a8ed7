"""A lab day's figures: `homechef simulate`'s KPIs, computed by its own code, plus the lab's.

The shared ones (`placed` .. `stacked`, `wait_at_chef_p50_s`, `order_to_door_p50_s`,
`late_pct`, ...) come from `dispatch.day_kpis.compute_kpis` over the same timelines the
live simulator records (dispatchable = the chef accepted; at chef = the courier arrived at
the kitchen; order to door = placed to delivered), so a figure means the same in both.
The lab adds what only a virtual day can measure exactly:

- `eta_error_p50_s` / `eta_error_p90_s`: |delivered - predicted at pickup| (the courier's
  remaining route on the travel model with the known ready times, `lab.engine`);
- `promise_error_p90_s`: |delivered - promised|;
- `orders_per_courier_hour`: delivered ÷ courier hours online;
- `idle_km_per_order`: straight-line km ridden with no food on board, per delivered order;
- `stacked_pct`: share of delivered orders that were stacked on a busy courier;
- `hints`, `hints_followed`, `reposition_km`: repositioning hints given to idle couriers,
  followed, and the km ridden following them (part of `idle_km`; 0 without
  `LabDispatch.reposition`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from dispatch.day_kpis import Holding, Kpis, OrderTimeline, compute_kpis, percentile
from lab.engine import OrderRecord, RunResult

__all__ = ["KPI_ROWS", "LabKpis", "SeriesPoint", "lab_kpis", "series"]


class LabKpis(Kpis, frozen=True, kw_only=True):
    couriers: int = 0
    undelivered: int = 0
    eta_error_p50_s: float | None = None
    eta_error_p90_s: float | None = None
    promise_error_p90_s: float | None = None
    orders_per_courier_hour: float | None = None
    idle_km: float = 0.0
    idle_km_per_order: float | None = None
    stacked_pct: float | None = None
    rounds: int = 0
    offers: int = 0
    hints: int = 0
    hints_followed: int = 0
    reposition_km: float = 0.0


def _timeline(r: OrderRecord) -> OrderTimeline:
    def s(ms: int | None) -> float | None:
        return None if ms is None else ms / 1000.0

    return OrderTimeline(order_id=r.order_id, placed_s=r.placed_ms / 1000.0,
                         dispatchable_s=s(r.accepted_ms), assigned_s=s(r.assigned_ms),
                         at_chef_s=s(r.at_chef_ms), picked_up_s=s(r.picked_up_ms),
                         delivered_s=s(r.delivered_ms), promised_s=s(r.promised_ms))


def lab_kpis(run: RunResult, couriers: int) -> LabKpis:
    timelines = [_timeline(r) for r in run.orders]
    holdings = [Holding(order_id=r.order_id, courier_id=r.courier_id,
                        start_s=r.assigned_ms / 1000.0,
                        end_s=None if r.delivered_ms is None else r.delivered_ms / 1000.0,
                        stacked=r.stacked)
                for r in run.orders if r.assigned_ms is not None]
    base = compute_kpis(timelines, holdings)
    delivered = [r for r in run.orders if r.delivered_ms is not None]
    eta = [abs(r.delivered_ms - r.predicted_drop_ms) / 1000.0 for r in delivered
           if r.delivered_ms is not None and r.predicted_drop_ms is not None]
    promise = [abs(r.delivered_ms - r.promised_ms) / 1000.0 for r in delivered
               if r.delivered_ms is not None]
    hours = run.courier_online_ms / 3.6e6
    n = len(delivered)
    idle_km = run.empty_m / 1000.0
    return LabKpis(
        **msgspec.structs.asdict(base), couriers=couriers, undelivered=len(run.orders) - n,
        eta_error_p50_s=_r(percentile(eta, 50)), eta_error_p90_s=_r(percentile(eta, 90)),
        promise_error_p90_s=_r(percentile(promise, 90)),
        orders_per_courier_hour=_r(n / hours, 3) if hours else None,
        idle_km=round(idle_km, 1), idle_km_per_order=_r(idle_km / n, 3) if n else None,
        stacked_pct=_r(100.0 * sum(r.stacked for r in delivered) / n, 2) if n else None,
        rounds=run.rounds, offers=run.offers, hints=run.hints,
        hints_followed=run.hints_followed, reposition_km=round(run.reposition_m / 1000.0, 1))


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


KPI_ROWS: tuple[tuple[str, str], ...] = (
    ("orders placed", "placed"),
    ("orders delivered", "delivered"),
    ("courier wait at chef p50 (s)", "wait_at_chef_p50_s"),
    ("courier wait at chef p90 (s)", "wait_at_chef_p90_s"),
    ("order to door p50 (s)", "order_to_door_p50_s"),
    ("order to door p90 (s)", "order_to_door_p90_s"),
    ("time to assign p50 (s)", "time_to_assign_p50_s"),
    ("late (%)", "late_pct"),
    ("orders per courier-hour", "orders_per_courier_hour"),
    ("idle km", "idle_km"),
    ("idle km per order", "idle_km_per_order"),
    ("repositioning km", "reposition_km"),
    ("stacked (%)", "stacked_pct"),
    ("ETA error at pickup p50 (s)", "eta_error_p50_s"),
    ("ETA error at pickup p90 (s)", "eta_error_p90_s"),
    ("promise error p90 (s)", "promise_error_p90_s"),
    ("double assignments", "double_assignments"),
)
"""The table's rows: label, LabKpis field."""


class SeriesPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Orders placed in one bucket of the day, and the fleet at its start."""

    start_ms: int
    placed: int
    wait_at_chef_p50_s: float | None
    order_to_door_p50_s: float | None
    late_pct: float | None
    couriers_online: int
    couriers_idle: int
    orders_waiting: int


def series(run: RunResult, start_ms: int, end_ms: int,
           bucket_ms: int = 900_000) -> list[SeriesPoint]:
    """The day in buckets (by placement time), for the plot."""
    out = []
    for t in range(start_ms, end_ms, bucket_ms):
        orders = [r for r in run.orders if t <= r.placed_ms < t + bucket_ms]
        waits = _spans(orders, "at_chef_ms", "picked_up_ms")
        doors = _spans(orders, "placed_ms", "delivered_ms")
        judged = [r for r in orders if r.delivered_ms is not None]
        late = sum(1 for r in judged if (r.delivered_ms or 0) > r.promised_ms)
        fleet = next((s for s in run.samples if s.at_ms >= t), None)
        out.append(SeriesPoint(
            start_ms=t, placed=len(orders), wait_at_chef_p50_s=_r(percentile(waits, 50)),
            order_to_door_p50_s=_r(percentile(doors, 50)),
            late_pct=_r(100.0 * late / len(judged)) if judged else None,
            couriers_online=fleet.online if fleet else 0,
            couriers_idle=fleet.idle if fleet else 0,
            orders_waiting=fleet.waiting if fleet else 0))
    return out


def _spans(orders: Sequence[OrderRecord], start: str, end: str) -> list[float]:
    out = []
    for r in orders:
        a, b = getattr(r, start), getattr(r, end)
        if a is not None and b is not None:
            out.append(max(0.0, (b - a) / 1000.0))
    return out
