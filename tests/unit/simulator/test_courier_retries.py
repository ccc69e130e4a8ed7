"""A simulated courier keeps an order through a lost status update (issue 5, busy-city run:
a ReadError on `delivered` under load made the courier drop an order it had on board, which
then stayed in core as picked up forever)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from api.simulator.agents import Behaviour, CourierAgent
from api.simulator.city import CourierSpec, Point
from api.simulator.clients import Account
from api.simulator.world import World
from dispatch.lifecycle import COURIER_REPORTS, OrderDispatchState
from geo.travel import HaversineTravelModel, Vehicle


class FlakyCore:
    """Core's status endpoint behind httpx's transport seam: it applies every PUT, but the
    first response is lost (the connection drops after the change, as a ReadError)."""

    def __init__(self, lose: int, down: bool = False) -> None:
        self.lose = lose
        self.down = down
        self.state = "assigned"
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        wanted = json.loads(request.content)["status"]
        self.calls.append(wanted)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if wanted not in COURIER_REPORTS.get(OrderDispatchState(self.state), set()):
            return httpx.Response(409, json={
                "detail": f"not allowed while the order is {self.state}",
                "code": "invalid_transition"})
        self.state = wanted
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("connection dropped after the change", request=request)
        return httpx.Response(200, json={"status": wanted})


def _agent(core: FlakyCore, attempts: int = 8) -> tuple[CourierAgent, World]:
    world = World()
    client = httpx.AsyncClient(transport=httpx.MockTransport(core), base_url="http://core")
    agent = CourierAgent(CourierSpec(index=7, vehicle=Vehicle.BIKE, start=Point(12.97, 77.59)),
                         client, client, "ws://unused", world,
                         Behaviour(progress_attempts=attempts, progress_retry_s=0.001), seed=1,
                         model=HaversineTravelModel())
    pair: dict[str, Any] = {"user": {"id": "c7", "role": "delivery"}, "access_token": "t",
                            "refresh_token": "r"}
    agent.account = Account(client, pair)
    return agent, world


def test_a_lost_response_to_an_applied_update_counts_as_done() -> None:
    """The update was applied but its response lost: the retry finds the order already in
    that state (409 "while the order is delivered") and the courier treats it as done."""
    core = FlakyCore(lose=1)
    agent, world = _agent(core)
    core.state = "delivering"
    r = asyncio.run(agent._progress("o1", "delivered"))
    assert r.status_code == 200
    assert core.state == "delivered"
    assert core.calls == ["delivered", "delivered"]
    assert any("retrying" in e for e in world.errors)


def test_a_real_refusal_is_not_mistaken_for_success() -> None:
    """A 409 for another state stays a 409 (the order is not where the courier thinks), with
    or without a lost attempt before it."""
    core = FlakyCore(lose=0)
    agent, _ = _agent(core)
    core.state = "assigned"
    assert asyncio.run(agent._progress("o1", "delivered")).status_code == 409
    core2 = FlakyCore(lose=1)
    agent2, _ = _agent(core2)
    core2.state = "assigned"
    assert asyncio.run(agent2._progress("o1", "picked_up")).status_code == 200  # retried
    core2.state = "assigned"  # taken back and assigned again meanwhile
    assert asyncio.run(agent2._progress("o1", "delivered")).status_code == 409


def test_an_order_already_in_the_state_counts_as_done() -> None:
    """The transport replays a PUT whose connection broke after sending (the agent never
    sees that attempt), so "not allowed while the order is picked_up" answering a
    picked_up report means an earlier attempt applied it: done."""
    core = FlakyCore(lose=0)
    agent, _ = _agent(core)
    core.state = "picked_up"
    assert asyncio.run(agent._progress("o1", "picked_up")).status_code == 200
    assert core.calls == ["picked_up"]


def test_giving_up_raises_after_the_attempts() -> None:
    """A core that cannot be reached: the error surfaces after `progress_attempts` tries."""
    core = FlakyCore(lose=0, down=True)
    agent, _ = _agent(core, attempts=3)
    core.state = "assigned"
    try:
        asyncio.run(agent._progress("o1", "picked_up"))
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("expected the ConnectError after 3 attempts")
    assert len(core.calls) == 3
