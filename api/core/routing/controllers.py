"""POST /api/v1/routing/optimize: couriers and orders in lat/lng → routes with per-stop ETAs.

The HTTP shape is translated to the pure `routing` model (locations, an integer travel-time
matrix from the travel model, pickup/drop-off pairs with windows) and solved by OR-Tools in a
worker process: the OR-Tools binding holds the GIL for the whole search, so a thread would
stall the event loop (docs/adr/0017-solver-process-pool.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import Body

from api.auth import STAFF, roles
from api.core.routing.pool import SolverBusyError, SolverPool
from api.problems import Problem as HttpProblem
from geo.distance import haversine_matrix_m
from geo.travel import HaversineTravelModel, Vehicle
from routing.model import Pair, Problem, Task
from routing.model import Vehicle as RoutingVehicle
from routing.solver import InfeasibleProblemError, NoSolutionError, solve

MAX_ORDERS = 100
MAX_COURIERS = 50
MAX_TIME_LIMIT_S = 10.0
SERVICE_S = 120

Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lng = Annotated[float, msgspec.Meta(ge=-180, le=180)]


class Point(msgspec.Struct, frozen=True):
    lat: Lat
    lng: Lng


class CourierIn(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lat: Lat
    lng: Lng
    vehicle: Literal["bike", "scooter", "car"] = "bike"
    capacity: Annotated[int, msgspec.Meta(ge=1, le=50)] = 4


class OrderIn(msgspec.Struct, frozen=True, kw_only=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    pickup: Point
    dropoff: Point
    ready_at: int | None = None
    """Epoch ms UTC the food is ready (pickup not before); default now."""
    deliver_by: int | None = None
    """Epoch ms UTC the drop-off must happen by; default no deadline."""


class OptimizeRequest(msgspec.Struct, frozen=True, kw_only=True):
    couriers: list[CourierIn]
    orders: list[OrderIn]
    time_limit_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_TIME_LIMIT_S)] = 1.0
    seed: int = 0


class StopOut(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    kind: Literal["pickup", "dropoff"]
    lat: float
    lng: float
    eta: int
    """Epoch ms UTC of arrival."""
    eta_s: int
    """Seconds from the request to arrival."""
    wait_s: int
    """Seconds waiting at the stop before service can start (food not ready yet)."""


class RouteOut(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    stops: list[StopOut]
    travel_s: int


class OptimizeResponse(msgspec.Struct, frozen=True, kw_only=True):
    routes: list[RouteOut]
    couriers_used: int
    solve_ms: int


def build_problem(req: OptimizeRequest, now_ms: int) -> tuple[Problem, list[tuple[str, str]]]:
    """The routing model of a request; task i's (order_id, kind) is returned alongside."""
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
    # One matrix per problem: use the slowest vehicle present, so promised times are safe.
    model = HaversineTravelModel()
    speed = min(model.speeds_mps[Vehicle(c.vehicle)] for c in req.couriers)
    travel_s = np.ceil(dist_m * model.circuity / speed).astype(np.int64)
    vehicles = tuple(RoutingVehicle(id=i, start=i, capacity=c.capacity)
                     for i, c in enumerate(req.couriers))
    problem = Problem(travel_s=travel_s, dist=dist_m, tasks=tuple(tasks), pairs=tuple(pairs),
                      vehicles=vehicles, name="optimize")
    return problem, meta


async def _client_gone(request: Request[Any, Any, Any]) -> None:
    """Returns when the client disconnects (the body is read: `receive` has nothing else)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@post("/api/v1/routing/optimize", guards=[roles(*STAFF)], status_code=200,
      summary="Optimal routes (pickup before drop-off, windows, capacity) with per-stop ETAs")
async def optimize(state: State, request: Request[Any, Any, Any],
                   data: Annotated[OptimizeRequest, Body()]) -> OptimizeResponse:
    if not data.couriers or not data.orders:
        raise HttpProblem(422, "need at least one courier and one order", code="empty")
    if len(data.orders) > MAX_ORDERS or len(data.couriers) > MAX_COURIERS:
        raise HttpProblem(413, f"at most {MAX_ORDERS} orders and {MAX_COURIERS} couriers per "
                          "request", code="too_large")
    if len({o.order_id for o in data.orders}) != len(data.orders):
        raise HttpProblem(422, "order_id values must be unique", code="duplicate_order")
    now_ms = time.time_ns() // 1_000_000
    problem, meta = build_problem(data, now_ms)
    started = time.perf_counter()
    solvers: SolverPool = state.solver_pool
    try:
        # A process, not a thread: OR-Tools holds the GIL for the whole search.
        solving = solvers.submit(data.time_limit_s, solve, problem, data.time_limit_s,
                                 data.seed)
    except SolverBusyError as exc:
        raise HttpProblem(429, f"the route solver is busy: {exc}", code="solver_busy",
                          headers={"Retry-After": str(exc.retry_after_s)},
                          extra={"retry_after_s": exc.retry_after_s}) from None
    gone: asyncio.Future[Any] = asyncio.ensure_future(_client_gone(request))
    racing: list[asyncio.Future[Any]] = [solving, gone]
    try:
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not solving.done():
        # Nobody is waiting for the answer: a solve still queued never starts (one already
        # running cannot be stopped; its seconds stay counted until it ends).
        solving.cancel()
        solvers.outcomes.labels("abandoned").inc()
        raise HttpProblem(400, "the client disconnected before the solve finished",
                          code="client_gone")
    try:
        plan = solving.result()
    except (InfeasibleProblemError, NoSolutionError) as exc:
        solvers.outcomes.labels("infeasible").inc()
        raise HttpProblem(422, f"no feasible plan: {exc}", code="infeasible") from None
    solvers.outcomes.labels("solved").inc()
    solve_ms = round((time.perf_counter() - started) * 1000)
    points = {t.id: t.location for t in problem.tasks}
    lat_lng = [(c.lat, c.lng) for c in data.couriers]
    for o in data.orders:
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
        routes.append(RouteOut(courier_id=data.couriers[r.vehicle_id].courier_id, stops=stops,
                               travel_s=r.travel_s))
    return OptimizeResponse(routes=routes, couriers_used=plan.vehicles_used, solve_ms=solve_ms)
