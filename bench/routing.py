"""Routing benchmarks: Li & Lim PDPTW vs best-known solutions and VROOM; insertion latency.

    python -m bench.routing --budget 10 --set li_lim_100          # solver table
    python -m bench.routing --budget 10 --set li_lim_200 --instances 'LC1_2_3,LR2_2_2'
    python -m bench.routing --budget 10 --generated 500           # 500 orders, for scale
    python -m bench.routing --warm --set li_lim_200 --instances 'LR1_2_6' --trials 5
    python -m bench.routing --insertion --trials 1000             # insertion p50/p99

`--set li_lim_200` runs the 60 200-customer instances (the solver's large-instance path,
docs/routing.md). Every plan (ours and VROOM's) passes `routing.feasibility.check_plan`
before it is counted.
Both solvers see the same integer model (`routing.lilim`: times x100, travel rounded up) and
get the same budget on one thread; `--jobs` > 1 runs instances in parallel (the machine has
2 cores, so timings are only honest with the default of 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file, this script's folder would come first on sys.path and this very module
    # would shadow the `routing` package; put the repository root there instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import fnmatch
import json
import math
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from routing.feasibility import check_plan
from routing.insertion import CourierRoute, insert
from routing.lilim import read_lilim
from routing.model import Pair, Plan, Problem, Task, Vehicle, make_plan
from routing.solver import DEFAULT_CONFIG, solve
from routing.vroom_plan import vroom_routes
from routing.warm import replan

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "bench-data" / "li_lim"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """One solver on one instance; `vehicles`/`dist` are None when no checked plan exists.

    `cpu_s` is this process's CPU time for the solve: both solvers run on one thread, so
    `cpu_s` well below `seconds` means the machine was busy with other work.
    """

    instance: str
    solver: str
    vehicles: int | None
    dist: float | None
    seconds: float
    cpu_s: float
    note: str = ""


class Job(msgspec.Struct, frozen=True, kw_only=True):
    solver: str  # "ours" | "vroom"
    path: str
    budget_s: float
    seed: int = 0
    solution_limit: int | None = None  # ours: stop after this many solutions (reproducible)
    fleet_reduction_share: float | None = None  # ours: None = the solver's default
    polish_share: float | None = None  # ours: None = the solver's default
    ejection_share: float | None = None  # ours: None = the solver's default (0.08)
    # ours: any other SolverConfig field, as (name, value) pairs (--config name=value)
    overrides: tuple[tuple[str, str], ...] = ()
    exploration_level: int = 5  # vroom
    vroom_untimed: bool = False  # vroom: no timeout (deterministic, load-independent)


class _Clock:
    """Wall and CPU time since construction."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def wall_s(self) -> float:
        return time.perf_counter() - self.wall0

    def cpu_s(self) -> float:
        return time.process_time() - self.cpu0


GENERATED = "generated:"  # Job.path prefix: "generated:<pairs>:<seed>" (generated_problem)


def load_problem(path: str) -> Problem:
    """A Li & Lim file, or `generated_problem` for a "generated:<pairs>:<seed>" path."""
    if path.startswith(GENERATED):
        pairs, seed = path.removeprefix(GENERATED).split(":")
        return generated_problem(int(pairs), int(seed))
    return read_lilim(path).problem


def generated_problem(n_pairs: int, seed: int = 0) -> Problem:
    """A Li & Lim-like instance with `n_pairs` orders, for scale beyond the published sets.

    Type-1 style: points in a 100 x 100 square (half of them around 10 cluster centres), the
    depot in the middle, a horizon of 1,000, windows 60 wide, service 10, demand 10-40,
    capacity 200, `n_pairs // 2` vehicles. Every order fits a vehicle of its own (its pickup
    window opens early enough to deliver and return in time). Scaled like `routing.lilim`
    (times x100, travel rounded up), so travel time equals distance.
    """
    rng = np.random.default_rng(seed)
    n = 2 * n_pairs
    centres = rng.uniform(10, 90, size=(10, 2))
    clustered = centres[rng.integers(0, 10, size=n)] + rng.normal(0, 5, size=(n, 2))
    xy = np.vstack([[50.0, 50.0], np.where(
        (rng.random(n) < 0.5)[:, None], np.clip(clustered, 0, 100), rng.uniform(0, 100, (n, 2))
    )])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    scale, horizon, width, service = 100, 1000, 60, 10
    travel_s = np.ceil(dist * scale - 1e-9).astype(np.int64)
    tasks: list[Task] = []
    pairs: list[Pair] = []
    for k in range(n_pairs):
        pick, drop = 1 + 2 * k, 2 + 2 * k
        leg = dist[pick, drop]
        latest = horizon - leg - dist[drop, 0] - 2 * service - width - 20
        ready_p = int(rng.uniform(math.ceil(dist[0, pick]), latest))
        ready_d = int(ready_p + service + math.ceil(leg) + rng.uniform(0, 20))
        demand = int(rng.integers(10, 41))
        tasks += [
            Task(id=pick, location=pick, demand=demand, ready_s=ready_p * scale,
                 due_s=(ready_p + width) * scale, service_s=service * scale),
            Task(id=drop, location=drop, demand=-demand, ready_s=ready_d * scale,
                 due_s=(ready_d + width) * scale, service_s=service * scale),
        ]
        pairs.append(Pair(pickup_id=pick, delivery_id=drop))
    vehicles = tuple(
        Vehicle(id=v, start=0, end=0, shift_end_s=horizon * scale, capacity=200)
        for v in range(n_pairs // 2)
    )
    return Problem(travel_s=travel_s, dist=dist, tasks=tuple(tasks), pairs=tuple(pairs),
                   vehicles=vehicles, name=f"GEN_{n_pairs}_{seed}")


def run_ours(job: Job) -> Outcome:
    problem = load_problem(job.path)
    clock = _Clock()
    try:
        config = DEFAULT_CONFIG
        if job.fleet_reduction_share is not None:
            config = msgspec.structs.replace(
                config, fleet_reduction_share=job.fleet_reduction_share
            )
        if job.polish_share is not None:
            config = msgspec.structs.replace(config, polish_share=job.polish_share)
        if job.ejection_share is not None:
            config = msgspec.structs.replace(config, ejection_share=job.ejection_share)
        if job.overrides:
            fields = msgspec.structs.asdict(config)
            for name, value in job.overrides:
                kind = type(fields[name])
                if kind is bool:
                    fields[name] = value.lower() in ("1", "true")
                elif kind in (int, float):
                    fields[name] = kind(float(value))
                else:
                    fields[name] = value
            config = msgspec.convert(fields, type(config))
        plan = solve(
            problem, job.budget_s, job.seed, solution_limit=job.solution_limit, config=config
        )
    except (ValueError, RuntimeError) as exc:
        return _failed(problem, "ours", clock, str(exc))
    return _checked(problem, plan, "ours", clock)


def _override(text: str) -> tuple[str, str]:
    """`name=value` for --config; the value becomes the field's type in `run_ours`."""
    name, _, value = text.partition("=")
    if name not in DEFAULT_CONFIG.__struct_fields__ or not value:
        raise SystemExit(f"--config {text!r}: expected NAME=VALUE with a SolverConfig field")
    return name, value


def run_vroom(job: Job) -> Outcome:
    problem = load_problem(job.path)
    clock = _Clock()
    # The same integer model and lexicographic objective as ours (routing.vroom_plan).
    routes = vroom_routes(
        problem, None if job.vroom_untimed else job.budget_s,
        exploration_level=job.exploration_level,
    )
    if routes is None:
        return _failed(problem, "vroom", clock, "tasks unassigned")
    return _checked(problem, make_plan(problem, routes), "vroom", clock)


def _failed(problem: Problem, solver: str, clock: _Clock, note: str) -> Outcome:
    return Outcome(
        instance=problem.name,
        solver=solver,
        vehicles=None,
        dist=None,
        seconds=clock.wall_s(),
        cpu_s=clock.cpu_s(),
        note=note,
    )


def _checked(problem: Problem, plan: Plan, solver: str, clock: _Clock) -> Outcome:
    """Count the plan only if the independent checker finds nothing wrong with it."""
    seconds, cpu_s = clock.wall_s(), clock.cpu_s()
    violations = check_plan(problem, plan)
    if violations:
        note = f"INFEASIBLE: {violations[0].message} (+{len(violations) - 1})"
        return _failed(problem, solver, clock, note)
    return Outcome(
        instance=problem.name,
        solver=solver,
        vehicles=plan.vehicles_used,
        dist=plan.dist,
        seconds=seconds,
        cpu_s=cpu_s,
    )


def _run(job: Job) -> Outcome:
    return run_ours(job) if job.solver == "ours" else run_vroom(job)


def bench_generated(args: argparse.Namespace) -> None:
    """Ours and VROOM on one generated instance (`generated_problem`), for scale: no BKS."""
    path = f"{GENERATED}{args.generated}:{args.generated_seed}"
    jobs = [Job(solver="ours", path=path, budget_s=args.budget, seed=args.seed,
                solution_limit=args.solution_limit,
                overrides=tuple(_override(kv) for kv in args.config))]
    if not args.no_vroom:
        jobs.append(Job(solver="vroom", path=path, budget_s=args.budget,
                        exploration_level=args.vroom_exploration))
    print(f"# generated {args.generated} pairs (seed {args.generated_seed}), budget "
          f"{args.budget} s, seed {args.seed}, VROOM exploration {args.vroom_exploration} "
          "on 1 thread")
    print(f"{'solver':6} {'veh':>4} {'dist':>10} {'sec':>6} {'cpu':>6}  note")
    for job in jobs:
        o = _run(job)
        print(f"{o.solver:6} {_fmt(o.vehicles, 'd'):>4} {_fmt(o.dist, '.1f'):>10} "
              f"{o.seconds:6.1f} {o.cpu_s:6.1f}  {o.note}", flush=True)


def bench_warm(args: argparse.Namespace) -> None:
    """Warm starts (`routing.warm.replan`): per instance, a plan solved without its last
    order (`--budget`), then that order added, and each of its first `--trials` orders
    cancelled, each re-planned from the plan in `--warm-budget` seconds."""
    data = Path(args.data)
    patterns = [g.strip() for g in args.instances.split(",") if g.strip()]
    paths = sorted(p for p in (data / args.set).glob("*.txt")
                   if any(fnmatch.fnmatch(p.stem, g) for g in patterns))
    print(f"# warm starts: {args.set} {len(paths)} instances, plan budget {args.budget} s, "
          f"re-plan budget {args.warm_budget} s")
    print(f"{'instance':10} {'change':10} {'veh':>4} {'dist':>9} -> {'veh':>4} {'dist':>9} "
          f"{'wall':>6} {'cpu':>6}")
    walls: list[float] = []
    for path in paths:
        full = read_lilim(path).problem

        def without(problem: Problem, pair: Pair) -> Problem:
            gone = {pair.pickup_id, pair.delivery_id}
            return msgspec.structs.replace(
                problem, tasks=tuple(t for t in problem.tasks if t.id not in gone),
                pairs=tuple(q for q in problem.pairs if q != pair),
            )

        before = without(full, full.pairs[-1])
        plan = solve(before, args.budget, args.seed)
        routes = [(r.vehicle_id, list(r.task_ids)) for r in plan.routes]
        changes = [("new order", full)] + [
            (f"cancel {q.pickup_id}", without(before, q)) for q in before.pairs[: args.trials]
        ]
        for label, problem in changes:
            clock = _Clock()
            out = replan(problem, routes, args.warm_budget, args.seed)
            wall, cpu = clock.wall_s(), clock.cpu_s()
            walls.append(wall)
            bad = " INFEASIBLE" if check_plan(problem, out) else ""
            print(f"{full.name:10} {label:10} {plan.vehicles_used:4} {plan.dist:9.1f} -> "
                  f"{out.vehicles_used:4} {out.dist:9.1f} {wall:6.3f} {cpu:6.3f}{bad}",
                  flush=True)
    print(f"re-plans: {len(walls)}; wall median {statistics.median(walls):.3f} s, "
          f"max {max(walls):.3f} s")


def bench_solver(args: argparse.Namespace) -> None:
    data = Path(args.data)
    bks: dict[str, dict[str, Any]] = json.loads((data / "BKS.json").read_text())
    patterns = [g.strip() for g in args.instances.split(",") if g.strip()]
    paths = sorted(
        p
        for p in (data / args.set).glob("*.txt")
        if any(fnmatch.fnmatch(p.stem, g) for g in patterns)
    )
    if not paths:
        raise SystemExit(f"no instance matches {args.instances!r} in {data / args.set}")
    jobs = [
        Job(
            solver="ours",
            path=str(p),
            budget_s=args.budget,
            seed=args.seed,
            solution_limit=args.solution_limit,
            fleet_reduction_share=args.fleet_reduction_share,
            polish_share=args.polish_share,
            ejection_share=args.ejection_share,
            overrides=tuple(_override(kv) for kv in args.config),
        )
        for p in paths
    ]
    if not args.no_vroom:
        jobs += [
            Job(
                solver="vroom",
                path=str(p),
                budget_s=args.budget,
                exploration_level=args.vroom_exploration,
                vroom_untimed=args.vroom_untimed,
            )
            for p in paths
        ]
    limit = f", solution limit {args.solution_limit}" if args.solution_limit else ""
    print(
        f"# {args.set}: {len(paths)} instances, budget {args.budget} s{limit}, seed {args.seed}, "
        f"jobs {args.jobs}, VROOM exploration {args.vroom_exploration} on 1 thread",
        flush=True,
    )
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(_run, jobs))
    else:
        outcomes = []
        for job in jobs:
            o = _run(job)
            outcomes.append(o)
            print(
                f"#   {o.solver:5} {o.instance:10} {o.vehicles} {o.dist} "
                f"{o.seconds:.1f}s cpu {o.cpu_s:.1f}s {o.note}",
                file=sys.stderr,
                flush=True,
            )
    ours = {o.instance: o for o in outcomes if o.solver == "ours"}
    theirs = {o.instance: o for o in outcomes if o.solver == "vroom"}
    _print_table([p.stem for p in paths], ours, theirs, bks)


def _gap_pct(o: Outcome, ref: dict[str, Any]) -> float | None:
    if o.vehicles is None or o.dist is None or o.vehicles != ref["solved_with_vehicles"]:
        return None
    return 100.0 * (o.dist - ref["best_known_cost"]) / ref["best_known_cost"]


def _fmt(x: float | int | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _print_table(
    names: Sequence[str],
    ours: dict[str, Outcome],
    theirs: dict[str, Outcome],
    bks: dict[str, dict[str, Any]],
) -> None:
    header = (
        f"{'instance':10} {'veh':>4} {'dist':>9} {'bks_veh':>7} {'bks_dist':>9} {'gap%':>6} "
        f"{'sec':>5} {'cpu':>5} | {'vr_veh':>6} {'vr_dist':>9} {'vr_gap%':>7} {'vr_sec':>6} "
        f"{'ours/vr':>7}  note"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        o, ref = ours[name], bks[name]
        v = theirs.get(name)
        ratio = (
            o.dist / v.dist if v is not None and o.dist is not None and v.dist is not None else None
        )
        note = "; ".join(x for x in (o.note, v.note if v else "") if x)
        print(
            f"{name:10} {_fmt(o.vehicles, '4d')} {_fmt(o.dist, '9.2f')} "
            f"{ref['solved_with_vehicles']:7d} {ref['best_known_cost']:9.2f} "
            f"{_fmt(_gap_pct(o, ref), '6.2f')} {o.seconds:5.1f} {o.cpu_s:5.1f} | "
            f"{_fmt(v.vehicles if v else None, '6d')} {_fmt(v.dist if v else None, '9.2f')} "
            f"{_fmt(_gap_pct(v, ref) if v else None, '7.2f')} "
            f"{_fmt(v.seconds if v else None, '6.1f')} {_fmt(ratio, '7.4f')}  {note}"
        )
    print()
    _summary("ours", names, ours, bks)
    if theirs:
        _summary("vroom", names, theirs, bks)
        both = [
            (ours[n], theirs[n])
            for n in names
            if ours[n].dist is not None and theirs[n].dist is not None
        ]
        fewer = sum(
            1
            for a, b in both
            if a.vehicles is not None and b.vehicles is not None and a.vehicles < b.vehicles
        )
        more = sum(
            1
            for a, b in both
            if a.vehicles is not None and b.vehicles is not None and a.vehicles > b.vehicles
        )
        ratios = [a.dist / b.dist for a, b in both if a.dist is not None and b.dist is not None]
        eq = [
            a.dist / b.dist
            for a, b in both
            if a.vehicles == b.vehicles and a.dist is not None and b.dist is not None
        ]
        if ratios:
            print(
                f"ours vs vroom: {len(both)} both feasible; ours fewer vehicles on {fewer}, "
                f"more on {more}; distance ratio ours/vroom geo-mean "
                f"{math.exp(statistics.fmean(math.log(r) for r in ratios)):.4f} (all), "
                + (
                    f"{math.exp(statistics.fmean(math.log(r) for r in eq)):.4f} "
                    f"(equal vehicles, n={len(eq)})"
                    if eq
                    else "no instance with equal vehicles"
                )
            )


def _summary(
    label: str, names: Sequence[str], out: dict[str, Outcome], bks: dict[str, dict[str, Any]]
) -> None:
    feasible = [out[n] for n in names if out[n].vehicles is not None]
    within = sum(
        1
        for o in feasible
        if o.vehicles is not None and o.vehicles <= bks[o.instance]["solved_with_vehicles"] + 1
    )
    equal = [o for o in feasible if o.vehicles == bks[o.instance]["solved_with_vehicles"]]
    gaps = [g for o in equal if (g := _gap_pct(o, bks[o.instance])) is not None]
    secs = [out[n].seconds for n in names]
    cpu = [out[n].cpu_s for n in names]
    print(
        f"{label}: feasible {len(feasible)}/{len(names)}; vehicles <= BKS+1: {within}/"
        f"{len(names)}; vehicles == BKS: {len(equal)}; mean gap at equal vehicles: "
        f"{_fmt(statistics.fmean(gaps) if gaps else None, '.2f')}% (n={len(gaps)}); "
        f"max gap {_fmt(max(gaps) if gaps else None, '.2f')}%; "
        f"median seconds {statistics.median(secs):.2f} (cpu {statistics.median(cpu):.2f})"
    )


# --- insertion -------------------------------------------------------------------------------

NO_DUE_PICKUP_S = 10**6  # the chef waits for the courier; only the customer has a deadline


def _random_route(
    rng: random.Random, travel_s: npt.NDArray[np.int64], n_pairs: int
) -> tuple[CourierRoute, Task, Task]:
    """A feasible courier route of `2 * n_pairs` stops (windows built around a real schedule)
    over locations 1..2n, the courier at location 0, and a new order at the last two."""
    order = [k for k in range(n_pairs) for _ in range(2)]
    rng.shuffle(order)
    seen: set[int] = set()
    stops: list[Task] = []
    t_s, at, load, max_load = 0, 0, 0, 0
    for k in order:
        is_pickup = k not in seen
        seen.add(k)
        loc = 1 + 2 * k + (0 if is_pickup else 1)
        arrival = t_s + int(travel_s[at, loc])
        # Food is sometimes not ready yet (wait); customers accept any time before due.
        ready = max(0, arrival + rng.randint(-900, 300)) if is_pickup else 0
        start = max(arrival, ready)
        due = start + rng.randint(300, 2400)
        demand = 1 if is_pickup else -1
        stops.append(
            Task(id=loc, location=loc, demand=demand, ready_s=ready, due_s=due, service_s=120)
        )
        t_s, at = start + 120, loc
        load += demand
        max_load = max(max_load, load)
    n_loc = travel_s.shape[0]
    pickup = Task(
        id=n_loc - 2,
        location=n_loc - 2,
        demand=1,
        ready_s=rng.randint(0, 1200),
        due_s=NO_DUE_PICKUP_S,
        service_s=120,
    )
    delivery = Task(
        id=n_loc - 1,
        location=n_loc - 1,
        demand=-1,
        due_s=pickup.ready_s + rng.randint(1800, 5400),
        service_s=60,
    )
    route = CourierRoute(
        location=0,
        now_s=0,
        stops=tuple(stops),
        pairs=tuple(Pair(pickup_id=1 + 2 * k, delivery_id=2 + 2 * k) for k in range(n_pairs)),
        capacity=max_load + rng.randint(0, 1),
    )
    return route, pickup, delivery


def _brute_force(
    route: CourierRoute, pickup: Task, delivery: Task, travel_s: npt.NDArray[np.int64]
) -> float | None:
    """Baseline: try every position pair, simulate the whole route each time (O(n^3))."""
    best: float | None = None
    stops = list(route.stops)
    locs = [route.location, *(s.location for s in stops)]
    base = int(travel_s[locs[:-1], locs[1:]].sum())
    for i in range(len(stops) + 1):
        for j in range(i, len(stops) + 1):
            cand = [*stops[:i], pickup, *stops[i:j], delivery, *stops[j:]]
            t_s, at, load, cost, ok = route.now_s, route.location, route.load, 0, True
            for s in cand:
                leg = int(travel_s[at, s.location])
                cost += leg
                t_s = max(t_s + leg, s.ready_s)
                load += s.demand
                if t_s > s.due_s or load > route.capacity:
                    ok = False
                    break
                t_s += s.service_s
                at = s.location
            if ok:
                added = cost - base
                if best is None or added < best:
                    best = added
    return best


def _ortools_single_route(
    route: CourierRoute, pickup: Task, delivery: Task, travel_s: npt.NDArray[np.int64]
) -> float | None:
    """Baseline: hand the courier's stops plus the new order to `solve` (1 vehicle, 1st sol.)."""
    problem = Problem(
        travel_s=travel_s,
        dist=travel_s.astype(np.float64),
        tasks=(*route.stops, pickup, delivery),
        pairs=(*route.pairs, Pair(pickup_id=pickup.id, delivery_id=delivery.id)),
        vehicles=(
            Vehicle(
                id=0,
                start=route.location,
                shift_start_s=route.now_s,
                capacity=route.capacity,
                initial_load=route.load,
            ),
        ),
    )
    try:
        plan = solve(problem, 1.0, 0, solution_limit=1)
    except (ValueError, RuntimeError):
        return None
    return float(plan.travel_s)


def bench_insertion(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    n_pairs = args.stops // 2
    n_loc = 2 * n_pairs + 3
    ours_ms: list[float] = []
    brute_ms: list[float] = []
    ortools_ms: list[float] = []
    feasible = mismatches = 0
    for trial in range(args.trials):
        # City-scale travel times: points in a 6 km square at 5 m/s (~20 min across).
        xy = np.array([(rng.uniform(0, 6000), rng.uniform(0, 6000)) for _ in range(n_loc)])
        travel_s = np.ceil(np.sqrt(((xy[:, None] - xy[None, :]) ** 2).sum(axis=2)) / 5.0).astype(
            np.int64
        )
        route, pickup, delivery = _random_route(rng, travel_s, n_pairs)

        t0 = time.perf_counter()
        got = insert(route, pickup, delivery, travel_s)
        t1 = time.perf_counter()
        ref = _brute_force(route, pickup, delivery, travel_s)
        t2 = time.perf_counter()
        ours_ms.append(1000 * (t1 - t0))
        brute_ms.append(1000 * (t2 - t1))
        feasible += got is not None
        if (got is None) != (ref is None) or (
            got is not None and ref is not None and abs(got.added_travel_s - ref) > 1e-9
        ):
            mismatches += 1
        if trial < args.ortools_trials:
            t3 = time.perf_counter()
            _ortools_single_route(route, pickup, delivery, travel_s)
            ortools_ms.append(1000 * (time.perf_counter() - t3))

    def pct(xs: list[float], q: float) -> float:
        return float(np.percentile(xs, q))

    print(
        f"# insertion into random {2 * n_pairs}-stop routes, {args.trials} trials, "
        f"seed {args.seed}: {feasible} feasible, {mismatches} disagreements with brute force"
    )
    print(f"{'method':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>6}")
    rows = [
        ("insert (ours, O(n^2) incremental)", ours_ms),
        ("brute force (O(n^3) re-simulate)", brute_ms),
        ("OR-Tools solve, 1 vehicle, 1st sol.", ortools_ms),
    ]
    for label, xs in rows:
        if xs:
            print(f"{label:34} {pct(xs, 50):8.3f} {pct(xs, 99):8.3f} {max(xs):8.3f} {len(xs):6d}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--set", default="li_lim_100", choices=["li_lim_100", "li_lim_200"])
    parser.add_argument(
        "--instances",
        default="*",
        help="comma-separated globs on instance names, e.g. 'lc1*' or 'LC1_2_3,LR2_2_2'",
    )
    parser.add_argument("--jobs", type=int, default=1, help="parallel solves (timing: keep 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--solution-limit",
        type=int,
        default=None,
        help="ours: stop after N solutions (reproducible, independent of machine load)",
    )
    parser.add_argument(
        "--fleet-reduction-share",
        type=float,
        default=None,
        help="ours: budget share of the fleet-reduction phase (0 = off)",
    )
    parser.add_argument(
        "--polish-share",
        type=float,
        default=None,
        help="ours: budget share of the final hinted restart (0 = off; with "
        "--fleet-reduction-share 0: ILS only, plus the final descent)",
    )
    parser.add_argument(
        "--ejection-share",
        type=float,
        default=None,
        help="ours: budget share of route elimination on exact routes after a failed "
        "hinted reduction, plus the polish repair (routing.reduce); 0 = off; "
        "default: the solver's (0.08)",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="ours: override any SolverConfig number, e.g. --config ejection_candidates=3",
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="li_lim benchmark folder")
    parser.add_argument("--no-vroom", action="store_true", help="skip the VROOM comparison")
    parser.add_argument("--vroom-exploration", type=int, default=5, help="VROOM level 0..5")
    parser.add_argument(
        "--vroom-untimed", action="store_true",
        help="VROOM without a timeout (with --solution-limit: both independent of load)",
    )
    parser.add_argument(
        "--generated", type=int, default=0, metavar="PAIRS",
        help="solve one generated Li & Lim-like instance of PAIRS orders instead (for scale)",
    )
    parser.add_argument("--generated-seed", type=int, default=0, help="its generator seed")
    parser.add_argument(
        "--warm", action="store_true",
        help="time warm starts (routing.warm) after one new order / one cancellation instead",
    )
    parser.add_argument("--warm-budget", type=float, default=0.5, help="re-plan budget, s")
    parser.add_argument("--insertion", action="store_true", help="benchmark insertion instead")
    parser.add_argument("--trials", type=int, default=1000, help="insertion trials")
    parser.add_argument("--stops", type=int, default=10, help="stops per route (insertion)")
    parser.add_argument("--ortools-trials", type=int, default=200, help="OR-Tools baseline trials")
    args = parser.parse_args(argv)
    if args.insertion:
        bench_insertion(args)
    elif args.warm:
        bench_warm(args)
    elif args.generated:
        bench_generated(args)
    else:
        bench_solver(args)


if __name__ == "__main__":
    main()
