"""POST /api/v1/routing/optimize with extreme numbers (found by fuzzing): every request is
answered — a plan, or a 4xx problem+json saying what is wrong — never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.core.conftest import CoreServer
from tests.integration.core.test_routing_api import request

U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1


def first_order(**fields: Any) -> Any:
    return lambda b: b["orders"][0].update(**fields)


# (case, change to a valid request, expected status or statuses)
CASES: list[tuple[str, Any, int | set[int]]] = [
    ("ready_at_i64_max", first_order(ready_at=I64_MAX, deliver_by=None), 422),
    ("ready_at_u64_max", first_order(ready_at=U64_MAX, deliver_by=None), 422),
    ("ready_at_beyond_u64", first_order(ready_at=U64_MAX + 1), 422),
    ("ready_at_far_deliver_by_farther", first_order(ready_at=I64_MAX - 1, deliver_by=I64_MAX),
     422),
    ("ready_at_after_deliver_by", lambda b: b["orders"][0].update(
        ready_at=b["orders"][0]["deliver_by"] + 60_000), 422),
    ("deliver_by_u64_max", first_order(deliver_by=U64_MAX), 200),
    ("deliver_by_i64_min", first_order(deliver_by=-(2**63)), 422),
    ("ready_at_i64_min", first_order(ready_at=-(2**63)), 200),
    ("seed_negative", lambda b: b.update(seed=-1), 400),
    ("seed_u64_max", lambda b: b.update(seed=U64_MAX), 200),
    ("capacity_huge", lambda b: b["couriers"][0].update(capacity=2**70), 400),
    ("capacity_negative", lambda b: b["couriers"][0].update(capacity=-(2**40)), 400),
    # A budget too small to search: whatever the first solution gives, or 422 infeasible.
    ("time_limit_denormal", lambda b: b.update(time_limit_s=5e-324), {200, 422}),
    ("time_limit_negative", lambda b: b.update(time_limit_s=-1e308), 400),
    ("coordinates_at_poles", lambda b: b["orders"][0].update(
        pickup={"lat": 90, "lng": 180}, dropoff={"lat": -90, "lng": -180}), 422),
    ("coordinates_beyond", lambda b: b["orders"][0].update(pickup={"lat": 90.000001,
                                                                   "lng": 0}), 400),
]


@pytest.mark.parametrize(("case", "mutate", "status"), CASES, ids=[c[0] for c in CASES])
async def test_extreme_numbers_are_answered_never_500(
        core_server: CoreServer, http: httpx.AsyncClient, case: str, mutate: Any,
        status: int | set[int]) -> None:
    """Extreme times, seeds, capacities, budgets and coordinates: a plan when the request
    makes sense (a deadline centuries away is no deadline), else a 4xx problem+json with a
    detail."""
    body = request(time_limit_s=0.2)
    mutate(body)
    r = await http.post("/api/v1/routing/optimize", json=body,
                        headers=core_server.auth("fm", "fleet_manager"))
    assert r.status_code in (status if isinstance(status, set) else {status}), r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
