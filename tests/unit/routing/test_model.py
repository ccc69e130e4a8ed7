"""Problem construction validates its data and freezes its arrays."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from routing.model import Pair, Problem, ProblemError, Task, Vehicle, make_plan
from tests.unit.routing.builders import line_matrix


def _problem(**overrides: object) -> Problem:
    fields: dict[str, object] = {
        "travel_s": line_matrix([0, 10, 20]),
        "dist": line_matrix([0, 10, 20]).astype(float),
        "tasks": (Task(id=1, location=1, demand=2), Task(id=2, location=2, demand=-2)),
        "pairs": (Pair(pickup_id=1, delivery_id=2),),
        "vehicles": (Vehicle(id=0, start=0, end=0),),
    }
    fields.update(overrides)
    return Problem(**fields)  # type: ignore[arg-type]


def test_arrays_are_copied_and_read_only() -> None:
    """The problem owns read-only copies: later edits by the caller cannot change it."""
    travel = line_matrix([0, 10, 20])
    p = _problem(travel_s=travel)
    travel[0, 1] = 99
    assert p.travel_s[0, 1] == 10
    with pytest.raises(ValueError, match="read-only"):
        p.travel_s[0, 1] = 5


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"travel_s": np.zeros((3, 2), dtype=np.int64)}, "square"),
        ({"travel_s": np.zeros((3, 3))}, "integers"),
        ({"dist": np.zeros((2, 2))}, "shape"),
        ({"tasks": (Task(id=1, location=1, demand=2), Task(id=1, location=2))}, "unique"),
        ({"tasks": (Task(id=1, location=5, demand=2), Task(id=2, location=2))}, "outside"),
        ({"vehicles": ()}, "at least one vehicle"),
        ({"vehicles": (Vehicle(id=0, start=0, shift_start_s=9, shift_end_s=1),)}, "shift"),
        ({"pairs": (Pair(pickup_id=1, delivery_id=3),)}, "unknown task"),
        (
            {"tasks": (Task(id=1, location=1, demand=2), Task(id=2, location=2, demand=-1))},
            "unload",
        ),
        ({"tasks": (Task(id=1, location=1, ready_s=5, due_s=4), Task(id=2, location=2))}, "window"),
    ],
)
def test_rejects_inconsistent_data(overrides: dict[str, object], fragment: str) -> None:
    """Bad shapes, dtypes, ids, locations, windows or pairs raise ProblemError (a ValueError)."""
    with pytest.raises(ProblemError, match=fragment):
        _problem(**overrides)


def test_plan_totals_sum_routes() -> None:
    """A plan's distance, travel and vehicle count are the sums over its non-empty routes."""
    p = _problem(vehicles=(Vehicle(id=0, start=0, end=0), Vehicle(id=1, start=0, end=0)))
    plan = make_plan(p, [(0, [1, 2]), (1, [])])
    assert (plan.vehicles_used, plan.travel_s, plan.dist) == (1, 40, 40.0)
    assert plan.routes[0].task_ids == [1, 2]


def test_open_route_ends_at_last_departure() -> None:
    """Without an end location the route ends when the last service is done."""
    tasks = (Task(id=1, location=1, demand=2, service_s=3), Task(id=2, location=2, demand=-2))
    p = _problem(tasks=tasks, vehicles=(Vehicle(id=0, start=0, shift_start_s=100),))
    route = make_plan(p, [(0, [1, 2])]).routes[0]
    assert (route.depart_s, route.end_s, route.travel_s) == (100, 123, 20)


def test_problem_and_plan_pickle() -> None:
    """Problem and Plan cross a process boundary intact (solve runs in a process pool)."""
    p = _problem()
    q = pickle.loads(pickle.dumps(p))
    assert q.tasks == p.tasks
    assert (q.travel_s == p.travel_s).all()
    assert not q.travel_s.flags.writeable
    plan = make_plan(p, [(0, [1, 2])])
    assert pickle.loads(pickle.dumps(plan)) == plan
