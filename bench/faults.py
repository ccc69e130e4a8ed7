"""Fault drills on longer, busier days than the test suite's: the same day (same seed, same
city) run twice on one system of its own, once without faults (the baseline) and once with
each fault in turn, KPIs side by side and one line of recovery figures per fault.

    python -m bench.faults                      # 40 couriers, 30 orders/min, 8 faults
    python -m bench.faults --couriers 80 --orders-per-min 60 \
        --faults redis:kill-empty,core:kill
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

import msgspec

from api.simulator.agents import Behaviour
from api.simulator.city import CityConfig, Point
from api.simulator.drill import DrillResult, Fault, Rig, drill
from api.simulator.run import SimConfig

ALL = ("core:kill,commerce:kill,redis:kill,redis:pause,redis:slow,redis:kill-empty,"
       "nats:kill,postgres:kill")


def _faults(spec: str) -> list[Fault]:
    out = []
    for item in spec.split(","):
        target, _, kind = item.partition(":")
        out.append(msgspec.convert({"target": target, "kind": kind or "kill"}, Fault))
    return out


def _row(name: str, base: object, faulted: object) -> str:
    def cell(v: object) -> str:
        return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
    return f"  {name:<24}{cell(base):>12}{cell(faulted):>12}"


async def main(args: argparse.Namespace) -> None:
    faults = _faults(args.faults)
    day_s = args.first + len(faults) * (args.spacing + 8.0)
    config = SimConfig(
        city=CityConfig(seed=args.seed, center=Point(-33.45, -70.66), radius_m=args.radius,
                        chefs=args.chefs, couriers=args.couriers, customers=args.customers,
                        prep_s=(20.0, 60.0)),
        orders_per_min=args.orders_per_min, duration_s=day_s, drain_s=300, progress_s=15,
        behaviour=Behaviour(speed_factor=3.0, think_s=(0.2, 1.0), chef_poll_s=1.0,
                            check_in_s=5.0))
    root = Path(tempfile.mkdtemp(prefix="homechef-drill-"))
    rig = Rig(root)
    try:
        await rig.start()
        print(f"day of {day_s:.0f} s + drain: {args.couriers} couriers, {args.chefs} chefs, "
              f"{args.orders_per_min} orders/min, seed {args.seed}")
        base = None
        if args.baseline:
            print("baseline (no fault) ...", flush=True)
            base = await drill(rig, config, [], first_fault_s=0, spacing_s=0)
            print(f"  {base.line()}")
        print(f"with faults: {', '.join(map(str, faults))} ...", flush=True)
        hit = await drill(rig, config, faults, first_fault_s=args.first,
                          spacing_s=args.spacing, echo=lambda s: print(f"  {s}", flush=True))
        print(f"  {hit.line()}")
        report(base, hit)
    finally:
        await rig.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(base: DrillResult | None, hit: DrillResult) -> None:
    print("\nrecovery per fault (s from the part being back):")
    for f in hit.figures:
        print(f"  {f.line()}")
    print(f"faults (s into the day): {'; '.join(hit.faults_at)}")
    for c in hit.conflicts:
        print(f"  double assignment: {c}")
    for line in hit.sim.unfinished:
        print(f"  {line}")
    for order in hit.sim.stranded:
        oid = order.split(" ")[0]
        print(f"  stranded {order}")
        for e in (e for e in hit.sim.errors if oid[:8] in e):
            print(f"    app error: {e}")
    failed = [e for e in hit.sim.errors if e.startswith("fleet snapshot")]
    if failed:
        print(f"  core snapshots that failed: {len(failed)} (first: {failed[0]})")
    if base is None:
        base = hit  # no baseline asked for: its column repeats the faulted day
    b, h = base.sim.kpis, hit.sim.kpis
    print(f"\n  {'KPI':<24}{'baseline':>12}{'faults':>12}")
    for name in ("placed", "delivered", "cancelled", "double_assignments",
                 "double_in_holdings", "double_in_fleet_snapshots",
                 "time_to_assign_p50_s", "time_to_assign_p90_s", "order_to_door_p50_s",
                 "order_to_door_p90_s", "late_pct"):
        print(_row(name, getattr(b, name), getattr(h, name)))
    for name, bv, hv in (("paid", base.sim.paid, hit.sim.paid),
                         ("stranded", len(base.sim.stranded), len(hit.sim.stranded)),
                         ("fixes acked", base.fixes_acked, hit.fixes_acked),
                         ("fixes lost", base.fixes_lost, hit.fixes_lost),
                         ("app retries", base.sim.retries, hit.sim.retries)):
        print(_row(name, bv, hv))
    worst = max((f.recovery_s or float("inf") for f in hit.figures), default=0.0)
    print(f"\nslowest recovery {worst:.1f} s; stranded {len(hit.sim.stranded)}; "
          f"double assignments {h.double_assignments}; acknowledged fixes lost "
          f"{hit.fixes_lost}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faults", default=ALL, help="target:kind,... (kinds: kill, kill-empty, "
                   "pause, slow)")
    p.add_argument("--couriers", type=int, default=40)
    p.add_argument("--chefs", type=int, default=8)
    p.add_argument("--customers", type=int, default=60)
    p.add_argument("--orders-per-min", type=float, default=30.0)
    p.add_argument("--radius", type=float, default=1500.0)
    p.add_argument("--first", type=float, default=20.0, help="first fault, s into the day")
    p.add_argument("--spacing", type=float, default=20.0,
                   help="s from one part being back to the next fault")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the day without faults (for a quicker look at the faults)")
    asyncio.run(main(p.parse_args()))
