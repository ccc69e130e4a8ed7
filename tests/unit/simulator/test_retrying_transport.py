"""The simulator's apps retry what an outage interrupts, and nothing else."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api.simulator.clients import REPLAYABLE, RetryingTransport


def _script(*steps: str) -> tuple[httpx.MockTransport, list[str]]:
    """A server answering each request with the next step: 'refused', 'dropped' (the
    connection broke after the request was sent), or an HTTP status."""
    seen: list[str] = []
    queue = list(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        seen.append(step)
        if step == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if step == "dropped":
            raise httpx.ReadError("connection dropped", request=request)
        headers = {"Retry-After": "0"} if step == "503" else {}
        return httpx.Response(int(step), json={"step": len(seen)}, headers=headers)

    return httpx.MockTransport(handle), seen


async def _send(transport: RetryingTransport, method: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.request(method, "/x", **kw)  # type: ignore[arg-type]


def _fast(inner: httpx.MockTransport, budget_s: float = 5.0) -> RetryingTransport:
    return RetryingTransport(inner, budget_s=budget_s, first_wait_s=0.001, max_wait_s=0.01)


def test_refused_and_unavailable_are_retried_for_any_method() -> None:
    inner, seen = _script("refused", "503", "201")
    transport = _fast(inner)
    r = asyncio.run(_send(transport, "POST", json={}))
    assert r.status_code == 201
    assert seen == ["refused", "503", "201"]
    assert transport.retries == 2


def test_a_lost_answer_is_replayed_only_when_replaying_is_safe() -> None:
    inner, seen = _script("dropped", "200")
    with pytest.raises(httpx.ReadError):
        asyncio.run(_send(_fast(inner), "POST", json={}))
    assert seen == ["dropped"]  # a plain POST may have been applied: not sent again
    for method, kw in (("PUT", {}), ("POST", {"headers": {"Idempotency-Key": "k"}}),
                       ("POST", {"extensions": REPLAYABLE})):
        inner, seen = _script("dropped", "200")
        assert asyncio.run(_send(_fast(inner), method, json={}, **kw)).status_code == 200
        assert seen == ["dropped", "200"], (method, kw)


def test_other_errors_are_returned_at_once() -> None:
    for status in ("409", "500", "404"):
        inner, seen = _script(status, "200")
        assert asyncio.run(_send(_fast(inner), "PUT", json={})).status_code == int(status)
        assert seen == [status]


def test_out_of_budget_the_last_outcome_is_given_back() -> None:
    inner, seen = _script("503")
    r = asyncio.run(_send(_fast(inner, budget_s=0.05), "GET"))
    assert r.status_code == 503
    assert r.json()["step"] == len(seen) > 1
    inner, _ = _script("refused")
    with pytest.raises(httpx.ConnectError):
        asyncio.run(_send(_fast(inner, budget_s=0.05), "GET"))
