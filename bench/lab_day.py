"""Lab policies beside the greedy baseline, over several seeds (docs/benchmarks.md).

    python -m bench.lab_day --day dinner-peak --seeds 1,2,3,4 --policies optimal,optimal-prep

Each seed's day (`lab.city.build_day`) is run under `greedy` (the baseline: nearest courier
first) and each named policy (`lab.policies`) with the production round parameters
(`DispatchSettings` defaults), as `homechef lab` does. Prints each seed's KPIs side by side,
then the medians over the seeds with each policy's change against greedy, the direction per
seed, and the wall and CPU seconds per day (the <1 min target; CPU seconds are what a shared
machine's load does not inflate). The `floor` line is what no dispatch can beat: every order
picked up the moment its food is ready and ridden straight on the fastest vehicle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import statistics
import time
from collections.abc import Sequence

from api.lab_dispatch import lab_dispatch
from api.settings import DispatchSettings
from geo.travel import HaversineTravelModel, Vehicle
from lab.city import Day, build_day
from lab.engine import LabDispatch, simulate_day
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", default="dinner-peak", choices=sorted(PRESETS))
    parser.add_argument("--seeds", default="1,2,3,4")
    parser.add_argument("--policies", default="optimal",
                        help="compared with greedy, comma-separated (lab.policies)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    policies = [BASELINE, *(p for p in args.policies.split(",") if p != BASELINE)]
    results: dict[str, list[LabKpis]] = {p: [] for p in policies}
    walls: dict[str, list[float]] = {p: [] for p in policies}
    cpus: dict[str, list[float]] = {p: [] for p in policies}
    floors = []
    for seed in seeds:
        day = build_day(PRESETS[args.day], seed)
        floors.append(door_floor_p50_s(day, day.scenario.couriers.handover_s))
        for policy in policies:
            t0, c0 = time.perf_counter(), time.process_time()
            run = simulate_day(day, dispatch_for(policy), HaversineTravelModel())
            walls[policy].append(time.perf_counter() - t0)
            cpus[policy].append(time.process_time() - c0)
            results[policy].append(lab_kpis(run, len(day.couriers)))
        print(f"seed {seed} ({'/'.join(policies)}), order-to-door floor p50 "
              f"{floors[-1]:.1f} s:", flush=True)
        for f in FIELDS:
            print(f"  {f}: " + " / ".join(_v(getattr(results[p][-1], f)) for p in policies),
                  flush=True)
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
    print(f"order-to-door floor p50 (no dispatch beats it): median {_median(floors):.1f} s")
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
