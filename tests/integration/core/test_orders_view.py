"""Core's order projection in real Redis: events in, the hub's OrderTrack out, replays ignored."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from api.core.tracking.orders_view import OrdersView
from api.resources import connect_redis
from api.settings import Settings
from streams.events import (
    CourierAssigned,
    LatLng,
    OrderCreated,
    OrderEvent,
    OrderPickedUp,
    OrderStatusChanged,
)
from streams.tracking_hub import OrderTrack
from streams.wire import Point

PICKUP, DROPOFF = LatLng(12.97, 77.59), LatLng(12.99, 77.61)


@pytest.fixture
async def view(settings: Settings, run_id: str) -> AsyncIterator[OrdersView]:
    client = connect_redis(settings)
    try:
        yield OrdersView(client, f"{run_id}:ov-{secrets.token_hex(3)}")  # fresh per test
    finally:
        await client.aclose()


def created() -> OrderCreated:
    return OrderCreated(order_id="o-1", order_number="HC-1", customer_id="cust-1",
                        chef_id="chef-1", pickup=PICKUP, dropoff=DROPOFF, total_cents=1250,
                        created_at_ms=1_000)


def accepted(seq_ms: int) -> OrderStatusChanged:
    return OrderStatusChanged(order_id="o-1", order_number="HC-1", customer_id="cust-1",
                              chef_id="chef-1", status="accepted", previous_status="pending",
                              at_ms=seq_ms, pickup=PICKUP, dropoff=DROPOFF,
                              ready_at_ms=seq_ms + 600_000, promised_at_ms=seq_ms + 2_700_000)


async def test_events_project_into_an_order_track(view: OrdersView) -> None:
    heard: list[str] = []

    async def listener(event: OrderEvent | object) -> None:
        heard.append(type(event).__name__)

    view.listeners.append(listener)
    assert await view.get("o-1") is None
    assert await view.apply(created(), "ORDERS", 1)
    assert await view.apply(accepted(2_000), "ORDERS", 2)
    assert await view.apply(CourierAssigned(order_id="o-1", courier_id="c-9", offer_id="f-1",
                                            at_ms=3_000), "DISPATCH", 1)
    assert await view.apply(OrderPickedUp(order_id="o-1", courier_id="c-9", at_ms=4_000),
                            "DISPATCH", 2)
    assert await view.get("o-1") == OrderTrack(
        order_id="o-1", order_number="HC-1", customer_id="cust-1", chef_id="chef-1",
        status="picked_up", pickup=Point(12.97, 77.59), dropoff=Point(12.99, 77.61),
        ready_at_ms=602_000, promised_at_ms=2_702_000, courier_id="c-9", updated_ms=4_000)
    assert heard == ["OrderCreated", "OrderStatusChanged", "CourierAssigned", "OrderPickedUp"]


async def test_replayed_or_older_events_change_nothing(view: OrdersView) -> None:
    heard: list[object] = []

    async def listener(event: object) -> None:
        heard.append(event)

    view.listeners.append(listener)
    assert await view.apply(accepted(5_000), "ORDERS", 7)
    before = await view.get("o-1")
    # The same sequence again, and an older one with other content: both skipped, unheard.
    assert not await view.apply(accepted(5_000), "ORDERS", 7)
    assert not await view.apply(accepted(9_000), "ORDERS", 6)
    assert await view.get("o-1") == before
    assert len(heard) == 1
    # Sequences are per stream: DISPATCH's first event still applies.
    assert await view.apply(CourierAssigned(order_id="o-1", courier_id="c-2", offer_id="f-2",
                                            at_ms=6_000), "DISPATCH", 1)
    after = await view.get("o-1")
    assert after is not None
    assert (after.courier_id, after.status) == ("c-2", "accepted")
