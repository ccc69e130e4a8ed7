"""Route elimination offline: how fast the ejection pool (routing.reduce) empties lr110 routes.

    python -m bench.routing_pool --plans 20 --solutions 1600 --limit 3

Builds 12-vehicle lr110 plans (BKS 10) with the ILS alone (`solve` with no fleet reduction,
polish or descent, a solution limit per seed: reproducible), then drops each plan's 3 shortest
routes in turn and lets `reinsert_orders` put their orders back on the other 11 routes within
`--limit` wall seconds. Reports the CPU seconds each case took and how many succeed within
0.25/0.5/1/2 s, the pool table in docs/benchmarks.md. Every complete
plan passes `routing.feasibility.check_plan`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time

from routing.feasibility import check_plan
from routing.lilim import read_lilim
from routing.model import make_plan
from routing.reduce import reinsert_orders
from routing.solver import SolverConfig, solve

LR110 = Path(__file__).resolve().parents[1] / "tests" / "data" / "li_lim" / "lr110.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=20, help="ILS seeds 0..N-1")
    parser.add_argument("--solutions", type=int, default=1600, help="ILS solution limit")
    parser.add_argument("--limit", type=float, default=3.0, help="wall seconds per case")
    args = parser.parse_args()
    problem = read_lilim(LR110).problem
    ils_only = SolverConfig(fleet_reduction_share=0.0, polish_share=0.0, final_descent=False)
    rows: list[tuple[int, bool, float]] = []
    for seed in range(args.plans):
        plan = solve(problem, 600.0, seed, solution_limit=args.solutions, config=ils_only)
        routes = [(r.vehicle_id, list(r.task_ids)) for r in plan.routes]
        if len(routes) != 12:
            print(f"seed {seed}: {len(routes)} vehicles, skipped", flush=True)
            continue
        for vehicle_id, ids in sorted(routes, key=lambda r: (len(r[1]), r[0]))[:3]:
            state = [r for r in routes if r[0] != vehicle_id]
            cpu0 = time.process_time()
            found = reinsert_orders(problem, state, time.monotonic() + args.limit, seed=0)
            cpu_s = time.process_time() - cpu0
            ok = found is not None and not check_plan(problem, make_plan(problem, found))
            if found is not None and not ok:
                raise SystemExit(f"seed {seed}: the pool returned an infeasible plan")
            rows.append((seed, ok, cpu_s))
            print(
                f"seed {seed} drop vehicle {vehicle_id} ({len(ids)} tasks): "
                f"{'complete' if ok else 'failed'} in {cpu_s:.3f} cpu s",
                flush=True,
            )
    n = len(rows)
    for within in (0.25, 0.5, 1.0, 2.0, args.limit):
        hits = sum(1 for _, ok, cpu_s in rows if ok and cpu_s <= within)
        print(f"complete within {within} cpu s: {hits}/{n}")
    print(
        f"plans with at least one route removed: {len({s for s, ok, _ in rows if ok})}"
        f"/{len({s for s, _, _ in rows})}; cpu s in total {sum(c for _, _, c in rows):.2f}"
    )


if __name__ == "__main__":
    main()
