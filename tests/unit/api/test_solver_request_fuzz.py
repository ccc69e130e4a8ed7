"""Property: any request body, however extreme its numbers, is either refused as a 4xx or
becomes a routing model the solver can take — the request translation raises nothing else."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.routing.schemas import OptimizeRequest
from api.core.routing.service import build_problem, check_request
from api.problems import Problem as HttpProblem
from routing.model import NO_DEADLINE_S, Problem

NOW_MS = 1_700_000_000_000

EXTREME_INTS = st.sampled_from([0, 1, -1, 2**31, 2**53, 2**63 - 1, -(2**63), 2**64 - 1,
                                NOW_MS, NOW_MS + 1, NOW_MS - 1, NOW_MS + 2**30 * 1000,
                                NOW_MS + (2**30 + 1) * 1000])
ANY_INT = st.one_of(EXTREME_INTS, st.integers(min_value=-(2**64), max_value=2**64),
                    st.integers(min_value=NOW_MS - 10**10, max_value=NOW_MS + 10**13))
EXTREME_FLOATS = st.sampled_from([0.0, -0.0, 90.0, -90.0, 180.0, -180.0, 90.0000001,
                                  1e308, -1e308, 5e-324, float("inf")])
# Mostly values the types accept, so that most examples reach the translation.
COORD = st.one_of(st.floats(min_value=-90, max_value=90),
                  st.sampled_from([0.0, -0.0, 90.0, -90.0, 45.5]), EXTREME_FLOATS)
LNG = st.one_of(st.floats(min_value=-180, max_value=180), st.sampled_from([180.0, -180.0]))
TIME_LIMIT = st.one_of(st.sampled_from([5e-324, 1e-9, 10.0]),
                       st.floats(min_value=0, max_value=10, exclude_min=True), EXTREME_FLOATS)
CAPACITY = st.one_of(st.integers(min_value=1, max_value=50), ANY_INT)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def point() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"lat": COORD, "lng": LNG})


COURIER = st.fixed_dictionaries(
    {"courier_id": st.text(min_size=1, max_size=5), "lat": COORD, "lng": LNG},
    optional={"vehicle": st.sampled_from(["bike", "scooter", "car", "rocket"]),
              "capacity": CAPACITY},
)
ORDER = st.fixed_dictionaries(
    {"order_id": st.sampled_from(["a", "b", "c", "d", "e", "f"]), "pickup": point(),
     "dropoff": point()},
    optional={"ready_at": maybe(ANY_INT), "deliver_by": maybe(ANY_INT)},
)
BODY = st.fixed_dictionaries(
    {"couriers": st.lists(COURIER, min_size=1, max_size=3) | st.just([]),
     "orders": st.lists(ORDER, min_size=1, max_size=4, unique_by=lambda o: o["order_id"])
     | st.lists(ORDER, max_size=4)},
    optional={"time_limit_s": TIME_LIMIT, "seed": ANY_INT},
)


def translate(request: OptimizeRequest) -> tuple[Problem, list[tuple[str, str]]] | HttpProblem:
    """The model of ``request``, or the HTTP Problem the service refuses it with."""
    try:
        check_request(request)
        return build_problem(request, NOW_MS)
    except HttpProblem as refused:
        return refused


def assert_solvable(problem: Problem, request: OptimizeRequest) -> None:
    """What the solver relies on: times inside the horizon, real capacities, a seed numpy
    accepts, finite non-negative matrices (the model validated the rest on construction)."""
    for task in problem.tasks:
        assert 0 <= task.ready_s <= task.due_s <= NO_DEADLINE_S
    for vehicle in problem.vehicles:
        assert vehicle.capacity >= 1
    assert request.seed >= 0
    assert 0 < request.time_limit_s <= 10
    assert int(problem.travel_s.max()) < NO_DEADLINE_S


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=BODY)
def test_every_request_is_a_4xx_or_a_solvable_problem(body: dict[str, Any]) -> None:
    """Decoding refuses what the types forbid (a 400 at the edge); `check_request` and
    `build_problem` refuse the rest with an HTTP Problem 4xx; whatever passes is a valid model
    with every time in [0, NO_DEADLINE_S]. No other exception (ProblemError, ValueError,
    OverflowError...) can escape to become a 500."""
    try:
        request = msgspec.convert(body, OptimizeRequest)
    except msgspec.ValidationError:
        return
    outcome = translate(request)
    if isinstance(outcome, HttpProblem):
        assert 400 <= outcome.status_code < 500
        assert outcome.detail
        return
    problem, meta = outcome
    assert len(meta) == len(problem.tasks) == 2 * len(request.orders)
    assert_solvable(problem, request)
