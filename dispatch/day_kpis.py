"""KPIs of a simulated day from the timestamps observed (pure), one definition for the live
simulator (`homechef simulate`, `api.simulator`) and the lab (`lab.kpis`).

Times are seconds on one clock (the simulator's wall clock, UTC epoch seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec


class OrderTimeline(msgspec.Struct, kw_only=True):
    """What the simulator saw of one order (None: did not happen)."""

    order_id: str
    placed_s: float
    asked_s: float | None = None
    """The customer started ordering (placed_s - asked_s: how long placing took)."""
    paid_s: float | None = None
    dispatchable_s: float | None = None
    """The chef accepted it: from now on dispatch may assign it."""
    assigned_s: float | None = None
    """A courier's acceptance was confirmed by core."""
    at_chef_s: float | None = None
    picked_up_s: float | None = None
    delivered_s: float | None = None
    promised_s: float | None = None
    cancelled_s: float | None = None
    eta_at_assign_s: float | None = None
    """When the order's tracking said it would arrive, asked just after the courier's
    acceptance was confirmed (the time of the answer + its ``eta_s``)."""
    eta_at_pickup_s: float | None = None
    """The same, asked just after the pick-up."""


class Holding(msgspec.Struct, frozen=True, kw_only=True):
    """A courier held an order from `start_s` until `end_s` (None: still holding)."""

    order_id: str
    courier_id: str
    start_s: float
    end_s: float | None = None
    stacked: bool = False
    """Dispatch offered it as part of a stack (a courier may then hold several orders)."""
    via: str = "offer"
    """How the courier came to hold it: "offer" (accepted), "fleet" (a fleet manager's
    assignment) or "check-in" (the app learnt it from GET /delivery/orders)."""
    ended: str = ""
    """How the holding ended: "delivered", or why it was given up."""
    reported_s: float | None = None
    """When the courier app sent the report that ended it (delivered). Core may end the
    holding any time from then on and offer the courier its next order before the answer
    comes back (an answer held up by an outage), so conflicts count the holding until then."""


class Kpis(msgspec.Struct, frozen=True, kw_only=True):
    placed: int
    assigned: int
    picked_up: int
    delivered: int
    cancelled: int
    time_to_assign_p50_s: float | None
    time_to_assign_p90_s: float | None
    wait_at_chef_p50_s: float | None
    wait_at_chef_p90_s: float | None
    order_to_door_p50_s: float | None
    order_to_door_p90_s: float | None
    late_pct: float | None
    """Share of delivered orders delivered after the promised time, in percent."""
    double_assignments: int
    """Orders held by two couriers at once + couriers holding two unstacked orders at once
    + conflicts seen in core's /fleet/orders snapshots."""
    double_in_holdings: int = 0
    double_in_fleet_snapshots: int = 0
    stacked: int = 0
    """Orders accepted as stacked (carried alongside another order of the same courier)."""
    eta_error_assign_p50_s: float | None = None
    """|delivered - the ETA's arrival time|, the ETA asked at assignment (delivered orders)."""
    eta_error_assign_p90_s: float | None = None
    eta_error_pickup_p50_s: float | None = None
    """The same, the ETA asked at pick-up."""
    eta_error_pickup_p90_s: float | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default);
    None for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _held_until(h: Holding) -> float:
    if h.reported_s is not None:
        return h.reported_s
    return math.inf if h.end_s is None else h.end_s


def _overlap(a: Holding, b: Holding) -> bool:
    return a.start_s < _held_until(b) and b.start_s < _held_until(a)


def double_assignments(holdings: Iterable[Holding]) -> int:
    """Conflicts: an order held by two different couriers at overlapping times (counted once
    per order), and a courier holding two different orders at overlapping times unless the
    later one was offered as stacked — dispatch knowingly added it to the courier's route
    (counted once per overlapping pair)."""
    return len(holding_conflicts(holdings))


def holding_conflicts(holdings: Iterable[Holding]) -> list[tuple[Holding, Holding]]:
    """The conflicting pairs `double_assignments` counts (for the report of what happened)."""
    by_order: dict[str, list[Holding]] = {}
    by_courier: dict[str, list[Holding]] = {}
    for h in holdings:
        by_order.setdefault(h.order_id, []).append(h)
        by_courier.setdefault(h.courier_id, []).append(h)
    out: list[tuple[Holding, Holding]] = []
    for hs in by_order.values():
        pair = next(((a, b) for i, a in enumerate(hs) for b in hs[i + 1:]
                     if a.courier_id != b.courier_id and _overlap(a, b)), None)
        if pair is not None:
            out.append(pair)
    for hs in by_courier.values():
        out += [(a, b) for i, a in enumerate(hs) for b in hs[i + 1:]
                if a.order_id != b.order_id and _overlap(a, b)
                and not (b if b.start_s >= a.start_s else a).stacked]
    return out


def compute_kpis(timelines: Iterable[OrderTimeline], holdings: Iterable[Holding],
                 fleet_conflicts: int = 0) -> Kpis:
    orders = list(timelines)

    def spans(start: str, end: str) -> list[float]:
        out = []
        for o in orders:
            a, b = getattr(o, start), getattr(o, end)
            if a is not None and b is not None:
                out.append(max(0.0, b - a))
        return out

    to_assign = spans("dispatchable_s", "assigned_s")
    wait = spans("at_chef_s", "picked_up_s")
    door = spans("placed_s", "delivered_s")
    delivered = [o for o in orders if o.delivered_s is not None]
    judged = [o for o in delivered if o.promised_s is not None]
    late = sum(1 for o in judged
               if (o.delivered_s or 0.0) > (o.promised_s or 0.0))
    held = list(holdings)
    in_holdings = double_assignments(held)

    def eta_errors(field: str) -> list[float]:
        return [abs((o.delivered_s or 0.0) - getattr(o, field)) for o in delivered
                if getattr(o, field) is not None]

    at_assign, at_pickup = eta_errors("eta_at_assign_s"), eta_errors("eta_at_pickup_s")
    return Kpis(
        placed=len(orders),
        assigned=sum(1 for o in orders if o.assigned_s is not None),
        picked_up=sum(1 for o in orders if o.picked_up_s is not None),
        delivered=len(delivered),
        cancelled=sum(1 for o in orders if o.cancelled_s is not None),
        time_to_assign_p50_s=percentile(to_assign, 50),
        time_to_assign_p90_s=percentile(to_assign, 90),
        wait_at_chef_p50_s=percentile(wait, 50),
        wait_at_chef_p90_s=percentile(wait, 90),
        order_to_door_p50_s=percentile(door, 50),
        order_to_door_p90_s=percentile(door, 90),
        late_pct=100.0 * late / len(judged) if judged else None,
        double_assignments=in_holdings + fleet_conflicts,
        double_in_holdings=in_holdings,
        double_in_fleet_snapshots=fleet_conflicts,
        stacked=len({h.order_id for h in held if h.stacked}),
        eta_error_assign_p50_s=percentile(at_assign, 50),
        eta_error_assign_p90_s=percentile(at_assign, 90),
        eta_error_pickup_p50_s=percentile(at_pickup, 50),
        eta_error_pickup_p90_s=percentile(at_pickup, 90),
    )


def fleet_snapshot_conflicts(orders: Iterable[tuple[str, str | None]],
                             stacked: frozenset[str] = frozenset()) -> list[str]:
    """Conflicts in one /fleet/orders snapshot of (order_id, courier_id) pairs, described: a
    courier carrying more than one order that was not offered as stacked (its first order is
    the one the others were stacked on; one conflict per extra order), or an order listed
    twice with different couriers."""
    by_courier: dict[str, list[str]] = {}
    courier_of: dict[str, str] = {}
    out: list[str] = []
    for order_id, courier_id in orders:
        if not courier_id:
            continue
        prev = courier_of.setdefault(order_id, courier_id)
        if prev != courier_id:
            out.append(f"order {order_id} listed with couriers {prev} and {courier_id}")
        by_courier.setdefault(courier_id, []).append(order_id)
    for courier_id, held in by_courier.items():
        unstacked = sorted({o for o in held if o not in stacked})
        if len(unstacked) > 1:
            out += [f"courier {courier_id} carries unstacked {', '.join(unstacked)}"] * (
                len(unstacked) - 1)
    return out


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.1f} {unit}" if unit else f"{value:.1f}"


def kpi_rows(k: Kpis) -> list[tuple[str, str]]:
    def pair(a: float | None, b: float | None) -> str:
        return f"{_fmt(a)} / {_fmt(b)}"

    return [
        ("orders placed", str(k.placed)),
        ("orders assigned", str(k.assigned)),
        ("orders picked up", str(k.picked_up)),
        ("orders delivered", str(k.delivered)),
        ("orders cancelled", str(k.cancelled)),
        ("time to assign p50 / p90", pair(k.time_to_assign_p50_s, k.time_to_assign_p90_s)),
        ("courier wait at chef p50 / p90", pair(k.wait_at_chef_p50_s, k.wait_at_chef_p90_s)),
        ("order to door p50 / p90", pair(k.order_to_door_p50_s, k.order_to_door_p90_s)),
        ("late (after promised time)", _fmt(k.late_pct, "%")),
        ("ETA error at assignment p50 / p90",
         pair(k.eta_error_assign_p50_s, k.eta_error_assign_p90_s)),
        ("ETA error at pick-up p50 / p90",
         pair(k.eta_error_pickup_p50_s, k.eta_error_pickup_p90_s)),
        ("orders stacked on a busy courier", str(k.stacked)),
        ("double assignments", str(k.double_assignments)),
    ]


def kpi_table(k: Kpis, title: str = "") -> str:
    """A Markdown table (readable in a terminal, pasteable into docs)."""
    rows = kpi_rows(k)
    width = max(len(name) for name, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    head = [f"| {'KPI':<{width}} | {'value':<{vwidth}} |", f"| {'-' * width} | {'-' * vwidth} |"]
    body = [f"| {name:<{width}} | {value:<{vwidth}} |" for name, value in rows]
    return "\n".join(([title] if title else []) + head + body)
