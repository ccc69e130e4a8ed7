"""PDPTW solve on OR-Tools routing: `solve(problem, time_limit_s, seed) -> Plan`.

Objective, lexicographic as in the Li & Lim literature: fewest vehicles (a fixed cost per used
vehicle larger than any achievable saving in travel), then least total travel time.

Search: a first solution (parallel cheapest insertion) on the whole fleet, then OR-Tools'
iterated local search on the vehicles that solution used: SISR ruin-and-recreate with
simulated-annealing acceptance. It beat guided local search by a wide margin on Li & Lim at
10 s (docs/routing-notes.md); GLS stays available through `SolverConfig.metaheuristic`. Then
part of the budget tries to do without the shortest route found (fleet reduction: the
search restarts from the other routes, hinted, with one vehicle fewer; kept only if it serves
every task), and the rest restarts the search from the best routes to shorten them.

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
from collections.abc import Sequence

import msgspec
import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.model import Plan, Problem, Task, Vehicle, make_plan

__all__ = ["InfeasibleProblemError", "NoSolutionError", "SolverConfig", "solve"]


class InfeasibleProblemError(ValueError):
    """Some task cannot be served at all (no vehicle reaches it in time, or it overloads all)."""


class NoSolutionError(RuntimeError):
    """OR-Tools found no plan serving every task within the budget."""


class SolverConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Search settings; the defaults are the ones tuned on Li & Lim (docs/routing-notes.md).

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
    # Simulated-annealing temperatures as multiples of the mean travel time between stops, so
    # one setting fits seconds in a city and Li & Lim's scaled units alike. 2.5 and 0.025 are
    # SISR's 100 -> 1 on Li & Lim's scale; OR-Tools' automatic choice (0.1 -> 0.001) is too cold
    # and stalls within seconds (docs/routing-notes.md).
    sa_initial_temperature: float = 2.5
    sa_final_temperature: float = 0.025
    # None: derived from the data so one vehicle always outweighs any travel saving.
    vehicle_fixed_cost: int | None = None
    trim_fleet: bool = True  # search only with the vehicles the first solution used
    # Share of the search budget spent trying to do without the search's shortest route:
    # its tasks are dropped, the other routes seed a search with one vehicle fewer, and the
    # result is kept only if it serves every task. 0 disables it.
    fleet_reduction_share: float = 0.3
    # Share of the search budget for a last search restarted from the best routes (hinted):
    # it re-heats the annealing. Only a shorter plan replaces the one it started from.
    polish_share: float = 0.3


DEFAULT_CONFIG = SolverConfig()


def solve(
    problem: Problem,
    time_limit_s: float,
    seed: int = 0,
    *,
    solution_limit: int | None = None,
    config: SolverConfig = DEFAULT_CONFIG,
) -> Plan:
    """Best plan found within `time_limit_s` (and `solution_limit` solutions, if given).

    Raises:
        InfeasibleProblemError: a task can be served by no vehicle even on a route of its own.
        NoSolutionError: no plan serving every task was found within the budget.
    """
    if time_limit_s <= 0:
        raise ValueError("time_limit_s must be positive")
    _check_each_task_servable(problem)
    if not problem.tasks:
        return make_plan(problem, [])
    deadline = time.monotonic() + time_limit_s

    # Phase 1, a first solution on the whole fleet (tens of ms): its routes are a fallback, and
    # its vehicle count bounds the fleet the search needs.
    model = _Model(problem, seed, config)
    first_params = _search_parameters(config, time_limit_s, 1, model.mean_travel)
    first_params.use_iterated_local_search = False
    first = model.routing.SolveWithParameters(first_params)
    fallback = model.routes(first) if first is not None else None
    if fallback is not None and _dropped(problem, fallback):
        fallback = None
    if config.trim_fleet and fallback is not None:
        # Vehicles the first solution left idle only slow the search down (every insertion
        # also tries each empty route) and could only be used at a loss, since a vehicle's
        # fixed cost outweighs any travel saving. Halves the time per iteration on Li & Lim.
        used = {vehicle_id for vehicle_id, ids in fallback if ids}
        kept = tuple(v for v in problem.vehicles if v.id in used)
        if len(kept) < len(problem.vehicles):
            model = _Model(msgspec.structs.replace(problem, vehicles=kept), seed, config)

    # Phase 2, the metaheuristic; then fleet reduction (phase 3) and a hinted restart from the
    # best routes (phase 4, which makes up for the search time phase 3 took) get their shares.
    ils = config.metaheuristic == "ITERATED_LOCAL_SEARCH"
    shares = (config.fleet_reduction_share, config.polish_share) if ils else (0.0, 0.0)
    search_s = max(0.001, deadline - time.monotonic())
    limits = _split(solution_limit, shares)
    routes = model.search(config, search_s * (1 - sum(shares)), limits[0])
    if routes is None or _dropped(problem, routes):
        routes = fallback
    if shares[0] > 0 and routes is not None:
        fewer = _restart_from(problem, routes, config, seed, search_s * shares[0], limits[1], True)
        if fewer is not None:
            routes = fewer
    if shares[1] > 0 and routes is not None:
        remaining_s = max(0.001, deadline - time.monotonic())
        polished = _restart_from(problem, routes, config, seed, remaining_s, limits[2], False)
        if polished is not None and _travel(problem, polished) < _travel(problem, routes):
            routes = polished
    if routes is None:
        raise NoSolutionError(
            f"{problem.name or 'problem'}: no plan serving every task found in "
            f"{time_limit_s} s (OR-Tools status {model.routing.status()})"
        )
    return make_plan(problem, routes)


def _dropped(problem: Problem, routes: list[tuple[int, list[int]]]) -> bool:
    return sum(len(ids) for _, ids in routes) < len(problem.tasks)


def _split(limit: int | None, shares: tuple[float, float]) -> list[int | None]:
    """A solution limit split like the time budget: the search, then the two restarts."""
    if limit is None:
        return [None, None, None]
    parts = [max(1, round(limit * share)) for share in shares]
    return [max(1, limit - sum(parts)), *parts]


def _travel(problem: Problem, routes: list[tuple[int, list[int]]]) -> int:
    return make_plan(problem, routes).travel_s


def _restart_from(
    problem: Problem,
    routes: list[tuple[int, list[int]]],
    config: SolverConfig,
    seed: int,
    time_limit_s: float,
    solution_limit: int | None,
    drop_shortest: bool,
) -> list[tuple[int, list[int]]] | None:
    """A new search started from `routes` (OR-Tools' first-solution hint) on their vehicles;
    None if it left some task out.

    With `drop_shortest`, route minimisation in the manner of SISR's fleet phase: the search
    alone removes the last vehicle or two only slowly (a route disappears when one ruin
    empties it), so the route with fewest tasks goes outright, with its vehicle, and the search
    re-inserts its tasks. A vehicle carrying bound tasks is never dropped.
    """
    used = [(vehicle_id, ids) for vehicle_id, ids in routes if ids]
    if drop_shortest:
        bound = {t.vehicle_id for t in problem.tasks if t.vehicle_id is not None}
        candidates = [r for r in used if r[0] not in bound]
        if len(used) < 2 or not candidates:
            return None
        dropped_vehicle = min(candidates, key=lambda r: len(r[1]))[0]
        used = [r for r in used if r[0] != dropped_vehicle]
    kept_ids = {vehicle_id for vehicle_id, _ in used}
    fleet = tuple(v for v in problem.vehicles if v.id in kept_ids)
    model = _Model(msgspec.structs.replace(problem, vehicles=fleet), seed, config)
    found = model.search(config, time_limit_s, solution_limit, hint=used)
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
    # Pure ruin-and-recreate: a local-search descent after every perturbation costs more
    # iterations than it gains within seconds-long budgets (measured, routing-notes.md).
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
            node_of = {t.id: node for node, t in enumerate(self.tasks)}
            ids_of = dict(hint)
            indices = [
                [self.manager.NodeToIndex(node_of[i]) for i in ids_of.get(v.id, [])]
                for v in self.problem.vehicles
            ]
            self.routing.CloseModelWithParameters(params)
            # The hint must outlive the search: keep a reference on the model.
            self._hint = self.routing.ReadAssignmentFromRoutes(indices, True)
            if self._hint is None:
                return None
            self.routing.SetFirstSolutionHint(self._hint)
        if params.use_iterated_local_search:
            assignment = self.routing.SolveWithIteratedLocalSearch(params)
        else:
            assignment = self.routing.SolveWithParameters(params)
        return self.routes(assignment) if assignment is not None else None

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
