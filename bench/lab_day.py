"""A lab day, optimal beside the greedy baseline, over several seeds (docs/benchmarks.md).

    python -m bench.lab_day --day dinner-peak --seeds 1,2,3,4

Each seed's day (`lab.city.build_day`) is run under `greedy` (the baseline: nearest courier
first) and `optimal` with the production round parameters (`DispatchSettings` defaults),
as `homechef lab` does. Prints each seed's KPIs side by side, then the medians over the seeds
with optimal's change against greedy, and the wall and CPU seconds per day (the <1 min
target; CPU seconds are what a shared machine's load does not inflate).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import statistics
import time

from api.settings import DispatchSettings
from dispatch.costs import CostParams
from dispatch.round import RoundParams
from geo.travel import HaversineTravelModel
from lab.city import build_day
from lab.engine import LabDispatch, simulate_day
from lab.kpis import LabKpis, lab_kpis
from lab.policies import apply_policy
from lab.scenario import PRESETS

FIELDS = ("wait_at_chef_p50_s", "wait_at_chef_p90_s", "order_to_door_p50_s",
          "order_to_door_p90_s", "late_pct", "orders_per_courier_hour", "idle_km_per_order",
          "stacked_pct", "eta_error_p90_s", "undelivered")
POLICIES = ("greedy", "optimal")


def dispatch_for(policy: str) -> LabDispatch:
    """Production's defaults (`DispatchSettings`) under the named lab policy."""
    d = DispatchSettings()
    production = LabDispatch(
        params=RoundParams(candidates=d.candidates, max_stack=d.max_stack,
                           unassigned_penalty_s=d.unassigned_penalty_s, costs=CostParams(),
                           travel=HaversineTravelModel()),
        round_s=d.round_s, offer_ttl_s=d.offer_ttl_s, radius_m=d.radius_m,
        stack_candidates=d.stack_candidates, max_orders_per_round=d.max_orders_per_round)
    return apply_policy(policy, production)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", default="dinner-peak", choices=sorted(PRESETS))
    parser.add_argument("--seeds", default="1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list[LabKpis]] = {p: [] for p in POLICIES}
    walls: dict[str, list[float]] = {p: [] for p in POLICIES}
    cpus: dict[str, list[float]] = {p: [] for p in POLICIES}
    for seed in seeds:
        day = build_day(PRESETS[args.day], seed)
        for policy in POLICIES:
            t0, c0 = time.perf_counter(), time.process_time()
            run = simulate_day(day, dispatch_for(policy), HaversineTravelModel())
            walls[policy].append(time.perf_counter() - t0)
            cpus[policy].append(time.process_time() - c0)
            results[policy].append(lab_kpis(run, len(day.couriers)))
        row = "  ".join(f"{f}={_v(getattr(results['greedy'][-1], f))}/"
                        f"{_v(getattr(results['optimal'][-1], f))}" for f in FIELDS)
        print(f"seed {seed} (greedy/optimal): {row}", flush=True)
    print(f"\n{args.day}, seeds {args.seeds}: medians, greedy (baseline) vs optimal")
    print(f"| {'KPI':<24} | {'greedy':>9} | {'optimal':>9} | {'change':>8} |")
    print(f"| {'-' * 24} | {'-' * 9} | {'-' * 9} | {'-' * 8} |")
    for f in FIELDS:
        g = _median([getattr(k, f) for k in results["greedy"]])
        o = _median([getattr(k, f) for k in results["optimal"]])
        change = f"{100.0 * (o - g) / g:+.1f} %" if g else "-"
        print(f"| {f:<24} | {_v(g):>9} | {_v(o):>9} | {change:>8} |")
    for p in POLICIES:
        print(f"per day, {p}: wall median {statistics.median(walls[p]):.1f} s, "
              f"max {max(walls[p]):.1f} s; CPU median {statistics.median(cpus[p]):.1f} s, "
              f"max {max(cpus[p]):.1f} s")


def _median(values: list[float | int | None]) -> float:
    return float(statistics.median(v for v in values if v is not None))


def _v(x: float | int | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return str(x)


if __name__ == "__main__":
    main()
