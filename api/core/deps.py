"""Providers that hand core's services to its controllers.

A handler parameter named like a key of `DEPENDENCIES` receives that service, as in commerce;
controllers never reach into ``app.state`` themselves.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from api.core.dispatch.service import Dispatcher
from api.core.fleet.services import FleetService
from api.core.gps.ingest import Ingest
from api.core.routing.pool import SolverPool
from api.core.routing.service import RoutingService
from api.core.services import CoreServices
from api.core.tracking.service import Tracking
from api.core.zones.cache import ZoneCache, changed_subject
from api.core.zones.services import ZoneService
from api.resources import Resources
from api.settings import Settings
from api.stores.live_index import LiveIndex


def provide_core(state: State) -> CoreServices:
    core: CoreServices = state.core
    return core


def provide_dispatcher(state: State) -> Dispatcher:
    return provide_core(state).dispatch


def provide_ingest(state: State) -> Ingest:
    return provide_core(state).ingest


def provide_couriers(state: State) -> LiveIndex:
    return provide_core(state).couriers


def provide_zones(state: State) -> ZoneCache:
    return provide_core(state).zones


def provide_tracking(state: State) -> Tracking:
    tracking: Tracking = state.tracking
    return tracking


def provide_solver_pool(state: State) -> SolverPool:
    pool: SolverPool = state.solver_pool
    return pool


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_fleet(state: State) -> FleetService:
    return FleetService(provide_core(state), provide_settings(state))


def provide_service_zones(state: State) -> ZoneService:
    res: Resources = state.resources
    return ZoneService(res.db, res.nats, provide_zones(state),
                       changed_subject(res.settings.server.namespace))


def provide_routing(state: State) -> RoutingService:
    return RoutingService(provide_solver_pool(state), travel=provide_core(state).travel.model)


DEPENDENCIES: dict[str, Any] = {
    "core": Provide(provide_core, sync_to_thread=False),
    "dispatcher": Provide(provide_dispatcher, sync_to_thread=False),
    "ingest": Provide(provide_ingest, sync_to_thread=False),
    "live_couriers": Provide(provide_couriers, sync_to_thread=False),
    "zones": Provide(provide_zones, sync_to_thread=False),
    "tracking": Provide(provide_tracking, sync_to_thread=False),
    "solver_pool": Provide(provide_solver_pool, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "fleet": Provide(provide_fleet, sync_to_thread=False),
    "service_zones": Provide(provide_service_zones, sync_to_thread=False),
    "routing": Provide(provide_routing, sync_to_thread=False),
}

# Handler parameter types: a parameter named like a key of DEPENDENCIES gets that service.
CoreDep = NamedDependency[CoreServices]
DispatcherDep = NamedDependency[Dispatcher]
IngestDep = NamedDependency[Ingest]
LiveCouriersDep = NamedDependency[LiveIndex]
ZonesDep = NamedDependency[ZoneCache]
TrackingDep = NamedDependency[Tracking]
SolverPoolDep = NamedDependency[SolverPool]
SettingsDep = NamedDependency[Settings]
FleetDep = NamedDependency[FleetService]
ServiceZonesDep = NamedDependency[ZoneService]
RoutingDep = NamedDependency[RoutingService]
