"""PDPTW solve on OR-Tools routing: `solve(problem, time_limit_s, seed) -> Plan`.

Objective, lexicographic as in the Li & Lim literature: fewest vehicles (a fixed cost per used
vehicle larger than any achievable saving in travel), then least total travel time.

Search: a first solution (parallel cheapest insertion) on the whole fleet, then OR-Tools'
iterated local search on the vehicles that solution used: SISR ruin-and-recreate with
simulated-annealing acceptance. It beat guided local search by a wide margin on Li & Lim at
10 s (docs/adr/0016-routing-solver.md: "ADR 0016" below); GLS stays available through
`SolverConfig.metaheuristic`. Then
part of the budget tries to do without one route (fleet reduction, not tried when the fleet
already equals a lower bound, `routing.bounds`): the search restarts from the other routes,
hinted, in chunks that stop as soon as one re-inserts no more of the dropped tasks; kept only
if it serves every task. When that fails, an ejection pool (`routing.reduce`, in Python, on
exact routes) completes the attempt's plan or drops a short route itself, in a reserved
slice (`ejection_share`); a lossy polish restart of such a plan is repaired by it instead of
thrown away. The rest restarts
the search from the best routes to shorten them, and a local-search descent ends it.

Thread safety: every call builds its own model and mutates no module state, so concurrent calls
are safe. But OR-Tools' Python binding holds the GIL for the whole search (measured: another
Python thread runs at ~4% of its speed meanwhile), so from async code run `solve` in a
*process* pool — Problem and Plan pickle — or it stalls the event loop for the whole budget.

Determinism: the search is single-threaded; the ILS random generator exposes no seed and acts
as fixed, and `seed` shuffles the order in which tasks are handed to OR-Tools. With
`solution_limit` (and a generous `time_limit_s`) the same (problem, seed, solution_limit) gives
the same plan, run after run and under any machine load (tested). With a wall-clock budget
alone the search stops wherever the clock says, so results vary with machine speed and load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
from ortools.constraint_solver import (
    pywrapcp,
    routing_enums_pb2,
    routing_heuristic_parameters_pb2,
)

from routing.bounds import vehicle_lower_bound
from routing.decompose import SolvePart, improve_by_parts
from routing.feasibility import check_plan
from routing.model import Plan, Problem, Task, Vehicle, make_plan
from routing.reduce import reinsert_orders
from routing.vroom_plan import exploration_for, plain, vroom_from, vroom_routes
from routing.vroom_search import improve_with_vroom

__all__ = [
    "InfeasibleProblemError",
    "NoSolutionError",
    "Progress",
    "SolverConfig",
    "part_solver",
    "solve",
]


class InfeasibleProblemError(ValueError):
    """Some task cannot be served at all (no vehicle reaches it in time, or it overloads all)."""


class NoSolutionError(RuntimeError):
    """OR-Tools found no plan serving every task within the budget."""


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """The best complete plan so far, reported as each phase of `solve` ends."""

    phase: str  # "first solution", "search", "fleet reduction", "polish", "final descent"
    elapsed_s: float
    vehicles: int
    dist: float


class SolverConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Search settings; the defaults are the ones tuned on Li & Lim (ADR 0016).

    `metaheuristic` is "ITERATED_LOCAL_SEARCH" (OR-Tools' ruin-and-recreate with SISR string
    removals and simulated-annealing acceptance) or any `LocalSearchMetaheuristic` name such
    as "GUIDED_LOCAL_SEARCH".
    """

    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "ITERATED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    # SISR ruin (Christiaens & Vanden Berghe 2020); the paper's suggested values.
    sisr_avg_removed: int = 10
    sisr_max_sequence: int = 10
    sisr_bypass_factor: float = 0.01
    # Recreate: each removed order goes to its best (pickup, delivery) position pair, not its
    # best pickup position then the best delivery after it. Dearer per iteration (~15 %);
    # far better on Li & Lim 200 (500 iterations each: LR2_2_2 4488 -> 3969, LRC1_2_4 2729
    # -> 2682), not on 100 (3000 solutions: lr104 1049 -> 1075, lr110 1190 -> 1196), so by
    # default only the large-instance path's ILS uses it (`large_recreate_best_pair`).
    recreate_best_pair: bool = False
    # Simulated-annealing temperatures as multiples of the mean travel time between stops, so
    # one setting fits seconds in a city and Li & Lim's scaled units alike. 2.5 and 0.025 are
    # SISR's 100 -> 1 on Li & Lim's scale; OR-Tools' automatic choice (0.1 -> 0.001) is too cold
    # and stalls within seconds (ADR 0016).
    sa_initial_temperature: float = 2.5
    sa_final_temperature: float = 0.025
    # None: derived from the data so one vehicle always outweighs any travel saving.
    vehicle_fixed_cost: int | None = None
    trim_fleet: bool = True  # search only with the vehicles the first solution used
    # Share of the search budget at most spent trying to do without the search's shortest
    # route: its tasks are dropped, the other routes seed a search with one vehicle fewer, and
    # the result is kept only if it serves every task. 0 disables it. The share is cut into
    # chunks; an attempt stops after `reduction_patience` chunks without fewer tasks left out,
    # and its unspent time goes to the polish.
    fleet_reduction_share: float = 0.3
    reduction_chunk_share: float = 0.1
    reduction_patience: int = 1
    max_route_removals: int = 1
    # When the hinted reduction fails, route elimination on the exact routes (routing.reduce:
    # an ejection pool re-inserts the missing orders in pure Python, no lossy OR-Tools hint)
    # in a slice of the reduction window reserved for it, this share of the search budget:
    # first from the failed hinted attempt's plan (one route fewer, a few tasks out), then
    # from the plan without each of its `ejection_candidates` routes with fewest tasks, each
    # start with an equal part of the slice. 0 = off (the solver before the pool). 0.08
    # (ADR 0016): lr110 at BKS+1 or better in 10/10
    # seeds at 10 s, full-set gap ~1 %; the older 0.2 with a 3x slower pool cost distance
    # elsewhere. With a solution limit (reproducible mode) each start gets `ejection_steps`
    # insertions instead of a slice of the clock.
    ejection_share: float = 0.08
    ejection_candidates: int = 2
    ejection_steps: int = 400
    # After the pool made the plan, the polish ends this share of the search budget early: if
    # OR-Tools rebuilt its hint with tasks left out, the ejection pool re-inserts them.
    repair_share: float = 0.05
    # One cooling schedule across the phases (each continues at the temperature where the
    # last stopped) instead of re-heating at every phase. Measured worse (the hinted restarts
    # rebuild a somewhat different plan, which a cold search cannot repair): off.
    one_schedule: bool = False
    # A local-search descent from the final plan (well under a second on Li & Lim; the budget
    # reserves `descent_share` for it).
    final_descent: bool = True
    descent_share: float = 0.05
    # Share of the search budget at least left for a last search restarted from the best
    # routes (hinted): it re-heats the annealing. Only a better plan replaces its start.
    polish_share: float = 0.3
    # The polish starts this many times hotter than the first search (its hinted start is a
    # converged plan, or a freshly reduced one, that needs shaking to change shape).
    polish_heat: float = 3.0
    # Large instances (at least `large_tasks` tasks; Li & Lim 200 has ~200, 100 ~100):
    # OR-Tools restarts from a hint lose ~10 % of the tasks there and never recover in time, so
    # neither the hinted reduction nor the polish helps (docs/routing.md, "Large
    # instances"). Instead: the ILS on `large_ils_share` of the search budget; then the
    # ejection pool on the exact routes drops routes one after another (up to
    # `large_reduction_share`, each removal trying `ejection_candidates` routes), a descent
    # tightens the result, and the rest improves it by parts (`routing.decompose`): a few
    # neighbouring routes, about `part_tasks` tasks, searched on their own from their routes
    # for `part_solutions` solutions, kept only if better.
    large_tasks: int = 150
    large_recreate_best_pair: bool = True
    large_ils_share: float = 0.45
    large_reduction_share: float = 0.25
    part_tasks: int = 60
    part_solutions: int = 300
    # How the large path starts on a plain instance (`routing.vroom_plan.plain`): "vroom"
    # (VROOM's plan, on `vroom_share` of the budget on `vroom_threads` threads, at the
    # highest exploration level up to `vroom_exploration` expected to fit:
    # `routing.vroom_plan.exploration_for`) or "ils" (OR-Tools' first solution and ILS).
    # ADR 0037.
    large_start: str = "vroom"
    vroom_share: float = 0.8
    # Route elimination from VROOM's plan runs until this share of the budget is left for
    # the improvement that follows (`vroom_improve`).
    vroom_parts_share: float = 0.25
    vroom_exploration: int = 5
    vroom_threads: int = 2
    # After route elimination from VROOM's plan: improve with VROOM as the inner search
    # (`routing.vroom_search`: parts, then ruin and recreate) instead of OR-Tools' ILS on parts.
    vroom_improve: bool = True


DEFAULT_CONFIG = SolverConfig()


def solve(
    problem: Problem,
    time_limit_s: float,
    seed: int = 0,
    *,
    solution_limit: int | None = None,
    config: SolverConfig = DEFAULT_CONFIG,
    progress: Callable[[Progress], None] | None = None,
) -> Plan:
    """Best plan found within `time_limit_s` (and `solution_limit` solutions, if given).

    `progress`, if given, is called with the best complete plan as each phase ends (so a
    long solve can show where it is); it changes nothing in the search.

    Raises:
        InfeasibleProblemError: a task can be served by no vehicle even on a route of its own.
        NoSolutionError: no plan serving every task was found within the budget.
    """
    if time_limit_s <= 0:
        raise ValueError("time_limit_s must be positive")
    _check_each_task_servable(problem)
    if not problem.tasks:
        return make_plan(problem, [])
    started = time.monotonic()
    deadline = started + time_limit_s

    def report(phase: str, best: Routes | None) -> None:
        if progress is not None and best is not None:
            plan = make_plan(problem, best)
            progress(Progress(phase=phase, elapsed_s=time.monotonic() - started,
                              vehicles=plan.vehicles_used, dist=plan.dist))

    large = len(problem.tasks) >= config.large_tasks
    if large and config.large_start == "vroom" and plain(problem):
        search_end = deadline - (time_limit_s * config.descent_share if config.final_descent else 0)
        routes = _solve_large_from_vroom(
            problem, config, seed, _Budget(search_end - started, solution_limit), search_end,
            report,
        )
        if routes is not None:
            return _finish(problem, routes, config, seed, deadline, report, None, time_limit_s)

    # Phase 1, a first solution on the whole fleet (tens of ms): its routes are a fallback, and
    # its vehicle count bounds the fleet the search needs.
    model = _Model(problem, seed, config)
    first_params = _search_parameters(config, time_limit_s, 1, model.mean_travel)
    first_params.use_iterated_local_search = False
    first = model.routing.SolveWithParameters(first_params)
    fallback = model.routes(first) if first is not None else None
    if fallback is not None and _dropped(problem, fallback):
        fallback = None
    report("first solution", fallback)
    if config.trim_fleet and fallback is not None:
        # Vehicles the first solution left idle only slow the search down (every insertion
        # also tries each empty route) and could only be used at a loss, since a vehicle's
        # fixed cost outweighs any travel saving. Halves the time per iteration on Li & Lim.
        used = {vehicle_id for vehicle_id, ids in fallback if ids}
        kept = tuple(v for v in problem.vehicles if v.id in used)
        if len(kept) < len(problem.vehicles):
            model = _Model(msgspec.structs.replace(problem, vehicles=kept), seed, config)

    # Phase 2, the metaheuristic on its share; then fleet reduction (phase 3) in chunks that
    # stop as soon as one makes no progress, and a hinted restart from the best routes (phase
    # 4) with whatever is left, which polishes the plan phase 3 ended with.
    ils = config.metaheuristic == "ITERATED_LOCAL_SEARCH"
    reduce_share = config.fleet_reduction_share if ils else 0.0
    polish_share = config.polish_share if ils else 0.0
    # The final descent's reserve: the phases before it end that much earlier.
    search_end = deadline - (time_limit_s * config.descent_share if config.final_descent else 0)
    search_s = max(0.001, search_end - time.monotonic())
    budget = _Budget(search_s, solution_limit)
    if ils and large:
        routes = _solve_large(problem, model, fallback, config, seed, budget, search_end, report)
        return _finish(problem, routes, config, seed, deadline, report, model, time_limit_s)
    ils_share = 1 - reduce_share - polish_share
    routes = model.search(_schedule(config, 0, ils_share), *budget.share(ils_share))
    if routes is None or _dropped(problem, routes):
        routes = fallback
    report("search", routes)
    position = ils_share  # how far along the cooling schedule the search is
    if reduce_share > 0 and routes is not None:
        # Polish time is reserved: reduction chunks must end before it starts.
        reduce_end = search_end - polish_share * search_s
        routes, position, ejected = _reduce_fleet(
            problem, routes, config, seed, budget, (position, reduce_share), reduce_end
        )
        report("fleet reduction", routes)
    else:
        ejected = False
    if polish_share > 0 and routes is not None:
        remaining_s = max(0.001, search_end - time.monotonic())
        polish_config = _schedule(config, position, 1.0)
        polish_config = msgspec.structs.replace(
            polish_config,
            sa_initial_temperature=polish_config.sa_initial_temperature * config.polish_heat,
        )
        if ejected:  # the plan is the pool's: the hinted polish may rebuild it with gaps
            polished = _polish_and_repair(
                problem, routes, polish_config, seed, (search_end, search_s), budget.rest()
            )
        else:
            polished = _restart_from(
                problem, routes, polish_config, seed, remaining_s, budget.rest(), False
            )
        if polished is not None and _rank(problem, polished) < _rank(problem, routes):
            routes = polished
        report("polish", routes)
    return _finish(problem, routes, config, seed, deadline, report, model, time_limit_s)


def _finish(
    problem: Problem,
    routes: Routes | None,
    config: SolverConfig,
    seed: int,
    deadline: float,
    report: Callable[[str, Routes | None], None],
    model: _Model | None,
    time_limit_s: float,
) -> Plan:
    """The final descent (phase 5), then the plan; raises NoSolutionError without routes."""
    if config.final_descent and routes is not None:
        remaining_s = max(0.001, deadline - time.monotonic())
        busy = {vehicle_id for vehicle_id, ids in routes if ids}
        fleet = tuple(v for v in problem.vehicles if v.id in busy)
        local = _Model(msgspec.structs.replace(problem, vehicles=fleet), seed, config)
        descended = local.descend([r for r in routes if r[1]], remaining_s)
        if (
            descended is not None
            and not _dropped(problem, descended)
            and _rank(problem, descended) < _rank(problem, routes)
        ):
            routes = descended
        report("final descent", routes)
    if routes is None:
        raise NoSolutionError(
            f"{problem.name or 'problem'}: no plan serving every task found in "
            f"{time_limit_s} s (OR-Tools status "
            f"{model.routing.status() if model is not None else 'not run'})"
        )
    return make_plan(problem, routes)


def _solve_large(
    problem: Problem,
    model: _Model,
    fallback: Routes | None,
    config: SolverConfig,
    seed: int,
    budget: _Budget,
    search_end: float,
    report: Callable[[str, Routes | None], None],
) -> Routes | None:
    """Phases 2-4 for a large instance (`SolverConfig.large_tasks`): ILS, fleet reduction by
    the ejection pool alone, a descent, then improvement by parts until `search_end`."""
    ils_config = msgspec.structs.replace(
        config, recreate_best_pair=config.recreate_best_pair or config.large_recreate_best_pair
    )
    routes = model.search(ils_config, *budget.share(config.large_ils_share))
    if routes is None or _dropped(problem, routes):
        routes = fallback
    report("search", routes)
    if routes is None:
        return None
    return _reduce_and_improve(problem, routes, config, seed, budget, search_end, report)


def _solve_large_from_vroom(
    problem: Problem,
    config: SolverConfig,
    seed: int,
    budget: _Budget,
    search_end: float,
    report: Callable[[str, Routes | None], None],
) -> Routes | None:
    """Phases 2-4 for a large plain instance started from VROOM's plan (`routing.vroom_plan`,
    `SolverConfig.large_start`): VROOM on `vroom_share` of the budget, route elimination
    from its routes (`_vroom_reduce`), then the improvement: `routing.vroom_search`, or
    OR-Tools on parts with `vroom_improve` off. None if VROOM's plan is not complete and
    feasible (the caller then takes the OR-Tools path)."""
    seconds = budget.search_s * config.vroom_share
    level = exploration_for(
        len(problem.tasks), seconds, config.vroom_threads, config.vroom_exploration
    )
    # With a solution limit (reproducible mode) VROOM's clock must not bind: no timeout.
    routes = vroom_routes(
        problem, seconds if budget.limit is None else None, exploration_level=level,
        threads=config.vroom_threads,
    )
    if routes is None or _dropped(problem, routes):
        return None
    if check_plan(problem, make_plan(problem, routes)):
        return None
    routes = [r for r in routes if r[1]]
    report("search", routes)
    reduce_end = search_end - budget.search_s * config.vroom_parts_share
    routes = _vroom_reduce(problem, routes, config, seed, reduce_end, budget.limit)
    report("fleet reduction", routes)
    max_parts = None if budget.limit is None else max(1, budget.limit // config.part_solutions)
    if config.vroom_improve:
        routes = improve_with_vroom(problem, routes, search_end, seed,
                                    part_tasks=config.part_tasks,
                                    threads=config.vroom_threads, max_steps=max_parts)
    else:
        routes = improve_by_parts(
            problem, routes, part_solver(config, seed, search_end), search_end, seed,
            part_tasks=config.part_tasks, max_parts=max_parts,
        )
    report("polish", routes)
    return routes


def _vroom_reduce(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    end_s: float,
    solution_limit: int | None,
) -> Routes:
    """`routes` (complete, feasible) with as many routes eliminated as fit before `end_s`.

    Each attempt drops a route (fewest tasks first, `ejection_candidates` of them in turn)
    and runs VROOM's local search from the other routes (`vroom_from`): it places most of
    the dropped orders and keeps the plan tight; the ejection pool (`routing.reduce`)
    places the rest. A success is polished by VROOM's local search once more. Every plan
    kept is complete and passes `check_plan`.
    """
    lower = vehicle_lower_bound(problem)
    steps = config.ejection_steps if solution_limit is not None else 1 << 30
    current = routes
    attempt = 0

    def seconds(until: float) -> float | None:  # no VROOM timeout in reproducible mode
        return None if solution_limit is not None else max(0.001, until - time.monotonic())

    def good(found: Routes | None) -> bool:
        return (
            found is not None
            and not _dropped(problem, found)
            and not check_plan(problem, make_plan(problem, found))
        )

    while _used(current) > lower:
        candidates = _removal_candidates(problem, current)[: config.ejection_candidates]
        found: Routes | None = None
        for i, dropped in enumerate(candidates):
            now = time.monotonic()
            if now >= end_s:
                return current
            deadline = now + (end_s - now) / (len(candidates) - i)
            rest = [r for r in current if r[0] != dropped]
            tight = vroom_from(problem, rest, seconds(deadline), threads=config.vroom_threads)
            if tight is not None:
                placed = {v for v, _ in tight}
                tight = [r for r in tight] + [(v, []) for v, _ in rest if v not in placed]
                found = tight if good(tight) else reinsert_orders(
                    problem, tight, deadline, seed + attempt, max_steps=steps
                )
            attempt += 1
            if good(found):
                break
            found = None
        if found is None:
            return current
        current = [r for r in found if r[1]]
        polished = vroom_from(problem, current, seconds(end_s), threads=config.vroom_threads)
        if good(polished) and polished is not None and _rank(problem, polished) < _rank(
            problem, current
        ):
            current = [r for r in polished if r[1]]
    return current


def _reduce_and_improve(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    budget: _Budget,
    search_end: float,
    report: Callable[[str, Routes | None], None],
) -> Routes:
    """Fleet reduction by the ejection pool, a capped descent, then improvement by parts
    until `search_end` (phases 3-4 of the large path)."""
    reduce_end = min(search_end, time.monotonic() + budget.search_s * config.large_reduction_share)
    attempt_s = budget.search_s * config.reduction_chunk_share
    reduced = _pool_reduce(problem, routes, config, seed, (reduce_end, attempt_s), budget.limit)
    if reduced is not None:
        routes = reduced
        fleet = tuple(v for v in problem.vehicles if v.id in {r[0] for r in routes})
        local = _Model(msgspec.structs.replace(problem, vehicles=fleet), seed, config)
        # Capped: at 200 customers a descent from a pool-made plan can take seconds.
        descent_s = min(budget.search_s * config.reduction_chunk_share,
                        search_end - time.monotonic())
        descended = local.descend(routes, max(0.001, descent_s))
        if (
            descended is not None
            and not _dropped(problem, descended)
            and _rank(problem, descended) < _rank(problem, routes)
        ):
            routes = [r for r in descended if r[1]]
    report("fleet reduction", routes)
    if budget.limit is None:
        max_parts = None
    else:
        max_parts = max(1, (budget.rest() or 1) // config.part_solutions)

    routes = improve_by_parts(
        problem, routes, part_solver(config, seed, search_end), search_end, seed,
        part_tasks=config.part_tasks, max_parts=max_parts,
    )
    report("polish", routes)
    return routes


def part_solver(config: SolverConfig, seed: int, deadline: float) -> SolvePart:
    """The sub-problem search of improvement by parts (`routing.decompose`): OR-Tools' ILS
    hinted with the part's routes, `config.part_solutions` solutions, until `deadline`."""

    def solve_part(sub: Problem, part: Routes) -> Routes | None:
        seconds = deadline - time.monotonic()
        if seconds <= 0:
            return None
        return _Model(sub, seed, config).search(config, seconds, config.part_solutions, part)

    return solve_part


def _pool_reduce(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    window: tuple[float, float],
    solution_limit: int | None,
) -> Routes | None:
    """`routes` with as many routes dropped as the ejection pool manages before `end_s`:
    each removal tries the `ejection_candidates` routes with fewest tasks in turn, each
    attempt for at most `attempt_s`; None if not even one went. Never below the vehicle
    lower bound. `window` is (end_s, attempt_s)."""
    end_s, attempt_s = window
    lower = vehicle_lower_bound(problem)
    steps = config.ejection_steps if solution_limit is not None else 1 << 30
    reduced: Routes | None = None
    current = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    attempt = 0
    while _used(current) > lower:
        candidates = _removal_candidates(problem, current)[: config.ejection_candidates]
        found: Routes | None = None
        for i, dropped in enumerate(candidates):
            now = time.monotonic()
            if now >= end_s:
                return reduced
            # Successes take well under a second at 200 customers; an attempt that drags on
            # is cut at one reduction chunk so the parts get the time instead.
            deadline = min(now + (end_s - now) / (len(candidates) - i), now + attempt_s)
            state = [r for r in current if r[0] != dropped]
            found = reinsert_orders(problem, state, deadline, seed + attempt, max_steps=steps)
            attempt += 1
            if found is not None and not check_plan(problem, make_plan(problem, found)):
                break
            found = None
        if found is None:
            return reduced
        current = reduced = [r for r in found if r[1]]
    return reduced


def _dropped(problem: Problem, routes: list[tuple[int, list[int]]]) -> bool:
    return sum(len(ids) for _, ids in routes) < len(problem.tasks)


Routes = list[tuple[int, list[int]]]


class _Budget:
    """The search budget after the first solution, in seconds and, if given, solutions.

    With a solution limit every phase gets a fixed number of solutions (so the plan does not
    depend on the clock); the time shares then only cap each phase.
    """

    def __init__(self, search_s: float, solution_limit: int | None) -> None:
        self.search_s = search_s
        self.limit = solution_limit
        self.spent = 0

    def share(self, fraction: float) -> tuple[float, int | None]:
        """(seconds, solutions) for a phase taking `fraction` of the budget."""
        seconds = self.search_s * fraction
        if self.limit is None:
            return seconds, None
        solutions = max(1, round(self.limit * fraction))
        self.spent += solutions
        return seconds, solutions

    def rest(self) -> int | None:
        """Solutions left for the last phase (None: no limit)."""
        return None if self.limit is None else max(1, self.limit - self.spent)


def _reduce_fleet(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    budget: _Budget,
    window: tuple[float, float],
    end_s: float,
) -> tuple[Routes, float, bool]:
    """Fleet reduction: drop the route with fewest tasks and search, in chunks, for a plan that
    re-inserts them on the other vehicles; the best complete plan found (or `routes`).

    The budget is cut into chunks of `config.reduction_chunk_share`; each chunk is a hinted
    search from where the last one stopped, tasks still left out included, with the next
    slice of one annealing schedule. An attempt is abandoned once `reduction_patience` chunks
    in a row leave as many tasks out as before, so a hopeless attempt costs a chunk or two
    rather than the whole share; unspent time goes to the polish. A success frees its
    remaining chunks for another removal, up to `max_route_removals`. No attempt starts when
    the fleet already equals a lower bound (routing.bounds).

    `window` is (start, share): where on the cooling schedule the phase starts and its share
    of the budget. Returns the routes, where on the schedule the phase stopped, and whether
    the ejection pool made them.
    """
    start, share = window
    n_chunks = max(1, round(share / config.reduction_chunk_share))
    chunk_fraction = share / n_chunks
    lower = vehicle_lower_bound(problem)
    # With ejection on, the pool gets its slice even when the hinted chunks used the whole
    # window (a slow attempt that ends 2 tasks short used to leave it nothing); it then comes
    # out of the polish. Cutting the chunks short for it instead cost distance where the
    # last chunk would have succeeded (ADR 0016).
    reserve_s = budget.search_s * config.ejection_share
    partial: Routes | None = None  # the failed attempt's plan, its tasks left out excepted
    chunk = removals = 0
    while chunk < n_chunks and removals < config.max_route_removals and _used(routes) > lower:
        state = _without_shortest_route(problem, routes)
        if state is None:
            break
        out = first_out = _n_dropped(problem, state)
        stalls = 0
        while chunk < n_chunks and out > 0 and stalls < config.reduction_patience:
            seconds, solutions = budget.share(chunk_fraction)
            seconds = min(seconds, end_s - time.monotonic())
            if seconds <= 0:
                chunk = n_chunks
                break
            if config.one_schedule:
                at = start + chunk * chunk_fraction
                sliced = _annealing_slice(config, at, at + chunk_fraction)
            else:  # every attempt cools on its own
                sliced = _annealing_slice(config, chunk / n_chunks, (chunk + 1) / n_chunks)
            chunk += 1
            found = _search_from(problem, state, sliced, seed, seconds, solutions)
            if found is None:
                break
            now_out = _n_dropped(problem, found)
            stalls = 0 if now_out < out else stalls + 1
            if now_out <= out:
                state, out = found, now_out
        if out > 0:
            if out < first_out:  # else it is just the first candidate start
                partial = state
            break
        routes = state
        removals += 1
    if config.ejection_share > 0 and removals == 0 and _used(routes) > lower:
        # The hinted attempt failed (OR-Tools rebuilds a hint lossily): route elimination on
        # the exact routes instead (routing.reduce), in what is left of the window.
        eject_end = time.monotonic() + reserve_s
        descent_s = budget.search_s * config.reduction_chunk_share
        reduced = _eject_route(
            problem, routes, config, seed, (eject_end, descent_s), budget.limit, partial
        )
        if reduced is not None:
            return reduced, start + chunk * chunk_fraction, True
    return routes, start + chunk * chunk_fraction, False


def _eject_route(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    window: tuple[float, float],
    solution_limit: int | None,
    partial: Routes | None = None,
) -> Routes | None:
    """`routes` with one route fewer, its orders re-inserted on the others by the ejection
    pool (`routing.reduce.reinsert_orders`) and the result descended to a local optimum; None
    if none of the starts could be completed before `end_s`. The starts: `partial` (a failed
    hinted attempt's plan with one route fewer and a few tasks left out: OR-Tools-tight, so
    its completion needs fewer ejections and comes out shorter), then `routes` without each
    candidate route (fewest tasks first); each gets an equal part of the time left. `window`
    is (end_s, seconds the final descent may take)."""
    end_s, descent_s = window
    candidates = _removal_candidates(problem, routes)[: config.ejection_candidates]
    used = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    starts = [[r for r in used if r[0] != dropped] for dropped in candidates]
    if partial is not None and _used(partial) < _used(routes):
        starts.insert(0, [r for r in partial if r[1]])
    for i, state in enumerate(starts):
        now = time.monotonic()
        if now >= end_s:
            return None
        deadline = now + (end_s - now) / (len(starts) - i)
        steps = config.ejection_steps if solution_limit is not None else 1 << 30
        found = reinsert_orders(problem, state, deadline, seed + i, max_steps=steps)
        if found is None or check_plan(problem, make_plan(problem, found)):
            continue  # (the checker finding anything would be a bug in routing.insertion)
        # The ejections leave a feasible but loose plan: a descent (exact start, well under a
        # second) tightens it before the polish.
        fleet = tuple(v for v in problem.vehicles if v.id in {r[0] for r in found})
        local = _Model(msgspec.structs.replace(problem, vehicles=fleet), seed, config)
        descended = local.descend(found, max(0.001, descent_s))
        if (
            descended is not None
            and not _dropped(problem, descended)
            and _rank(problem, descended) < _rank(problem, found)
        ):
            return descended
        return found
    return None


def _polish_and_repair(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    window: tuple[float, float],
    solution_limit: int | None,
) -> Routes | None:
    """The polish (a search hinted with `routes` on their vehicles) until `repair_share` of
    the search before `end_s`; if OR-Tools rebuilt the hint with tasks left out, the ejection
    pool puts them back in the time left (a lossy restart used to be thrown away whole).
    `window` is (end_s, search seconds). None if the result is still incomplete."""
    end_s, search_s = window
    repair_s = search_s * config.repair_share
    used = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    seconds = max(0.001, end_s - repair_s - time.monotonic())
    found = _search_from(problem, used, config, seed, seconds, solution_limit)
    if found is None or not _dropped(problem, found):
        return found
    steps = config.ejection_steps if solution_limit is not None else 1 << 30
    repaired = reinsert_orders(
        problem,
        [r for r in found if r[1]],
        max(end_s, time.monotonic() + 0.001),
        seed,
        max_steps=steps,
    )
    if repaired is None or check_plan(problem, make_plan(problem, repaired)):
        return None
    return repaired


def _removal_candidates(problem: Problem, routes: Routes) -> list[int]:
    """Vehicles whose route may be dropped (non-empty, no bound tasks), fewest tasks first;
    empty if only one route is left."""
    used = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    if len(used) < 2:
        return []
    bound = {t.vehicle_id for t in problem.tasks if t.vehicle_id is not None}
    ranked = sorted((len(ids), vehicle_id) for vehicle_id, ids in used if vehicle_id not in bound)
    return [vehicle_id for _, vehicle_id in ranked]


def _schedule(config: SolverConfig, start: float, stop: float) -> SolverConfig:
    """The config for a phase covering [start, stop] of the search: with `one_schedule`, its
    slice of the cooling; else the whole cooling (each phase re-heats)."""
    return _annealing_slice(config, start, stop) if config.one_schedule else config


def _annealing_slice(config: SolverConfig, start: float, stop: float) -> SolverConfig:
    """The part [start, stop] (fractions) of the geometric cooling from the initial to the final
    temperature, so successive chunks of one attempt cool like one search."""
    t0, t1 = config.sa_initial_temperature, config.sa_final_temperature
    return msgspec.structs.replace(
        config,
        sa_initial_temperature=t0 * (t1 / t0) ** start,
        sa_final_temperature=t0 * (t1 / t0) ** stop,
    )


def _used(routes: Routes) -> int:
    return sum(1 for _, ids in routes if ids)


def _n_dropped(problem: Problem, routes: Routes) -> int:
    return len(problem.tasks) - sum(len(ids) for _, ids in routes)


def _rank(problem: Problem, routes: Routes) -> tuple[int, int]:
    """Lexicographic objective: vehicles, then travel."""
    return _used(routes), _travel(problem, routes)


def _without_shortest_route(problem: Problem, routes: Routes) -> Routes | None:
    """`routes` without the non-empty route with fewest tasks (never a courier carrying bound
    tasks); None if no route may go or only one is left."""
    used = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    bound = {t.vehicle_id for t in problem.tasks if t.vehicle_id is not None}
    candidates = [r for r in used if r[0] not in bound]
    if len(used) < 2 or not candidates:
        return None
    dropped_vehicle = min(candidates, key=lambda r: len(r[1]))[0]
    return [r for r in used if r[0] != dropped_vehicle]


def _search_from(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    time_limit_s: float,
    solution_limit: int | None,
) -> Routes | None:
    """A search hinted with `routes` on their vehicles only (tasks they leave out may stay out:
    the caller checks)."""
    kept_ids = {vehicle_id for vehicle_id, ids in routes}
    fleet = tuple(v for v in problem.vehicles if v.id in kept_ids)
    model = _Model(msgspec.structs.replace(problem, vehicles=fleet), seed, config)
    return model.search(config, time_limit_s, solution_limit, hint=routes)


def _travel(problem: Problem, routes: list[tuple[int, list[int]]]) -> int:
    return make_plan(problem, routes).travel_s


def _restart_from(
    problem: Problem,
    routes: Routes,
    config: SolverConfig,
    seed: int,
    time_limit_s: float,
    solution_limit: int | None,
    drop_shortest: bool,
) -> Routes | None:
    """A new search started from `routes` (OR-Tools' first-solution hint) on their vehicles;
    None if it left some task out.

    With `drop_shortest`, one fleet-reduction attempt in one piece: the route with fewest
    tasks goes outright, with its vehicle (never a courier carrying bound tasks), and the
    search must re-insert its tasks.
    """
    used: Routes | None = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    if drop_shortest:
        used = _without_shortest_route(problem, routes)
    if used is None:
        return None
    found = _search_from(problem, used, config, seed, time_limit_s, solution_limit)
    if found is None or _dropped(problem, found):
        return None
    return found


def _search_parameters(
    config: SolverConfig, time_limit_s: float, solution_limit: int | None, mean_travel: float
) -> pywrapcp.RoutingSearchParameters:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, config.first_solution
    )
    params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    if solution_limit is not None:
        params.solution_limit = solution_limit
    if config.metaheuristic != "ITERATED_LOCAL_SEARCH":
        params.local_search_metaheuristic = getattr(
            routing_enums_pb2.LocalSearchMetaheuristic, config.metaheuristic
        )
        params.guided_local_search_lambda_coefficient = config.gls_lambda
        return params
    params.use_iterated_local_search = True
    ils = params.iterated_local_search_parameters
    sisr = ils.ruin_recreate_parameters.ruin_strategies.add().sisr
    sisr.avg_num_removed_visits = config.sisr_avg_removed
    sisr.max_removed_sequence_size = config.sisr_max_sequence
    sisr.bypass_factor = config.sisr_bypass_factor
    if config.recreate_best_pair:
        insertion = ils.ruin_recreate_parameters.recreate_strategy.parameters
        insertion.local_cheapest_insertion.pickup_delivery_strategy = (
            routing_heuristic_parameters_pb2.LocalCheapestInsertionParameters.BEST_PICKUP_DELIVERY_PAIR
        )
    # Pure ruin-and-recreate: a local-search descent after every perturbation costs more
    # iterations than it gains within seconds-long budgets (measured: ADR 0016).
    ils.improve_perturbed_solution = False
    annealing = ils.reference_solution_acceptance_strategy.simulated_annealing
    annealing.initial_temperature = config.sa_initial_temperature * mean_travel
    annealing.final_temperature = config.sa_final_temperature * mean_travel
    return params


class _Model:
    """The OR-Tools model of one problem. Nodes: tasks (seed-shuffled), then route terminals."""

    def __init__(self, problem: Problem, seed: int, config: SolverConfig) -> None:
        self.problem = problem
        self._hint: pywrapcp.Assignment | None = None
        rng = np.random.default_rng(seed)
        self.tasks: list[Task] = [problem.tasks[i] for i in rng.permutation(len(problem.tasks))]
        n_tasks = len(self.tasks)

        # One terminal node per distinct start/end location; open routes end at a dummy node
        # that every node reaches for free.
        terminal_of: dict[int | None, int] = {}
        for v in problem.vehicles:
            for loc in (v.start, v.end):
                terminal_of.setdefault(loc, n_tasks + len(terminal_of))
        node_location = [t.location for t in self.tasks] + list(terminal_of)
        n_nodes = len(node_location)
        starts = [terminal_of[v.start] for v in problem.vehicles]
        ends = [terminal_of[v.end] for v in problem.vehicles]
        self.manager = pywrapcp.RoutingIndexManager(n_nodes, len(problem.vehicles), starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)
        manager, routing = self.manager, self.routing

        # Travel between node locations; the dummy open end (location None) costs nothing.
        locs = np.array([-1 if loc is None else loc for loc in node_location])
        real = locs >= 0
        travel = np.zeros((n_nodes, n_nodes), dtype=np.int64)
        travel[np.ix_(real, real)] = problem.travel_s[np.ix_(locs[real], locs[real])]
        travel[:, ~real] = 0
        self.mean_travel = max(1.0, float(travel[:n_tasks, :n_tasks].mean()))
        service = np.zeros(n_nodes, dtype=np.int64)
        service[:n_tasks] = [t.service_s for t in self.tasks]
        # Matrices (not Python callbacks) keep the whole search in C++.
        cost_cb = routing.RegisterTransitMatrix(travel.tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
        fixed = config.vehicle_fixed_cost
        if fixed is None:
            # Any plan's travel is below (tasks + 2 per vehicle) legs of the longest arc.
            fixed = int(travel.max()) * (n_tasks + 2 * len(problem.vehicles)) + 1
        routing.SetFixedCostOfAllVehicles(fixed)
        # Every task is optional at a price above a vehicle's: ruin-and-recreate needs
        # unperformed tasks, and a first solution always exists. `solve` rejects any plan
        # that still leaves a task out.
        drop_penalty = 4 * fixed

        time_cb = routing.RegisterTransitMatrix((travel + service[:, None]).tolist())
        horizon = max(
            max(v.shift_end_s for v in problem.vehicles), max(t.due_s for t in self.tasks)
        )
        # Slack = waiting for a window to open (food not ready); unbounded up to the horizon.
        routing.AddDimension(time_cb, horizon, horizon, False, "time")
        time_dim = routing.GetDimensionOrDie("time")
        for node, task in enumerate(self.tasks):
            index = manager.NodeToIndex(node)
            time_dim.CumulVar(index).SetRange(task.ready_s, task.due_s)
        for k, v in enumerate(problem.vehicles):
            time_dim.CumulVar(routing.Start(k)).SetRange(v.shift_start_s, v.shift_end_s)
            time_dim.CumulVar(routing.End(k)).SetRange(v.shift_start_s, v.shift_end_s)

        demand = [t.demand for t in self.tasks] + [0] * len(terminal_of)
        demand_cb = routing.RegisterUnaryTransitVector(demand)
        capacities = [v.capacity for v in problem.vehicles]
        routing.AddDimensionWithVehicleCapacity(demand_cb, 0, capacities, False, "load")
        load_dim = routing.GetDimensionOrDie("load")
        for k, v in enumerate(problem.vehicles):
            load_dim.CumulVar(routing.Start(k)).SetValue(v.initial_load)

        vehicle_index = {v.id: k for k, v in enumerate(problem.vehicles)}
        node_of = {t.id: node for node, t in enumerate(self.tasks)}
        for node, task in enumerate(self.tasks):
            if task.vehicle_id is not None:
                # -1 = unperformed. (SetAllowedVehiclesForIndex is unusable from Python in
                # OR-Tools 9.15: its absl::Span argument has no SWIG typemap.)
                routing.VehicleVar(manager.NodeToIndex(node)).SetValues(
                    [-1, vehicle_index[task.vehicle_id]]
                )
        for node in range(n_tasks):
            routing.AddDisjunction([manager.NodeToIndex(node)], drop_penalty)
        # AddPickupAndDelivery makes OR-Tools keep a pair on one route, pickup first, both
        # performed or neither. (Extra VehicleVar/CumulVar constraints as in the OR-Tools
        # samples are redundant for this and only slow the search down.)
        for pair in problem.pairs:
            routing.AddPickupAndDelivery(
                manager.NodeToIndex(node_of[pair.pickup_id]),
                manager.NodeToIndex(node_of[pair.delivery_id]),
            )

    def search(
        self,
        config: SolverConfig,
        time_limit_s: float,
        solution_limit: int | None,
        hint: list[tuple[int, list[int]]] | None = None,
    ) -> list[tuple[int, list[int]]] | None:
        """Routes after the metaheuristic, optionally started from `hint` (vehicle id, task ids).

        The ILS takes no initial assignment, but its first solution, when built by local
        cheapest insertion, follows the model's first-solution hint.
        """
        params = _search_parameters(config, time_limit_s, solution_limit, self.mean_travel)
        if hint is not None:
            params.first_solution_strategy = (
                routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_INSERTION
            )
            self.routing.CloseModelWithParameters(params)
            # The hint must outlive the search: keep a reference on the model.
            self._hint = self.routing.ReadAssignmentFromRoutes(self._indices(hint), True)
            if self._hint is None:
                return None
            self.routing.SetFirstSolutionHint(self._hint)
        if params.use_iterated_local_search:
            assignment = self.routing.SolveWithIteratedLocalSearch(params)
        else:
            assignment = self.routing.SolveWithParameters(params)
        return self.routes(assignment) if assignment is not None else None

    def _indices(self, routes: list[tuple[int, list[int]]]) -> list[list[int]]:
        """(vehicle id, task ids) routes as OR-Tools node indices, one list per vehicle."""
        node_of = {t.id: node for node, t in enumerate(self.tasks)}
        ids_of = dict(routes)
        return [
            [self.manager.NodeToIndex(node_of[i]) for i in ids_of.get(v.id, [])]
            for v in self.problem.vehicles
        ]

    def descend(self, routes: Routes, time_limit_s: float) -> Routes | None:
        """A local-search descent (OR-Tools' operators, greedy) from `routes` to a local
        optimum; None if OR-Tools cannot read the routes back as a feasible assignment.

        The ILS runs pure ruin-and-recreate, whose plans are rarely local optima for the
        relocate/exchange operators: the descent shortens them by ~1-4 % in well under a
        second (ADR 0016).
        """
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
        )
        self.routing.CloseModelWithParameters(params)
        start = self.routing.ReadAssignmentFromRoutes(self._indices(routes), True)
        if start is None:
            return None
        found = self.routing.SolveFromAssignmentWithParameters(start, params)
        return self.routes(found) if found is not None else None

    def routes(self, assignment: pywrapcp.Assignment) -> list[tuple[int, list[int]]]:
        out: list[tuple[int, list[int]]] = []
        n_tasks = len(self.tasks)
        for k, v in enumerate(self.problem.vehicles):
            index = self.routing.Start(k)
            ids: list[int] = []
            while not self.routing.IsEnd(index):
                node = self.manager.IndexToNode(index)
                if node < n_tasks:
                    ids.append(self.tasks[node].id)
                index = assignment.Value(self.routing.NextVar(index))
            out.append((v.id, ids))
        return out


def _check_each_task_servable(problem: Problem) -> None:
    """Fail fast, naming the task, when some task fits no vehicle even on a route of its own."""
    tasks = problem.task_by_id()
    paired: set[int] = set()
    groups: list[Sequence[Task]] = []
    for pair in problem.pairs:
        groups.append((tasks[pair.pickup_id], tasks[pair.delivery_id]))
        paired.update((pair.pickup_id, pair.delivery_id))
    groups.extend((t,) for t in problem.tasks if t.id not in paired)
    for group in groups:
        candidates = [
            v
            for v in problem.vehicles
            if group[0].vehicle_id is None or group[0].vehicle_id == v.id
        ]
        if not any(_alone_feasible(problem, v, group) for v in candidates):
            ids = "/".join(str(t.id) for t in group)
            raise InfeasibleProblemError(
                f"{problem.name or 'problem'}: task {ids} cannot be served by any vehicle, "
                "even alone (time window, shift or capacity)"
            )


def _alone_feasible(problem: Problem, vehicle: Vehicle, group: Sequence[Task]) -> bool:
    travel = problem.travel_s
    t_s, at, load = vehicle.shift_start_s, vehicle.start, vehicle.initial_load
    for task in group:
        t_s = max(t_s + int(travel[at, task.location]), task.ready_s)
        load += task.demand
        if t_s > task.due_s or not 0 <= load <= vehicle.capacity:
            return False
        t_s += task.service_s
        at = task.location
    if vehicle.end is not None:
        t_s += int(travel[at, vehicle.end])
    return t_s <= vehicle.shift_end_s
