"""Immutable routing problem (PDPTW) and plan.

Locations are indices into two square matrices: `travel_s` (integer seconds, what time windows and
the solver use) and `dist` (float, what plans report; e.g. metres or Li & Lim units). All times
are integer seconds on one clock. A task is one stop; a `Pair` ties a pickup task to its delivery
task (same vehicle, pickup first). A task in no pair is a lone stop — typically a drop-off whose
food is already on board (`Vehicle.initial_load`, `Task.vehicle_id`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from routing.eta import route_eta

__all__ = [
    "NO_DEADLINE_S",
    "Pair",
    "Plan",
    "Problem",
    "ProblemError",
    "Route",
    "Stop",
    "Task",
    "Vehicle",
    "make_plan",
    "make_route",
]

# Far enough for any real shift (~34 years), small enough that sums stay exact in int64/float64.
NO_DEADLINE_S = 2**30
NO_CAPACITY_LIMIT = 2**30


class ProblemError(ValueError):
    """The problem data are inconsistent (bad index, unknown id, window ends before it opens...)."""


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """One stop: a pickup at a chef, a drop-off at a customer, or any lone visit.

    Service must *start* within `[ready_s, due_s]`; arriving early means waiting.
    `demand` is the load change: positive at a pickup, negative at a delivery.
    """

    id: int
    location: int
    demand: int = 0
    ready_s: int = 0
    due_s: int = NO_DEADLINE_S
    service_s: int = 0
    vehicle_id: int | None = None  # must be served by this vehicle (e.g. food already on board)


class Pair(msgspec.Struct, frozen=True, kw_only=True):
    """A pickup task and its delivery task: same vehicle, pickup first."""

    pickup_id: int
    delivery_id: int


class Vehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A courier: starts at `start` no earlier than `shift_start_s`, done by `shift_end_s`.

    With `end` set, the vehicle must reach `end` by `shift_end_s`; with `end=None` the route is
    open and the last service must finish by `shift_end_s`.
    """

    id: int
    start: int
    end: int | None = None
    shift_start_s: int = 0
    shift_end_s: int = NO_DEADLINE_S
    capacity: int = NO_CAPACITY_LIMIT
    initial_load: int = 0


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """A PDPTW instance. Validated and made read-only on construction (arrays are copied)."""

    travel_s: npt.NDArray[np.int64]
    dist: npt.NDArray[np.float64]
    tasks: tuple[Task, ...]
    pairs: tuple[Pair, ...]
    vehicles: tuple[Vehicle, ...]
    name: str = ""

    def __post_init__(self) -> None:
        travel_s = _read_only(np.asarray(self.travel_s), np.int64, "travel_s")
        dist = _read_only(np.asarray(self.dist), np.float64, "dist")
        # force_setattr: the only way to normalise fields of a frozen Struct in __post_init__.
        msgspec.structs.force_setattr(self, "travel_s", travel_s)
        msgspec.structs.force_setattr(self, "dist", dist)
        msgspec.structs.force_setattr(self, "tasks", tuple(self.tasks))
        msgspec.structs.force_setattr(self, "pairs", tuple(self.pairs))
        msgspec.structs.force_setattr(self, "vehicles", tuple(self.vehicles))
        _validate(self)

    @property
    def n_locations(self) -> int:
        return int(self.travel_s.shape[0])

    def task_by_id(self) -> dict[int, Task]:
        return {t.id: t for t in self.tasks}

    def vehicle_by_id(self) -> dict[int, Vehicle]:
        return {v.id: v for v in self.vehicles}


def _read_only(a: npt.NDArray[np.generic], dtype: type[np.generic], name: str) -> npt.NDArray:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ProblemError(f"{name} must be a square matrix, got shape {a.shape}")
    if dtype is np.int64 and not np.issubdtype(a.dtype, np.integer):
        raise ProblemError(f"{name} must hold integers, got {a.dtype}")
    out = np.array(a, dtype=dtype)  # copies: the caller may keep mutating its own array
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ProblemError(f"{name} must be finite and non-negative")
    out.flags.writeable = False
    return out


def _validate(p: Problem) -> None:
    n = p.n_locations
    if p.dist.shape != p.travel_s.shape:
        raise ProblemError(f"dist shape {p.dist.shape} != travel_s shape {p.travel_s.shape}")
    tasks = p.task_by_id()
    if len(tasks) != len(p.tasks):
        raise ProblemError("task ids must be unique")
    vehicles = p.vehicle_by_id()
    if len(vehicles) != len(p.vehicles):
        raise ProblemError("vehicle ids must be unique")
    if not p.vehicles:
        raise ProblemError("at least one vehicle is required")
    for t in p.tasks:
        if not 0 <= t.location < n:
            raise ProblemError(f"task {t.id}: location {t.location} outside 0..{n - 1}")
        if t.ready_s > t.due_s or t.service_s < 0:
            raise ProblemError(f"task {t.id}: window [{t.ready_s}, {t.due_s}] or service invalid")
        if t.vehicle_id is not None and t.vehicle_id not in vehicles:
            raise ProblemError(f"task {t.id}: unknown vehicle {t.vehicle_id}")
    for v in p.vehicles:
        for loc in (v.start, v.end):
            if loc is not None and not 0 <= loc < n:
                raise ProblemError(f"vehicle {v.id}: location {loc} outside 0..{n - 1}")
        if v.shift_start_s > v.shift_end_s:
            raise ProblemError(f"vehicle {v.id}: shift ends before it starts")
        if not 0 <= v.initial_load <= v.capacity:
            raise ProblemError(f"vehicle {v.id}: initial load outside [0, capacity]")
    paired: set[int] = set()
    for pair in p.pairs:
        pick, drop = tasks.get(pair.pickup_id), tasks.get(pair.delivery_id)
        if pick is None or drop is None:
            raise ProblemError(f"pair {pair}: unknown task id")
        if {pick.id, drop.id} & paired or pick.id == drop.id:
            raise ProblemError(f"pair {pair}: a task may belong to one pair only")
        paired.update((pick.id, drop.id))
        if pick.demand < 0 or drop.demand != -pick.demand:
            raise ProblemError(f"pair {pair}: delivery must unload what the pickup loads")
        if pick.vehicle_id != drop.vehicle_id:
            raise ProblemError(f"pair {pair}: pickup and delivery bound to different vehicles")


class Stop(msgspec.Struct, frozen=True, kw_only=True):
    """A visited task with its earliest schedule (service starts at `max(arrival, ready)`)."""

    task_id: int
    arrival_s: int
    start_s: int
    departure_s: int


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One vehicle's tour. `end_s` is the arrival at `Vehicle.end` (the last departure if open)."""

    vehicle_id: int
    stops: tuple[Stop, ...]
    depart_s: int
    end_s: int
    dist: float
    travel_s: int

    @property
    def task_ids(self) -> list[int]:
        return [s.task_id for s in self.stops]


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A solution: one non-empty route per used vehicle, with totals over all routes."""

    routes: tuple[Route, ...]
    vehicles_used: int
    dist: float
    travel_s: int


def make_route(problem: Problem, vehicle: Vehicle, task_ids: Sequence[int]) -> Route:
    """Route with the earliest schedule: leave at shift start, wait only for windows to open."""
    by_id = problem.task_by_id()
    tasks = [by_id[i] for i in task_ids]
    travel = problem.travel_s

    def travel_fn(a: int, b: int) -> int:
        return int(travel[a, b])

    etas = route_eta(tasks, vehicle.start, vehicle.shift_start_s, travel_fn)
    locations = [vehicle.start, *(t.location for t in tasks)]
    if vehicle.end is not None:
        locations.append(vehicle.end)
    legs_from, legs_to = locations[:-1], locations[1:]
    travel_total_s = int(travel[legs_from, legs_to].sum())
    dist = float(problem.dist[legs_from, legs_to].sum())
    last_s = int(etas[-1].departure_s) if etas else vehicle.shift_start_s
    last_loc = tasks[-1].location if tasks else vehicle.start
    end_s = last_s + int(travel[last_loc, vehicle.end]) if vehicle.end is not None else last_s
    stops = tuple(
        Stop(
            task_id=t.id,
            arrival_s=int(e.arrival_s),
            start_s=int(e.start_s),
            departure_s=int(e.departure_s),
        )
        for t, e in zip(tasks, etas, strict=True)
    )
    return Route(
        vehicle_id=vehicle.id,
        stops=stops,
        depart_s=vehicle.shift_start_s,
        end_s=end_s,
        dist=dist,
        travel_s=travel_total_s,
    )


def make_plan(problem: Problem, routes: Iterable[tuple[int, Sequence[int]]]) -> Plan:
    """Plan from `(vehicle_id, task ids in visiting order)`; empty routes are dropped."""
    vehicles = problem.vehicle_by_id()
    built = tuple(
        make_route(problem, vehicles[vehicle_id], task_ids)
        for vehicle_id, task_ids in routes
        if task_ids
    )
    return Plan(
        routes=built,
        vehicles_used=len(built),
        dist=float(sum(r.dist for r in built)),
        travel_s=sum(r.travel_s for r in built),
    )
