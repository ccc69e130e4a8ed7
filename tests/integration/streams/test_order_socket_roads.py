"""With ROADS set, the customer's DELIVERY_LOCATION carries a road ETA (what the console's
order drawer shows too): a courier across Monaco's harbour from the drop-off is ~12 min
away by bike, not the straight line's ~1.5 min."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import websockets
from nats.aio.client import Client as NATS

from api.settings import Settings
from geo.travel import HaversineTravelModel, Vehicle
from streams.catalog import Names
from streams.jetstream import ensure_streams
from tests.conftest import BuiltRoads
from tests.integration.core.conftest import CoreServer, serve_core
from tests.integration.streams.conftest import Orders, projected, recv_type
from tests.integration.streams.test_order_socket import index_courier, order_url
from tests.monaco import HARBOUR_NORTH, HARBOUR_SOUTH, SAME_SIDE


@pytest.fixture(scope="module")
async def roads_core(settings: Settings, monaco_roads: BuiltRoads) -> AsyncIterator[CoreServer]:
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    async with serve_core(settings.replace(roads__path=monaco_roads.directory)) as srv:
        tracking = srv.app.state.tracking  # type: ignore[attr-defined]
        await asyncio.wait_for(tracking.hub.ready.wait(), 10)
        await asyncio.wait_for(tracking.couriers.ready.wait(), 10)
        yield srv


async def test_the_customer_eta_rides_round_the_harbour(roads_core: CoreServer, nc: NATS,
                                                        settings: Settings) -> None:
    names = Names(settings.server.namespace)
    await ensure_streams(nc.jetstream(), names)
    orders = Orders(nc.jetstream(), names)
    courier = f"cour-{uuid.uuid4().hex[:8]}"
    order_id, _ = await orders.create(pickup=SAME_SIDE, dropoff=HARBOUR_SOUTH)
    customer = orders.created(order_id).customer_id
    await orders.status(order_id, "accepted", previous="pending")
    await orders.assign(order_id, courier)
    await orders.status(order_id, "picked_up", previous="accepted")
    await index_courier(roads_core, courier, *HARBOUR_NORTH)
    await projected(roads_core, order_id, courier_id=courier, status="picked_up")

    async with websockets.connect(order_url(roads_core, order_id, customer, "customer")) as ws:
        location = await recv_type(ws, "DELIVERY_LOCATION")
    travel = roads_core.core.travel.model  # type: ignore[attr-defined]
    road_s = travel.travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    straight_s = HaversineTravelModel().travel_s(*HARBOUR_NORTH, *HARBOUR_SOUTH, Vehicle.BIKE)
    assert location["payload"]["eta_s"] == round(road_s)
    assert location["payload"]["eta_s"] > 5 * straight_s
