"""Rebuild of core's live state after Redis lost it (restarted empty, failed over, flushed).

Redis holds a projection; the record is the JetStream ORDERS stream (commerce's orders, fed
by its transactional outbox) and the DISPATCH stream (core's dispatch.* events, fed by the
dispatch outbox), both kept 7 days (docs/architecture.md, "What is authoritative where").

Detection: the dispatch store keeps a generation id under ``<ns>:{d}:gen``, set once when the
state is (re)built. The dispatcher asks `Rebuilder.ensure` at the start of every loop (one
GET); when the key is missing, the process holding the rebuild lease replays both streams
and writes back, for every order that is open:

- its read model (the orders view), through the view's own idempotent applier;
- its dispatch order: waiting again (an offer in flight is dropped: the order is offered
  anew) or, when the DISPATCH stream says a courier holds it, assigned / picked up /
  delivering with that courier, whose state (to_pickup, delivering) follows from what it
  holds;

and, from core's PostgreSQL records (`DispatchRecords`, api/core/dispatch/records.py), the
couriers that declined each waiting order (with those the watchdog withdrew an order from,
from the DISPATCH stream) and every courier's last availability: idle or offline, and its
vehicle. Then it sets a new generation. Until then no process runs rounds. A courier with no
record (or every courier, when PostgreSQL cannot be read during the rebuild) comes back with
its first fix after the rebuild, which sets it idle again (`Reasserter`) unless it has a
dispatch state already (``offline`` included: only the courier sets that).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from api.core.dispatch.records import CourierAvailability, DispatchRecords
from api.core.dispatch.store import DispatchStore
from api.core.tracking.orders_view import OrdersView
from api.problems import outage_store
from dispatch.lifecycle import OrderDispatchState
from streams.catalog import DISPATCH, ORDERS, Names
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    DispatchEvent,
    OrderCreated,
    OrderDelivered,
    OrderDelivering,
    OrderEvent,
    OrderPickedUp,
    OrderStatusChanged,
    decode,
)
from streams.jetstream import fetch_batch

__all__ = ["OrderFold", "Reasserter", "Rebuilder", "fold_events"]

log = logging.getLogger("homechef.rebuild")

OPEN_STATUSES = frozenset({"accepted", "preparing", "ready", "picked_up", "delivering"})
"""Commerce statuses of an order dispatch still has work for (paid, not closed)."""
_RECORDED = (OrderCreated, OrderStatusChanged, CourierAssigned, CourierUnassigned,
             OrderPickedUp, OrderDelivering, OrderDelivered)
_HELD = {CourierAssigned: OrderDispatchState.ASSIGNED,
         OrderPickedUp: OrderDispatchState.PICKED_UP,
         OrderDelivering: OrderDispatchState.DELIVERING}
STALLED = "stalled"
"""The reason of a `CourierUnassigned` the watchdog made (api/core/dispatch/service.py)."""
COURIERS_PER_PIPELINE = 500
"""Recorded couriers restored per Redis round trip (each a short script)."""
_MILESTONE = {CourierAssigned: "assigned_ms", OrderPickedUp: "picked_up_ms",
              OrderDelivering: "delivering_ms"}


@dataclass(slots=True)
class OrderFold:
    """What the record says of one order: its latest commerce status event, when its food
    was marked ready, and who holds it in which dispatch state (None: nobody)."""

    status: OrderStatusChanged | None = None
    ready_ms: int | None = None
    courier_id: str = ""
    held: OrderDispatchState | None = None
    delivered: bool = False
    milestones: dict[str, int] = field(default_factory=dict)
    withdrawn_from: set[str] = field(default_factory=set)
    """Couriers the watchdog took it back from: never offered it again."""
    events: list[tuple[OrderEvent | DispatchEvent, str, int]] = field(default_factory=list)
    """The order's events with their stream and sequence, for the read model."""

    @property
    def open(self) -> bool:
        """Dispatch still has work for it: paid, not closed, not delivered."""
        return (self.status is not None and self.status.status in OPEN_STATUSES
                and not self.delivered)


def fold_events(folds: dict[str, OrderFold], event: OrderEvent | DispatchEvent, stream: str,
                seq: int) -> None:
    """Fold one event (in its stream's order) into its order's `OrderFold`."""
    order_id = event.order_id
    f = folds.get(order_id)
    if f is None:
        f = folds[order_id] = OrderFold()
    f.events.append((event, stream, seq))
    if isinstance(event, OrderStatusChanged):
        f.status = event
        if event.status == "ready":
            f.ready_ms = event.at_ms
    elif isinstance(event, CourierAssigned | OrderPickedUp | OrderDelivering):
        if isinstance(event, CourierAssigned) or event.courier_id == f.courier_id:
            f.courier_id = event.courier_id
            f.held = _HELD[type(event)]
            f.milestones[_MILESTONE[type(event)]] = event.at_ms
    elif isinstance(event, CourierUnassigned):
        if event.reason == STALLED:
            f.withdrawn_from.add(event.courier_id)
        if event.courier_id == f.courier_id:
            f.courier_id, f.held, f.milestones = "", None, {}
    elif isinstance(event, OrderDelivered):
        f.delivered = True


async def replay(js: JetStreamContext, stream: str, subject: str, *, batch: int = 500,
                 wait_s: float = 1.0) -> AsyncIterator[Msg]:
    """Every message of `stream` on `subject`, from the first kept to the last one stored
    when the replay began (an ephemeral consumer, no acks)."""
    last = (await js.stream_info(stream)).state.last_seq
    if not last:
        return
    sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
        filter_subject=subject, inactive_threshold=30.0))
    try:
        while True:
            msgs = await fetch_batch(sub, batch, wait_s)
            if not msgs:
                return  # nothing more on this subject (the last stored may be another's)
            for m in msgs:
                yield m
            if msgs[-1].metadata.sequence.stream >= last:
                return
    finally:
        await sub.unsubscribe()


class Reasserter:
    """After a rebuild, the first accepted fix of each courier sets it idle again when the
    dispatch state does not know it (`DispatchStore.reassert`). `seen` is called by ingest
    for every accepted batch: one attribute test while not armed, one set lookup when."""

    def __init__(self, store: DispatchStore, clock: Callable[[], int],
                 max_pending: int = 1000) -> None:
        self.store = store
        self.clock = clock
        self.max_pending = max_pending
        self.armed = False
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self) -> None:
        """A rebuild happened: every courier may re-assert once more."""
        self._seen.clear()
        self.armed = True

    def seen(self, courier_id: str) -> None:
        if not self.armed or courier_id in self._seen or len(self._tasks) >= self.max_pending:
            return
        self._seen.add(courier_id)
        task = asyncio.get_running_loop().create_task(self._reassert(courier_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reassert(self, courier_id: str) -> None:
        try:
            if await self.store.reassert(courier_id, self.clock()):
                log.info("courier %s re-asserted after a rebuild: idle", courier_id)
        except Exception as exc:  # a later fix tries again
            self._seen.discard(courier_id)
            log.warning("re-assert of courier %s failed: %r", courier_id, exc)


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one rebuild restored."""

    events: int
    waiting: int
    held: int
    couriers: int
    seconds: float
    available: int = 0
    """Couriers set idle or offline again from their recorded availability."""
    declines: int = 0
    """Waiting orders given back the couriers that declined them."""
    records_read: bool = True
    """False: PostgreSQL could not be read; couriers come back with their next fix."""


class Rebuilder:
    """Keeps the dispatch state's generation: `ensure` before every dispatcher loop."""

    def __init__(self, *, store: DispatchStore, view: OrdersView,
                 enqueue: Callable[[OrderStatusChanged, int], Awaitable[bool]],
                 js: JetStreamContext, names: Names, rebuilds: Counter, clock: Callable[[], int],
                 records: DispatchRecords | None = None,
                 lease_ttl_ms: int = 30_000, concurrency: int = 64) -> None:
        self.store = store
        self.records = records
        self.view = OrdersView(view.redis, view.prefix)  # no listeners: the replay decides
        self.enqueue = enqueue
        self.js = js
        self.names = names
        self.rebuilds = rebuilds
        self.clock = clock
        self.lease_ttl_ms = lease_ttl_ms
        self.concurrency = concurrency
        """Orders written back at once (each a few Redis calls in order)."""
        self.holder = uuid.uuid4().hex
        self.known: str | None = None
        """The generation this process last saw (None: none yet)."""
        self.reasserter = Reasserter(store, clock)

    async def ensure(self) -> bool:
        """True when the dispatch state is current (dispatch may go on); False while another
        process rebuilds it. Rebuilds it here when it is lost and the lease is ours."""
        gen = await self.store.generation()
        if gen is not None:
            if gen != self.known:
                if self.known is not None:  # another process rebuilt after a loss
                    self.reasserter.arm()
                self.known = gen
            return True
        if not await self.store.hold_rebuild_lease(self.holder, self.lease_ttl_ms):
            return False
        report = await self.rebuild()
        lost = self.known is not None or report.events > 0
        """A state existed (this process saw it, or the streams hold events): it was lost."""
        if lost:
            self.reasserter.arm()
        self.known = await self.store.start_generation(uuid.uuid4().hex)
        if not lost:  # a new deployment (or namespace): nothing to rebuild
            log.info("dispatch state generation %s started", self.known)
            return True
        self.rebuilds.inc()
        log.warning("dispatch state rebuilt from the streams (generation %s): %d events, "
                    "%d orders waiting (%d with declines), %d held by %d couriers, "
                    "%d couriers back from their availability, in %.2f s", self.known,
                    report.events, report.waiting, report.declines, report.held,
                    report.couriers, report.available, report.seconds)
        if not report.records_read:
            log.warning("courier availability and declines not restored (PostgreSQL "
                        "unavailable): couriers come back with their next fix")
        return True

    async def rebuild(self) -> RebuildReport:
        """Replay ORDERS then DISPATCH and write back every open order (module docstring)."""
        started = time.monotonic()
        folds: dict[str, OrderFold] = {}
        events = 0
        for spec, subject in ((ORDERS, self.names.orders_all()),
                              (DISPATCH, self.names.dispatch_all())):
            stream = self.names.stream(spec)
            async for m in replay(self.js, stream, subject):
                try:
                    event = decode(m.data)
                except msgspec.DecodeError:
                    continue
                if not isinstance(event, _RECORDED):
                    continue
                events += 1
                fold_events(folds, event, m.metadata.stream, m.metadata.sequence.stream)
                if events % 5000 == 0:  # a week of events takes longer than the lease
                    await self.store.hold_rebuild_lease(self.holder, self.lease_ttl_ms)
            await self.store.hold_rebuild_lease(self.holder, self.lease_ttl_ms)
        open_orders = [(oid, f) for oid, f in folds.items() if f.open]
        held: list[str] = []
        for start in range(0, len(open_orders), self.concurrency):
            # Orders are independent: a chunk's go at once, each one's steps in order.
            chunk = open_orders[start:start + self.concurrency]
            results = await asyncio.gather(*(self._restore(oid, f) for oid, f in chunk))
            held += [f.courier_id for (_, f), ok in zip(chunk, results, strict=True) if ok]
            await self.store.hold_rebuild_lease(self.holder, self.lease_ttl_ms)
        waiting = [(oid, f) for oid, f in open_orders if f.held is None]
        recorded: dict[str, list[str]] = {}
        availability: list[CourierAvailability] = []
        records_read = True
        if self.records is not None:
            try:  # PostgreSQL down must not hold dispatch back: couriers re-assert instead
                recorded = await self.records.declines([oid for oid, _ in waiting])
                availability = await self.records.availabilities()
            except Exception as exc:
                if outage_store(exc) is None:
                    raise
                records_read = False
                log.warning("dispatch records unreadable during the rebuild: %r", exc)
        declines = await self._restore_declines(waiting, recorded)
        available = await self._restore_couriers(availability)
        return RebuildReport(events=events, waiting=len(open_orders) - len(held),
                             held=len(held), couriers=len(set(held)),
                             seconds=time.monotonic() - started, available=available,
                             declines=declines, records_read=records_read)

    async def _restore_declines(self, waiting: list[tuple[str, OrderFold]],
                                recorded: dict[str, list[str]]) -> int:
        """Each waiting order's declines: recorded ones and the couriers the watchdog took it
        back from. Returns how many orders have some."""
        declines = {oid: {*recorded.get(oid, ()), *f.withdrawn_from} for oid, f in waiting}
        items = [(oid, sorted(cs)) for oid, cs in declines.items() if cs]
        for start in range(0, len(items), self.concurrency):
            await asyncio.gather(*(self.store.restore_declines(oid, couriers)
                                   for oid, couriers in items[start:start + self.concurrency]))
        return len(items)

    async def _restore_couriers(self, availability: list[CourierAvailability]) -> int:
        """Every recorded courier's availability (after the holdings: a holder's state follows
        from what it holds). Returns how many couriers' states were set."""
        now_ms = self.clock()
        available = 0
        for start in range(0, len(availability), COURIERS_PER_PIPELINE):
            available += await self.store.restore_couriers(
                [(r.courier_id, r.online, r.vehicle)
                 for r in availability[start:start + COURIERS_PER_PIPELINE]], now_ms)
            await self.store.hold_rebuild_lease(self.holder, self.lease_ttl_ms)
        return available

    async def _restore(self, order_id: str, f: OrderFold) -> bool:
        """Write back one open order (view, queue, holder); True if a courier holds it."""
        for event, stream, seq in f.events:
            await self.view.apply(event, stream, seq)
        now_ms = self.clock()
        assert f.status is not None  # open
        await self.enqueue(f.status, now_ms)
        if f.ready_ms is not None:
            await self.store.food_ready(order_id, f.ready_ms, due_ms=now_ms)
        return f.held is not None and await self.store.restore_holding(
            order_id, f.courier_id, f.held, now_ms, f.milestones)
