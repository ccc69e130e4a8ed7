"""Lab policies beside the greedy baseline, over several seeds (docs/benchmarks.md).

    python -m bench.lab_day --day dinner-peak --seeds 1,2,3,4 --policies production,optimal

Each seed's day (`lab.city.build_day`) is run under `greedy` (the baseline: nearest courier
first) and each named policy (`lab.policies`) with the production round parameters
(`DispatchSettings` defaults), as `homechef lab` does. Prints each seed's KPIs side by side,
then the medians over the seeds with each policy's change against greedy, the direction per
seed, and the wall and CPU seconds per day (the <1 min target; CPU seconds are what a shared
machine's load does not inflate).

Where the time to the door goes (the `floor` lines):
- the fastest-vehicle floor: every order picked up the moment its food is ready and ridden
  straight on the fastest vehicle at the travel model's speed (what no dispatch can beat);
- the fleet floor: the same, but on the day's vehicle mix: the longest rides get the cars,
  then the scooters, then the bikes, each in its share of the fleet;
- per policy, `no pickup lag`: its own deliveries as ridden, had each been picked up the
  moment its food was ready (what any change to *when* couriers reach kitchens could win
  at most).

``--ready-oracle P,...`` also runs the named policies on the same day with every kitchen's
declared ready time equal to its real one (named ``<policy>@oracle``): what perfect
prep-time prediction, which nobody has, would give.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import math
import statistics
import time
from collections.abc import Sequence

import msgspec

from api.lab_dispatch import lab_dispatch
from api.settings import DispatchSettings
from dispatch.round import parse_vehicle
from geo.distance import haversine_m
from geo.travel import HaversineTravelModel, Vehicle
from lab.city import Day, build_day
from lab.engine import LabDispatch, RunResult, simulate_day
from lab.kpis import LabKpis, lab_kpis
from lab.policies import apply_policy
from lab.scenario import PRESETS

FIELDS = ("wait_at_chef_p50_s", "wait_at_chef_p90_s", "order_to_door_p50_s",
          "order_to_door_p90_s", "late_pct", "orders_per_courier_hour", "idle_km_per_order",
          "stacked_pct", "eta_error_p90_s", "undelivered")
BASELINE = "greedy"


def dispatch_for(policy: str) -> LabDispatch:
    """Production's defaults (`DispatchSettings`) under the named lab policy."""
    return apply_policy(policy, lab_dispatch(DispatchSettings(), HaversineTravelModel()))


def door_floor_p50_s(day: Day, handover_s: float) -> float:
    """Order to door p50 if every order left its kitchen the moment its food was ready, on
    the fastest vehicle at the travel model's speed (module docstring)."""
    model = HaversineTravelModel()
    return statistics.median(
        (o.ready_ms - o.placed_ms) / 1000.0 + handover_s
        + min(model.travel_s(*o.pickup, *o.dropoff, v) for v in Vehicle)
        for o in day.orders)


def fleet_floor_p50_s(day: Day, handover_s: float) -> float:
    """Order to door p50 if every order left its kitchen the moment its food was ready, the
    longest rides on the fastest vehicles in proportion to the fleet (module docstring)."""
    model = HaversineTravelModel()
    fleet: dict[Vehicle, int] = {}
    for c in day.couriers:
        v = parse_vehicle(c.vehicle)
        fleet[v] = fleet.get(v, 0) + 1
    fastest_first = sorted(fleet, key=lambda v: -model.speeds_mps[v])
    orders = sorted(day.orders, key=lambda o: -haversine_m(*o.pickup, *o.dropoff))
    doors, i = [], 0
    for n, v in enumerate(fastest_first):
        last = n == len(fastest_first) - 1
        k = len(orders) - i if last else math.floor(
            len(orders) * fleet[v] / len(day.couriers))
        doors += [(o.ready_ms - o.placed_ms) / 1000.0 + handover_s
                  + model.travel_s(*o.pickup, *o.dropoff, v) for o in orders[i:i + k]]
        i += k
    return statistics.median(doors)


def no_lag_p50_s(run: RunResult, day: Day) -> float | None:
    """Order to door p50 of `run`'s deliveries, had each been picked up the moment its food
    was ready (its ride from pickup to door as it was)."""
    ready = {o.order_id: o.ready_ms for o in day.orders}
    doors = [(ready[r.order_id] - r.placed_ms + r.delivered_ms - r.picked_up_ms) / 1000.0
             for r in run.orders if r.delivered_ms is not None and r.picked_up_ms is not None]
    return statistics.median(doors) if doors else None


def with_ready_oracle(day: Day) -> Day:
    """`day` with every kitchen declaring its real ready time (promises unchanged)."""
    return msgspec.structs.replace(day, orders=tuple(
        msgspec.structs.replace(o, estimated_ready_ms=o.ready_ms) for o in day.orders))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", default="dinner-peak", choices=sorted(PRESETS))
    parser.add_argument("--seeds", default="1,2,3,4")
    parser.add_argument("--policies", default="production",
                        help="compared with greedy, comma-separated (lab.policies)")
    parser.add_argument("--ready-oracle", default="",
                        help="policies to run again knowing every real ready time, "
                             "comma-separated")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    named = [BASELINE, *(p for p in args.policies.split(",") if p != BASELINE)]
    policies = named + [f"{p}@oracle" for p in args.ready_oracle.split(",") if p]
    results: dict[str, list[LabKpis]] = {p: [] for p in policies}
    no_lag: dict[str, list[float | None]] = {p: [] for p in policies}
    walls: dict[str, list[float]] = {p: [] for p in policies}
    cpus: dict[str, list[float]] = {p: [] for p in policies}
    floors, fleet_floors = [], []
    for seed in seeds:
        day = build_day(PRESETS[args.day], seed)
        handover_s = day.scenario.couriers.handover_s
        floors.append(door_floor_p50_s(day, handover_s))
        fleet_floors.append(fleet_floor_p50_s(day, handover_s))
        oracle = with_ready_oracle(day) if args.ready_oracle else day
        for policy in policies:
            name, _, on_oracle = policy.partition("@")
            t0, c0 = time.perf_counter(), time.process_time()
            run = simulate_day(oracle if on_oracle else day, dispatch_for(name),
                               HaversineTravelModel())
            walls[policy].append(time.perf_counter() - t0)
            cpus[policy].append(time.process_time() - c0)
            results[policy].append(lab_kpis(run, len(day.couriers)))
            no_lag[policy].append(no_lag_p50_s(run, day))
        print(f"seed {seed} ({'/'.join(policies)}), order-to-door floor p50 "
              f"{floors[-1]:.1f} s (fastest vehicle), {fleet_floors[-1]:.1f} s (fleet):",
              flush=True)
        for f in FIELDS:
            print(f"  {f}: " + " / ".join(_v(getattr(results[p][-1], f)) for p in policies),
                  flush=True)
        print("  order_to_door_p50_s with no pickup lag: "
              + " / ".join(_v(no_lag[p][-1]) for p in policies), flush=True)
    print(f"\n{args.day}, seeds {args.seeds}: medians, {BASELINE} (baseline) vs each policy")
    print("| KPI | " + " | ".join(policies) + " |")
    print("|---|" + "---|" * len(policies))
    for f in FIELDS:
        g = _median([getattr(k, f) for k in results[BASELINE]])
        cells = [_v(g)]
        for p in policies[1:]:
            o = _median([getattr(k, f) for k in results[p]])
            cells.append(f"{_v(o)} ({100.0 * (o - g) / g:+.1f} %)" if g else _v(o))
        print(f"| {f} | " + " | ".join(cells) + " |")
    g = _median([k.order_to_door_p50_s for k in results[BASELINE]])
    for label, values in (("fastest-vehicle floor (no dispatch beats it)", floors),
                          ("fleet floor (the day's vehicle mix)", fleet_floors)):
        floor = _median(values)
        print(f"order-to-door p50, {label}: median {floor:.1f} s ({100 * (floor - g) / g:+.1f} "
              f"% against {BASELINE}); per seed " + ", ".join(f"{v:.0f}" for v in values))
    for p in policies:
        nl = _median(no_lag[p])
        print(f"order-to-door p50, {p} with no pickup lag: median {nl:.1f} s "
              f"({100 * (nl - g) / g:+.1f} % against {BASELINE})")
    for p in policies[1:]:
        wins = {f: sum(getattr(k, f) < getattr(b, f) for k, b in
                       zip(results[p], results[BASELINE], strict=True))
                for f in ("wait_at_chef_p50_s", "order_to_door_p50_s")}
        no_worse = sum(k.late_pct <= b.late_pct for k, b in
                       zip(results[p], results[BASELINE], strict=True)
                       if k.late_pct is not None and b.late_pct is not None)
        print(f"{p}: below greedy on {wins['wait_at_chef_p50_s']}/{len(seeds)} seeds (wait at "
              f"chef p50), {wins['order_to_door_p50_s']}/{len(seeds)} (order to door p50); "
              f"late % no worse on {no_worse}/{len(seeds)}")
    for p in policies:
        print(f"per day, {p}: wall median {statistics.median(walls[p]):.1f} s, "
              f"max {max(walls[p]):.1f} s; CPU median {statistics.median(cpus[p]):.1f} s, "
              f"max {max(cpus[p]):.1f} s")


def _median(values: Sequence[float | int | None]) -> float:
    return float(statistics.median(v for v in values if v is not None))


def _v(x: float | int | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return str(x)


if __name__ == "__main__":
    main()
