"""Route optimisation for staff: a request in lat/lng becomes the pure `routing` model
(locations, an integer travel-time matrix from the travel model, pickup/drop-off pairs with
windows), solved by OR-Tools in a worker process, and the plan comes back as routes with
per-stop ETAs.

The solve runs in a process, not a thread: the OR-Tools binding holds the GIL for the whole
search, so a thread would stall the event loop (docs/adr/0017-solver-process-pool.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from api.clock import Clock, wall_ms
from api.core.routing.pool import SolverBusyError, SolverPool
from api.core.routing.schemas import OptimizeRequest, OptimizeResponse, RouteOut, StopOut
from api.problems import Problem as HttpProblem
from geo.distance import haversine_matrix_m
from geo.travel import HaversineTravelModel, TravelModel, Vehicle
from routing.model import NO_DEADLINE_S, Pair, Plan, Problem, ProblemError, Task
from routing.model import Vehicle as RoutingVehicle
from routing.solver import InfeasibleProblemError, NoSolutionError, solve

MAX_ORDERS = 100
MAX_COURIERS = 50
SERVICE_S = 120
"""Seconds a courier spends at each stop (handing over, parking)."""


def check_request(req: OptimizeRequest) -> None:
    """What the request's types cannot say.

    Raises:
        HttpProblem: 422 without couriers or orders, or with a repeated order_id; 413 over
            MAX_ORDERS orders or MAX_COURIERS couriers.
    """
    if not req.couriers or not req.orders:
        raise HttpProblem(422, "need at least one courier and one order", code="empty")
    if len(req.orders) > MAX_ORDERS or len(req.couriers) > MAX_COURIERS:
        raise HttpProblem(413, f"at most {MAX_ORDERS} orders and {MAX_COURIERS} couriers per "
                          "request", code="too_large")
    if len({o.order_id for o in req.orders}) != len(req.orders):
        raise HttpProblem(422, "order_id values must be unique", code="duplicate_order")


def build_problem(req: OptimizeRequest, now_ms: int,
                  travel: TravelModel | None = None) -> tuple[Problem, list[tuple[str, str]]]:
    """The routing model of a request; task i's (order_id, kind) is returned alongside.
    Travel times come from `travel` (the process's model: roads or straight-line).

    Every time in the model lies in ``[0, NO_DEADLINE_S]`` (~34 years), so the solver's sums
    cannot overflow: a deliver_by beyond that horizon means "no deadline", a ready_at beyond
    it cannot be planned.

    Raises:
        HttpProblem: 422 ``window_in_past`` for an order whose deliver_by is in the past,
            ``window_too_far`` for a ready_at beyond the horizon, ``invalid_problem`` for
            anything else the routing model refuses (never a 500), ``unreachable`` for a
            stop the road network cannot connect to the couriers and the other stops.
    """
    travel = travel or HaversineTravelModel()
    points: list[tuple[float, float]] = [(c.lat, c.lng) for c in req.couriers]
    tasks: list[Task] = []
    pairs: list[Pair] = []
    meta: list[tuple[str, str]] = []
    for o in req.orders:
        ready_s = max(0, ((o.ready_at or now_ms) - now_ms) // 1000)
        due_s = None if o.deliver_by is None else (o.deliver_by - now_ms) // 1000
        if due_s is not None and due_s < 0:
            raise HttpProblem(422, f"order {o.order_id}: deliver_by is in the past",
                              code="window_in_past")
        if ready_s > NO_DEADLINE_S:
            raise HttpProblem(422, f"order {o.order_id}: ready_at is more than "
                              f"{NO_DEADLINE_S} s after now", code="window_too_far")
        if due_s is not None:
            due_s = min(due_s, NO_DEADLINE_S)
        pick_id, drop_id = len(tasks), len(tasks) + 1
        points += [(o.pickup.lat, o.pickup.lng), (o.dropoff.lat, o.dropoff.lng)]
        tasks.append(Task(id=pick_id, location=len(points) - 2, demand=1, ready_s=ready_s,
                          service_s=SERVICE_S))
        drop = Task(id=drop_id, location=len(points) - 1, demand=-1, service_s=SERVICE_S)
        if due_s is not None:
            drop = msgspec.structs.replace(drop, due_s=due_s)
        tasks.append(drop)
        pairs.append(Pair(pickup_id=pick_id, delivery_id=drop_id))
        meta += [(o.order_id, "pickup"), (o.order_id, "dropoff")]
    lat = np.array([p[0] for p in points])
    lng = np.array([p[1] for p in points])
    dist_m = haversine_matrix_m(lat, lng, lat, lng)
    # One matrix per problem: the slowest vehicle present on each leg, so promised times
    # are safe.
    vehicles_present = sorted({Vehicle(c.vehicle) for c in req.couriers})
    matrix = travel.travel_matrix_s(lat, lng, lat, lng, vehicles_present[0])
    for vehicle in vehicles_present[1:]:
        matrix = np.maximum(matrix, travel.travel_matrix_s(lat, lng, lat, lng, vehicle))
    _check_reachable(matrix, len(req.couriers), meta)
    # Legs into a courier's start are never ridden; bounded so the solver's sums stay safe.
    matrix = np.where(np.isfinite(matrix), matrix, NO_DEADLINE_S)
    travel_s = np.ceil(matrix).astype(np.int64)
    vehicles = tuple(RoutingVehicle(id=i, start=i, capacity=c.capacity)
                     for i, c in enumerate(req.couriers))
    try:
        problem = Problem(travel_s=travel_s, dist=dist_m, tasks=tuple(tasks),
                          pairs=tuple(pairs), vehicles=vehicles, name="optimize")
    except ProblemError as exc:  # what the checks above missed is still the request's fault
        raise HttpProblem(422, f"the request cannot be planned: {exc}",
                          code="invalid_problem") from None
    return problem, meta


def _check_reachable(matrix: npt.NDArray[np.float64], n_couriers: int,
                     meta: list[tuple[str, str]]) -> None:
    """Every leg a plan may ride (from a courier or a stop to a stop) must be finite; legs
    into couriers' starts are never ridden. Raises 422 ``unreachable`` naming a stop."""
    legs = matrix[:, n_couriers:]
    if np.isfinite(legs).all():
        return
    stop = int(np.flatnonzero(~np.isfinite(legs).all(axis=0))[0])
    order_id, kind = meta[stop]
    raise HttpProblem(422, f"order {order_id}: the {kind} cannot be reached on the road "
                      "network from every courier and stop", code="unreachable")


class RoutingService:
    """Solves staff's route requests on the shared solver pool."""

    def __init__(self, solvers: SolverPool, clock: Clock = wall_ms,
                 travel: TravelModel | None = None) -> None:
        self.solvers = solvers
        self.clock = clock
        self.travel = travel or HaversineTravelModel()

    async def optimize(self, req: OptimizeRequest,
                       client_gone: Callable[[], Awaitable[Any]]) -> OptimizeResponse:
        """Routes for ``req``. ``client_gone()`` is awaited alongside the solve and returns
        if the client leaves first: then a solve still waiting in the pool never starts.

        Raises:
            HttpProblem: 4xx for a request that cannot be planned (see `check_request`,
                `build_problem`; 422 ``infeasible``), 429 ``solver_busy`` with Retry-After
                when the solve would wait over the pool's max_wait_s, 400 ``client_gone``.
        """
        check_request(req)
        now_ms = self.clock()
        problem, meta = build_problem(req, now_ms, self.travel)
        started = time.perf_counter()
        try:
            solving = self.solvers.submit(req.time_limit_s, solve, problem, req.time_limit_s,
                                          req.seed)
        except SolverBusyError as exc:
            raise HttpProblem(429, f"the route solver is busy: {exc}", code="solver_busy",
                              headers={"Retry-After": str(exc.retry_after_s)},
                              extra={"retry_after_s": exc.retry_after_s}) from None
        gone: asyncio.Future[Any] = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait([solving, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not solving.done():
            # Nobody is waiting for the answer: a solve still queued never starts (one
            # already running cannot be stopped; its seconds stay counted until it ends).
            solving.cancel()
            self.solvers.outcomes.labels("abandoned").inc()
            raise HttpProblem(400, "the client disconnected before the solve finished",
                              code="client_gone")
        try:
            plan = solving.result()
        except (InfeasibleProblemError, NoSolutionError) as exc:
            self.solvers.outcomes.labels("infeasible").inc()
            raise HttpProblem(422, f"no feasible plan: {exc}", code="infeasible") from None
        self.solvers.outcomes.labels("solved").inc()
        solve_ms = round((time.perf_counter() - started) * 1000)
        return _response(req, problem, meta, plan, now_ms, solve_ms)


def _response(req: OptimizeRequest, problem: Problem, meta: list[tuple[str, str]],
              plan: Plan, now_ms: int, solve_ms: int) -> OptimizeResponse:
    points = {t.id: t.location for t in problem.tasks}
    lat_lng = [(c.lat, c.lng) for c in req.couriers]
    for o in req.orders:
        lat_lng += [(o.pickup.lat, o.pickup.lng), (o.dropoff.lat, o.dropoff.lng)]
    routes = []
    for r in plan.routes:
        stops = []
        for s in r.stops:
            order_id, kind = meta[s.task_id]
            la, ln = lat_lng[points[s.task_id]]
            stops.append(StopOut(order_id=order_id, kind=kind,  # type: ignore[arg-type]
                                 lat=la, lng=ln, eta=now_ms + s.arrival_s * 1000,
                                 eta_s=s.arrival_s, wait_s=max(0, s.start_s - s.arrival_s)))
        routes.append(RouteOut(courier_id=req.couriers[r.vehicle_id].courier_id, stops=stops,
                               travel_s=r.travel_s))
    return OptimizeResponse(routes=routes, couriers_used=plan.vehicles_used, solve_ms=solve_ms)
