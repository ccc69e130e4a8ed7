"""Core's HTTP and WebSocket edge: ingest, fleet, delivery, routing, tracking, console."""

from __future__ import annotations

import asyncio
import gc

from api.core.apps.controllers import HANDLERS as APP_HANDLERS
from api.core.deps import DEPENDENCIES
from api.core.dispatch.controllers import CourierDispatchController, FleetDispatchController
from api.core.dispatch.history import DispatchHistory
from api.core.dispatch.watchdog import Watchdog
from api.core.fleet.controllers import HANDLERS as FLEET_HANDLERS
from api.core.fleet.controllers import console_static
from api.core.gps.controllers import GpsController
from api.core.routing.controllers import RouteLegController, RoutingController
from api.core.routing.pool import SolverPool
from api.core.services import CoreServices
from api.core.tracking.controllers import TrackingController
from api.core.tracking.service import Tracking
from api.core.zones.cache import changed_subject
from api.core.zones.controllers import ZoneController
from api.observability import Metrics
from api.parts import Parts
from api.resources import Resources
from api.settings import Settings
from streams.catalog import DISPATCH, ORDERS
from streams.jetstream import consume_batches


def core_parts(settings: Settings, metrics: Metrics) -> Parts:
    """Everything core serves and runs besides /health and /metrics."""
    core = CoreServices(settings, metrics)
    solver_pool = SolverPool(max_wait_s=settings.routing.max_wait_s, metrics=metrics)
    tracking = Tracking(settings, core)

    async def freeze_heap(_: Resources) -> None:
        # Everything built at start-up (routes, schemas, h3/ortools modules) lives as long as
        # the process; frozen, it is no longer rescanned by full (gen-2) collections, which
        # stall every socket and the indexer (83-135 ms each under ingest load before, 25-53
        # ms after, measured with gc.callbacks; see docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        # Fewer, not longer, collections: with thousands of sockets (each a few tasks, an
        # outbox, Litestar objects) CPython's default thresholds (700, 10, 10) ran gen-0/1
        # collections hundreds of times a second and gen-2 ones of 0.5-1.6 s every few
        # seconds (2,000 subscribers, 2,000 fixes/s; measured with gc.callbacks): ~1/3 of
        # the process's CPU and its worst latencies. With these, that run saw no collection
        # at all in its measured window, and 10 % less CPU per fix
        # (docs/adr/0015-gc-freeze-and-thresholds.md).
        gc.set_threshold(20_000, 50, 100)

    async def flush_ingest(_: Resources) -> None:
        await core.ingest.close()  # coalesced socket fixes still pending
        await core.indexer.drain()  # and stored fixes not yet in the index

    async def close_travel(_: Resources) -> None:
        core.travel.close()

    async def run_indexer(_: Resources) -> None:
        await core.indexer.run()

    async def project_orders(res: Resources) -> None:
        # A task group, not gather: when one consumer fails (its batch is redelivered), the
        # other is cancelled too instead of running on beside the restarted pair.
        async with asyncio.TaskGroup() as group:
            for spec, subject in ((ORDERS, core.names.orders_all()),
                                  (DISPATCH, core.names.dispatch_all())):
                group.create_task(consume_batches(
                    res.js, stream=core.names.stream(spec),
                    durable=core.names.consumer(f"core-view-{spec.name.lower()}"),
                    filter_subject=subject, handler=core.orders.apply_msgs, batch=200))

    async def run_dispatcher(_: Resources) -> None:
        await core.dispatch.run()

    async def run_watchdog(_: Resources) -> None:
        await Watchdog(core.dispatch).run()  # a restart starts with nothing surfaced yet

    async def record_history(res: Resources) -> None:
        await consume_batches(res.js, stream=core.names.stream(DISPATCH),
                              durable=core.names.consumer("core-dispatch-history"),
                              filter_subject=core.names.dispatch_all(),
                              handler=DispatchHistory(res.db).apply_msgs, batch=200)

    async def match_fixes(res: Resources) -> None:
        if core.matcher is None:  # no road data, or ROADS_MATCH off: nothing to do
            await asyncio.Event().wait()
        else:
            await core.matcher.run(res.nats)

    async def follow_zones(res: Resources) -> None:
        await core.zones.follow(res, changed_subject(settings.server.namespace))

    return Parts(
        handlers=[GpsController, *FLEET_HANDLERS, ZoneController, RoutingController,
                  RouteLegController,
                  CourierDispatchController, FleetDispatchController, TrackingController,
                  console_static(), *APP_HANDLERS],
        startup=[core.bind, tracking.bind, freeze_heap],
        workers=[("indexer", run_indexer), ("zones", follow_zones),
                 ("orders-view", project_orders), ("dispatcher", run_dispatcher),
                 ("dispatch-watchdog", run_watchdog),
                 ("dispatch-history", record_history),
                 ("tracking-hub", tracking.run_hub), ("courier-hub", tracking.run_courier_hub),
                 ("console-states", tracking.follow_courier_states),
                 ("road-matcher", match_fixes)],
        state={"core": core, "tracking": tracking, "solver_pool": solver_pool,
               "travel": core.travel},
        shutdown=[flush_ingest, solver_pool.close, close_travel],
        dependencies=DEPENDENCIES,
    )
