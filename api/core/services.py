"""Core's long-lived services, bound to the process's connections at start-up."""

from __future__ import annotations

import functools
from typing import Any

from api.clock import wall_ms
from api.core.dispatch.rebuild import Rebuilder
from api.core.dispatch.records import DispatchRecords
from api.core.dispatch.service import Dispatcher, DispatchMetrics
from api.core.dispatch.store import DispatchStore
from api.core.fleet.names import CourierNames
from api.core.fleet.schemas import RepositionHints
from api.core.gps.indexer import Indexer
from api.core.gps.ingest import Ingest, IngestMetrics, LastFixCache
from api.core.gps.matcher import FleetMatcher
from api.core.tracking.orders_view import OrdersView
from api.core.zones.cache import ZoneCache
from api.observability import Metrics
from api.resources import Resources
from api.settings import Settings
from api.stores.live_index import LiveIndex
from api.travel import open_travel
from roads.tiles import StreetTiles
from streams.catalog import Names
from streams.jetstream import ensure_streams


class CoreServices:
    """Created with the app; ``bind`` wires them to the stores once the lifespan opens them."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.names = Names(settings.server.namespace)
        self.ingest_metrics = IngestMetrics(metrics)
        self.zones = ZoneCache()
        self.dispatch_metrics = DispatchMetrics(metrics)
        self.travel = open_travel(settings)
        """The process's one travel model (roads or straight-line), for every consumer."""
        self.streets = StreetTiles(self.travel.roads) if self.travel.roads else None
        """The road graph as map tiles (None without roads): the streets the maps draw."""
        self.matcher: FleetMatcher | None = None
        """Couriers' fixes matched to the roads (with ROADS and ROADS_MATCH), from bind."""
        self.recent_hints: tuple[int, RepositionHints] | None = None
        """The last repositioning hints computed and when (ms): every idle courier polls
        its own, and each poll would otherwise read every recent order again."""
        self._bound: dict[str, Any] = {}

    async def bind(self, res: Resources) -> None:
        await ensure_streams(res.js, self.names,
                             replicas=res.settings.stores.nats_stream_replicas)
        ns = self.settings.server.namespace
        self._bound["couriers"] = couriers = LiveIndex(res.redis, f"{ns}:geo")
        self._bound["chefs"] = LiveIndex(res.redis, f"{ns}:chefgeo")
        self._bound["orders"] = OrdersView(res.redis, f"{ns}:view")
        self._bound["courier_names"] = CourierNames(res.redis, f"{ns}:courier-names")
        self._bound["indexer"] = indexer = Indexer(
            res.js, self.names, couriers, self.ingest_metrics,
            batch=self.settings.ingest.indexer_batch,
            in_flight=self.settings.ingest.indexer_in_flight,
            rebuild_s=self.settings.ingest.index_rebuild_s,
        )
        self._bound["ingest"] = Ingest(
            res.nats, res.js, self.names, self.ingest_metrics,
            LastFixCache(couriers, capacity=self.settings.ingest.last_fix_cache_size),
            file_stored=indexer.offer,
            in_service_area=self.zones.in_service_area,
            flush_s=self.settings.ingest.flush_ms / 1000,
            publish_attempts=self.settings.ingest.publish_attempts,
            publish_timeout_s=self.settings.ingest.publish_timeout_s,
        )
        await self.zones.reload(res.db)
        dispatcher = Dispatcher(
            self.settings, self.names,
            DispatchStore(res.redis, ns, couriers.status_key), couriers, res.nats, res.js,
            self.dispatch_metrics, clock=wall_ms, travel=self.travel,
        )
        self._bound["dispatch"] = dispatcher
        if self.travel.roads is not None and self.settings.roads.match:
            self.matcher = FleetMatcher(self.names, self.travel.roads, self.settings.roads,
                                        dispatcher.store.vehicles)
        dispatcher.records = records = DispatchRecords(res.db, ns)
        dispatcher.view = self.orders
        self.orders.listeners.append(dispatcher.on_order_event)
        self.orders.gate = dispatcher.state_ready
        dispatcher.rebuilder = Rebuilder(
            store=dispatcher.store, view=self.orders, js=res.js,
            enqueue=functools.partial(dispatcher.enqueue, search=False),
            names=self.names, rebuilds=self.dispatch_metrics.rebuilds, clock=wall_ms,
            records=records)
        self.ingest.on_accepted = dispatcher.rebuilder.reasserter.seen

    def _get(self, name: str) -> Any:
        try:
            return self._bound[name]
        except KeyError:
            raise RuntimeError("core services used before start-up bound them") from None

    @property
    def couriers(self) -> LiveIndex:
        index: LiveIndex = self._get("couriers")
        return index

    @property
    def chefs(self) -> LiveIndex:
        index: LiveIndex = self._get("chefs")
        return index

    @property
    def orders(self) -> OrdersView:
        view: OrdersView = self._get("orders")
        return view

    @property
    def courier_names(self) -> CourierNames:
        names: CourierNames = self._get("courier_names")
        return names

    @property
    def dispatch(self) -> Dispatcher:
        dispatcher: Dispatcher = self._get("dispatch")
        return dispatcher

    @property
    def ingest(self) -> Ingest:
        ingest: Ingest = self._get("ingest")
        return ingest

    @property
    def indexer(self) -> Indexer:
        indexer: Indexer = self._get("indexer")
        return indexer
