"""Dispatch runtime: order intake, matching rounds per region under a lease, offers, expiry.

The decisions are pure (``dispatch.round`` plans a round with ``dispatch.costs``,
``dispatch.matching`` and ``dispatch.stacking``; ``dispatch.lifecycle``); this module gathers
their inputs from Redis (the courier search included), applies their outputs through the
atomic scripts of `DispatchStore`, pushes offers to couriers over NATS and publishes
dispatch.* events. Every time it stamps or compares comes from its injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import h3
import msgspec
import numpy as np
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from api.clock import wall_ms
from api.core.dispatch.rebuild import STALLED, Rebuilder
from api.core.dispatch.records import DispatchRecords
from api.core.dispatch.schemas import (
    Availability,
    CourierStatus,
    DispatchConfig,
    DispatchOrder,
    DispatchOrderList,
    Offer,
    OfferList,
)
from api.core.dispatch.store import (
    DispatchStore,
    OfferAction,
    OfferClaim,
    OrderRecord,
    Transition,
    TransitionResult,
)
from api.observability import Metrics
from api.settings import DispatchSettings, Settings
from api.stores.live_index import Hit, LiveIndex, NearbyMember, NearestFinder
from api.travel import Travel, straight_line_travel
from dispatch.brief import courier_job, job_legs
from dispatch.costs import CostParams, PairTravelModel
from dispatch.lifecycle import (
    ACTIVE_ORDER_STATES,
    CourierState,
    OfferState,
    OrderDispatchState,
    queue_entry_ms,
)
from dispatch.prep import PrepParams, predict_ready_ms, prep_ratio
from dispatch.reposition import RepositionParams
from dispatch.round import (
    HeldOrders,
    RoundCouriers,
    RoundInputs,
    RoundOrder,
    RoundParams,
    plan_round,
)
from dispatch.round import (
    Offer as PlannedOffer,
)
from dispatch.stall import OrderProgress, Stall, StallLimits, judge
from geo.cells import LIVE_RES, region_of, regions_near
from geo.distance import haversine_m
from geo.travel import TravelModel, Vehicle
from streams import wire
from streams.catalog import Names
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    DeliveryDetails,
    OrderDelivered,
    OrderDelivering,
    OrderEvent,
    OrderPickedUp,
    OrderStatusChanged,
    decode,
    encode,
)
from streams.jetstream import publish, raise_if_cancelling
from streams.wire import CourierJob, Point

if TYPE_CHECKING:
    from api.core.tracking.orders_view import OrdersView

log = logging.getLogger("homechef.dispatch")

INLINE_PUBLISH_TIMEOUT_S = 1.0
"""How long a request waits for JetStream's ack of its event before leaving it to the relay."""
LATE = "late"
"""The fleet listing's filter for open orders past their promise."""
STUCK = "stuck"
"""The fleet listing's filter for active orders the watchdog's rule finds stalled."""
FLEET_FILTERS = frozenset({s.value for s in ACTIVE_ORDER_STATES} | {LATE, STUCK})
"""What the fleet listing filters on: an active order state, `LATE` or `STUCK`."""
IDLE, TO_PICKUP = CourierState.IDLE.value, CourierState.TO_PICKUP.value
"""The courier statuses a round searches the live index for, as plain strings (compared
with every member's status of a snapshot)."""


class Refusal(StrEnum):
    """Why the dispatcher refused a courier's or a fleet manager's request."""

    NOT_FOUND = "not_found"
    """No such offer or order, or not the caller's."""
    NOT_ASSIGNED = "not_assigned"
    """The fleet reported progress on an order nobody holds (or that does not exist)."""
    OFFER_EXPIRED = "offer_expired"
    OFFER_CLOSED = "offer_closed"
    """Accepted, declined, expired or revoked already (``detail``)."""
    COURIER_BUSY = "courier_busy"
    """A force-assign to a courier that is not idle."""
    CANNOT_GO_OFFLINE = "cannot_go_offline"
    """The courier holds an offer or an order (``detail``: its state)."""
    INVALID_TRANSITION = "invalid_transition"
    """Not allowed while the order is ``detail``."""
    NO_POSITION = "no_position"
    """Delivered, but no GPS fix of the courier is known."""
    TOO_FAR = "too_far"
    """Delivered, but the last fix is ``dist_m`` from the drop-off (over ``within_m``)."""
    BAD_STATUS = "bad_status"
    """The fleet listing's filter is not one of ``detail``."""
    OTHER = "other"
    """A script answer no request expects (``detail``)."""


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    """A refused request: the `Refusal` and what explains it."""

    reason: Refusal
    detail: str = ""
    dist_m: float = 0.0
    within_m: float = 0.0


_REFUSALS = {
    TransitionResult.NO_OFFER: Refusal.NOT_FOUND, TransitionResult.NO_ORDER: Refusal.NOT_FOUND,
    TransitionResult.EXPIRED: Refusal.OFFER_EXPIRED,
    TransitionResult.NOT_OPEN: Refusal.OFFER_CLOSED,
    TransitionResult.COURIER_BUSY: Refusal.COURIER_BUSY,
    TransitionResult.ORDER_STATE: Refusal.INVALID_TRANSITION,
    TransitionResult.BAD_TRANSITION: Refusal.INVALID_TRANSITION,
    TransitionResult.BUSY: Refusal.CANNOT_GO_OFFLINE,
}


def refused(t: Transition) -> Refused:
    """The refusal a transition's answer means."""
    reason = _REFUSALS.get(t.result, Refusal.OTHER)
    return Refused(reason=reason, detail=t.result.value if reason is Refusal.OTHER else t.detail)


def order_view(o: OrderRecord, now_ms: int, job: CourierJob | None = None) -> DispatchOrder:
    """An order as the dispatch endpoints show it; late: past its promise, not delivered.
    ``job``: what its courier is shown of it (the courier's own list)."""
    return DispatchOrder(
        **(msgspec.structs.asdict(job) if job else {}),
        order_id=o.order_id, order_number=o.number, status=o.state.value,
        courier_id=o.courier_id, pickup=_latlng(o.pickup), dropoff=_latlng(o.dropoff),
        ready_at=o.ready_ms, promised_at=o.promised_ms,
        late=(o.promised_ms is not None and now_ms > o.promised_ms
              and o.state is not OrderDispatchState.DELIVERED),
        food_ready=o.food_ready_ms is not None, created_at=o.created_ms)


def _names(d: DeliveryDetails | None) -> CourierJob | None:
    """The chef's and the customer's names of an order's details, for the fleet's lists."""
    return CourierJob(chef_name=d.chef_name, customer_name=d.customer_name) if d else None


def _latlng(p: Point | None) -> dict[str, float]:
    """A point as the courier API's ``{"lat", "lng"}`` (0, 0 when unknown)."""
    return {"lat": p.lat, "lng": p.lng} if p else {"lat": 0.0, "lng": 0.0}


def _vehicle(raw: bytes | str | None) -> Vehicle:
    """A vehicle as the store holds it (bike when unknown, as everywhere in dispatch)."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        return Vehicle(text) if text else Vehicle.BIKE
    except ValueError:
        return Vehicle.BIKE


def _point(p: Point | None) -> Point:
    """A point of a courier message (0, 0 when unknown)."""
    return p if p is not None else Point(0.0, 0.0)


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    msg_id: str
    event: msgspec.Raw
    parked_ms: int = 0
    """When the row was written (epoch ms); 0 in rows of older builds."""


class PendingEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A dispatch.* event about to be recorded by a transition, and its outbox row."""

    subject: str
    msg_id: str
    event: Any
    row: bytes


_outbox_row = msgspec.json.Decoder(OutboxRow)


_encoder = msgspec.json.Encoder()


class DispatchMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.rounds = Counter("dispatch_rounds_total", "Matching rounds run", registry=r)
        self.round_seconds = Histogram("dispatch_round_seconds", "Matching round latency",
                                       registry=r, buckets=(.005, .01, .025, .05, .1, .25, .5,
                                                            1, 2.5))
        self.offers = Counter("dispatch_offers_total", "Offers sent", registry=r)
        self.offer_results = Counter("dispatch_offer_results_total", "Offers resolved",
                                     ["result"], registry=r)
        self.claims_lost = Counter("dispatch_claims_lost_total",
                                   "Claims refused because another round got there first",
                                   registry=r)
        self.stalled = Counter("dispatch_stalled_total",
                               "Stalled orders the watchdog acted on: withdrawn (and "
                               "re-dispatched) or surfaced, by reason", ["action", "reason"],
                               registry=r)
        self.stuck = Gauge("dispatch_stuck_orders",
                           "Active orders stalled at the watchdog's last sweep and left as "
                           "they are (0 in core processes not holding the watchdog lease)",
                           registry=r)
        self.rebuilds = Counter("dispatch_rebuilds_total",
                                "Dispatch states rebuilt from the streams after Redis lost "
                                "them (api/core/dispatch/rebuild.py)", registry=r)


def progress_of(o: OrderRecord, last_fix_ms: int | None) -> OrderProgress:
    """What the stall rule needs of an order: when it entered its state (waiting and
    offered: when it entered the queue), the food's ready mark, its courier's last fix."""
    since = {OrderDispatchState.ASSIGNED: o.assigned_ms,
             OrderDispatchState.PICKED_UP: o.picked_up_ms,
             OrderDispatchState.DELIVERING: o.delivering_ms}.get(o.state,
                                                                   o.enter_ms or o.created_ms)
    return OrderProgress(state=o.state, since_ms=since, food_ready_ms=o.food_ready_ms,
                         last_fix_ms=last_fix_ms)


def round_params(d: DispatchSettings, travel: TravelModel,
                 pairs: PairTravelModel | None = None) -> RoundParams:
    """How a round decides, from the settings: the one translation, used by `Dispatcher` and
    by the lab (`homechef lab`, bench.lab_day) so both run the same policy."""
    return RoundParams(
        policy="greedy" if d.policy == "greedy" else "optimal", candidates=d.candidates,
        max_stack=d.max_stack, unassigned_penalty_s=d.unassigned_penalty_s,
        costs=CostParams(late_added_only=d.late_added_only), travel=travel, pairs=pairs,
        commit_early_s=d.commit_early_s, stack_max_delay_s=d.stack_max_delay_s)


def prep_params(d: DispatchSettings) -> PrepParams | None:
    """Prep-time prediction's parameters when `DISPATCH_PREP_PREDICTION` is on."""
    return PrepParams(history=d.prep_history) if d.prep_prediction else None


def reposition_params(d: DispatchSettings) -> RepositionParams | None:
    """Repositioning hints' parameters when `DISPATCH_REPOSITION_HINTS` is on."""
    return RepositionParams() if d.reposition_hints else None


class Dispatcher:
    def __init__(self, settings: Settings, names: Names, store: DispatchStore,
                 couriers: LiveIndex, nats: NATS, js: JetStreamContext,
                 metrics: DispatchMetrics, clock: Callable[[], int] = wall_ms,
                 travel: Travel | None = None) -> None:
        self.settings = settings
        self.names = names
        self.store = store
        self.couriers = couriers
        self.nats = nats
        self.js = js
        self.metrics = metrics
        self.clock = clock
        """Epoch ms UTC, read for every timestamp the dispatcher stamps or compares."""
        self.rebuilder: Rebuilder | None = None
        """Checked before every loop (`run`): dispatch waits while the state is rebuilt."""
        self.records: DispatchRecords | None = None
        self.view: OrdersView | None = None
        """Where commerce's details of each order are (what couriers are shown; None: only
        points and times)."""
        """Availability and declines kept in PostgreSQL for a rebuild (None: not kept)."""
        self.worker_id = uuid.uuid4().hex
        travel = travel or straight_line_travel()
        self.model = travel.model
        """Travel times of queue entry and, through `round_params`, of the rounds."""
        self.delivered_within_m = settings.dispatch.delivered_within_m
        self.round_params = round_params(settings.dispatch, travel.model, travel.pairs)
        d = settings.dispatch
        self.prep = prep_params(d)
        """Prep-time prediction (`dispatch.prep`); None: the declared ready time is used."""
        self.stall_limits = StallLimits(no_fix_s=d.stall_no_fix_s,
                                        no_progress_s=d.stall_no_progress_s, stuck_s=d.stuck_s)

    # -- intake ----------------------------------------------------------------------------
    async def on_order_event(self, event: OrderEvent | Any) -> None:
        """OrdersView listener: accepted orders enter dispatch (or, when `accepted` was
        overtaken, preparing or ready ones it does not know); cancellations leave it; food
        ready brings a waiting order forward and reaches the courier on the way (ORDER_READY).

        Idempotent (a redelivered event may run it again: enqueue leaves an order it knows
        as it is, cancel and food-ready converge), and a store error propagates: the view
        then leaves the event unacked and unheard, so its redelivery runs this again."""
        if not isinstance(event, OrderStatusChanged):
            return
        now_ms = self.clock()
        if event.status in ("cancelled", "refunded"):
            result = await self.store.cancel(event.order_id, now_ms)
            if result.courier_id:
                await self._push(result.courier_id, wire.OfferWithdrawn(
                    payload=wire.OfferWithdrawnPayload(order_id=event.order_id,
                                                       reason=wire.WithdrawReason.CANCELLED)))
            return
        if event.status in ("preparing", "ready") and not await self.store.knows(
                event.order_id):
            # The `accepted` event was overtaken: core processes share the orders stream, and
            # one redelivered after a process died comes after newer ones. The view then
            # skips it as older, so the order enters dispatch on the event that overtook it.
            await self.enqueue(event, now_ms)
        if event.status == "ready":
            # The real ready time replaces the estimate; a waiting order queued for later
            # (the kitchen was early) is due now (the script applies
            # `entry_when_food_ready_ms` to the order's entry).
            courier_id = await self.store.food_ready(event.order_id, event.at_ms or now_ms,
                                                     due_ms=now_ms)
            if self.prep is not None:
                await self.learn_prep(event.order_id, event.at_ms or now_ms, self.prep)
            if courier_id:
                await self._push(courier_id, wire.OrderReady(payload=wire.OrderReadyPayload(
                    order_id=event.order_id, ready_at=event.at_ms or now_ms)))
            return
        if event.status != "accepted":
            return
        await self.enqueue(event, now_ms)

    async def enqueue(self, event: OrderStatusChanged, now_ms: int, *,
                      search: bool = True) -> bool:
        """The order enters dispatch, queued from when a nearby idle courier should set off
        (`queue_entry_ms`); without `search` (a rebuild: the index is being refilled, and a
        search of an empty one is the slowest there is) as if supply were short: at once."""
        lat, lng = event.pickup.lat, event.pickup.lng
        nearest: list[NearbyMember] = []
        if search:
            nearest, _ = await self.couriers.nearby(
                lat, lng, radius_m=self.settings.dispatch.radius_m, limit=1, now_ms=now_ms,
                stale_s=self.settings.ingest.courier_stale_s, statuses=[IDLE])
        travel_s = (self.model.travel_s(nearest[0].lat, nearest[0].lng, lat, lng, Vehicle.BIKE)
                    if nearest else None)  # None: supply is short, enter at once
        if travel_s is not None and not math.isfinite(travel_s):
            travel_s = None  # the road model cannot connect them: as if supply were short
        ready_ms = event.ready_at_ms
        accepted_ms = event.at_ms or now_ms  # the chef's acceptance, not our hearing of it
        if self.prep is not None and ready_ms is not None and event.chef_id:
            kitchen, city = await self.store.prep_history(event.chef_id)
            ready_ms = predict_ready_ms(accepted_ms=accepted_ms, declared_ready_ms=ready_ms,
                                        kitchen=kitchen, city=city, params=self.prep)
        enter_ms = queue_entry_ms(
            now_ms=now_ms, ready_at_ms=ready_ms, expected_travel_s=travel_s,
            scheduled_lead_s=(self.settings.dispatch.scheduled_lead_s
                              if event.scheduled_for_ms is not None else None))
        return await self.store.enqueue(
            event.order_id, region=region_of(lat, lng), enter_ms=enter_ms, now_ms=now_ms,
            pickup=Point(lat, lng), dropoff=Point(event.dropoff.lat, event.dropoff.lng),
            ready_ms=ready_ms or now_ms,
            declared=(accepted_ms, event.ready_at_ms)
            if self.prep is not None and event.ready_at_ms is not None else None,
            promised_ms=event.promised_at_ms
            or now_ms + round(self.settings.dispatch.default_promise_s * 1000),
            number=event.order_number, chef_id=event.chef_id)

    async def learn_prep(self, order_id: str, ready_ms: int, params: PrepParams) -> None:
        """The kitchen marked `order_id` ready at `ready_ms`: one more observation of its
        prep against what it declared (once per order)."""
        seen = await self.store.prep_observation(order_id)
        if seen is None:
            return
        chef, accepted_ms, declared_ms = seen
        ratio = prep_ratio(accepted_ms=accepted_ms, declared_ready_ms=declared_ms,
                           ready_ms=ready_ms, params=params)
        if ratio is not None:
            await self.store.add_prep(
                chef, ratio, history=params.history, city_history=params.city_history,
                ttl_ms=round(self.settings.dispatch.prep_history_ttl_s * 1000))

    # -- loops -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Every DISPATCH_ROUND_S: make sure the state is current (`Rebuilder.ensure`: one GET,
        a rebuild after Redis lost it), expire due offers, then run rounds of the regions we
        lease."""
        ttl_ms = round(self.settings.dispatch.lease_ttl_s * 1000)
        while True:
            raise_if_cancelling()
            started = time.monotonic()
            if self.rebuilder is not None and not await self.rebuilder.ensure():
                await asyncio.sleep(self.settings.dispatch.round_s)  # another process rebuilds
                continue
            await self.relay_outbox()
            await self.expire_due_offers()
            for region in await self.store.regions():
                if await self.store.hold_lease(region, self.worker_id, ttl_ms):
                    await self.run_round(region)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.settings.dispatch.round_s - elapsed))

    async def expire_due_offers(self) -> None:
        now_ms = self.clock()
        for offer_id in await self.store.due_offers(now_ms):
            t = await self.store.resolve(offer_id, OfferAction.EXPIRE, now_ms=now_ms)
            if t.result is TransitionResult.EXPIRED:
                self.metrics.offer_results.labels(t.result.value).inc()
                await self._push(t.courier_id, wire.OfferExpired(payload=wire.OfferExpiredPayload(
                    offer_id=offer_id, order_id=t.order_id)))

    async def run_round(self, region: str) -> int:
        """One matching round of a region (read, plan, claim, push); returns the number of
        offers sent."""
        started = time.perf_counter()
        now_ms = self.clock()
        # Due orders still waiting, with their declined couriers: one script, one reply.
        n_due, orders = await self.store.round_orders(
            region, now_ms, self.settings.dispatch.max_orders_per_round)
        if not n_due:
            await self.store.drop_region_if_empty(region)
            return 0
        if not orders:
            return 0
        inputs = await self.round_inputs(region, orders, now_ms)
        plan = plan_round(inputs, self.round_params)
        if not plan.n_couriers:
            return 0
        sent, lost = await self.make_offers(plan.offers, inputs.couriers)
        self.metrics.offers.inc(sent)
        self.metrics.claims_lost.inc(lost)
        self.metrics.rounds.inc()
        self.metrics.round_seconds.observe(time.perf_counter() - started)
        return sent

    async def round_inputs(self, region: str, orders: list[RoundOrder],
                           now_ms: int) -> RoundInputs:
        """What `plan_round` needs beyond the orders: the couriers found near them (`finder`)
        and, when stacking, the held orders of those heading to a chef — read (one script)
        while the idle couriers are searched here — and the vehicles the search did not
        bring (the live search brings none)."""
        finder = await self.finder(region, orders, now_ms)
        members = finder.members
        stack_read: asyncio.Future[list[HeldOrders]] | None = None
        to_pickup = None
        if self.settings.dispatch.max_stack >= 2:
            to_pickup, _ = finder.nearest(TO_PICKUP)
            stack_ids = [members.ids[c] for c in np.unique(to_pickup[to_pickup >= 0]).tolist()]
            if stack_ids:  # sorted: member indices order like ids
                stack_read = asyncio.ensure_future(self.store.stack_inputs(
                    stack_ids, self.settings.dispatch.max_stack))
        try:
            idle, _ = finder.nearest(IDLE)
            vehicles = members.attr
            missing = [c for c in np.unique(idle[idle >= 0]).tolist() if not vehicles[c]]
            if missing:
                vehicles = list(vehicles)
                infos = await self.store.couriers([members.ids[c] for c in missing])
                for c, info in zip(missing, infos, strict=True):
                    vehicles[c] = info.vehicle.value if info.vehicle else ""
            stacks = await stack_read if stack_read is not None else []
        finally:
            if stack_read is not None and not stack_read.done():
                stack_read.cancel()
        return RoundInputs(
            orders=orders, now_ms=now_ms, idle=idle, to_pickup=to_pickup,
            couriers=RoundCouriers(ids=members.ids, lat=members.lat, lng=members.lng,
                                   vehicle=vehicles),
            stacks=tuple(stacks))

    async def make_offers(self, offers: list[PlannedOffer],
                          couriers: RoundCouriers | None = None) -> tuple[int, int]:
        """Claim the offers (atomic scripts, CLAIMS_PER_CALL a call, sent at once) and push
        each one claimed to its courier as its call's reply arrives, while Redis runs the
        next calls. `couriers`: the round's table, whose positions and vehicles the offers'
        legs use (else read). Returns (offers sent, claims lost to another round)."""
        max_stack = self.round_params.max_stack  # the bound the plan stacked under
        claims = [OfferClaim(courier_id=o.courier_id, order_id=o.order_id, held=o.held,
                             max_stack=max_stack) if o.stacked
                  else OfferClaim(courier_id=o.courier_id, order_id=o.order_id)
                  for o in offers]
        jobs = await self._offer_jobs(offers, couriers)
        claim_ms = self.clock()  # the courier gets the full TTL from the claim on
        expires_ms = claim_ms + round(self.settings.dispatch.offer_ttl_s * 1000)
        done = sent = lost = 0
        inbox = self.names.courier_inbox
        async with contextlib.aclosing(self.store.offer_chunks(
                claims, now_ms=claim_ms, expires_ms=expires_ms)) as chunks:
            async for results in chunks:
                for o, (result, offer_id) in zip(offers[done:done + len(results)], results,
                                                 strict=True):
                    if result != "ok":
                        lost += 1
                        continue
                    sent += 1
                    message = wire.encode(wire.Offer(payload=wire.OfferPayload(
                        **msgspec.structs.asdict(jobs[o.order_id]),
                        offer_id=offer_id, order_id=o.order_id,
                        pickup=wire.Point(o.pickup_lat, o.pickup_lng),
                        dropoff=wire.Point(o.dropoff_lat, o.dropoff_lng),
                        ready_at=o.ready_ms, expires_at=expires_ms, stacked=o.stacked)))
                    try:  # as `_push`: best effort, the offer is in Redis
                        await self.nats.publish(inbox(o.courier_id), message)
                    except Exception:
                        raise_if_cancelling()
                done += len(results)
        return sent, lost

    async def finder(self, region: str, orders: list[RoundOrder],
                     now_ms: int) -> NearestFinder:
        """The round's candidate couriers per order: the nearest idle ones (K + declined)
        and, when stacking is on, the nearest heading to a chef (DISPATCH_STACK_CANDIDATES +
        declined), within DISPATCH_RADIUS_M, fresh per COURIER_STALE_S, nearest first.

        ``snapshot`` (default): one read of the region's couriers (and its neighbours'),
        with their vehicles, searched in memory; ``live``: `nearby_many` on the Redis index.
        Same answer."""
        k = self.settings.dispatch.candidates
        limits = {IDLE: [k + len(o.declined) for o in orders]}
        if self.settings.dispatch.max_stack >= 2:
            limits[TO_PICKUP] = [
                self.settings.dispatch.stack_candidates + len(o.declined) for o in orders]
        points = [(o.pickup_lat, o.pickup_lng) for o in orders]
        radius_m = self.settings.dispatch.radius_m
        stale_s = self.settings.ingest.courier_stale_s
        if self.settings.dispatch.search == "snapshot":
            return await self.couriers.nearest_finder(
                points, regions=regions_near(region, radius_m), radius_m=radius_m,
                limits=limits, now_ms=now_ms, stale_s=stale_s,
                attr=(f"{self.store.p}:c:", "vehicle"), attr_hash=self.store.vehicles_key,
                anchor=_region_anchor(region))
        out: dict[str, list[list[Hit]]] = {}
        for status, lim in limits.items():
            searches = await self.couriers.nearby_many(
                points, radius_m=radius_m, limit=lim, now_ms=now_ms, stale_s=stale_s,
                statuses=[status])
            out[status] = [[(m.member_id, m.lat, m.lng, m.dist_m, "") for m in members]
                           for members, _ in searches]
        return NearestFinder.from_hits(out, len(points))

    async def search(self, region: str, orders: list[RoundOrder],
                     now_ms: int) -> dict[str, list[list[Hit]]]:
        """`finder`'s candidates as hit lists (member id, lat, lng, distance, vehicle)."""
        finder = await self.finder(region, orders, now_ms)
        return {status: finder.hits(status) for status in
                ([IDLE, TO_PICKUP] if self.settings.dispatch.max_stack >= 2 else [IDLE])}

    # -- courier and fleet actions ---------------------------------------------------------
    async def open_offer(self, courier_id: str) -> wire.OfferPayload | None:
        """The courier's open, unexpired offer (a courier holds at most one at a time)."""
        courier = await self.store.courier(courier_id)
        if courier.offer_id is None:
            return None
        offer = await self.store.offer_info(courier.offer_id)
        if (offer is None or offer.state is not OfferState.OPEN
                or offer.courier_id != courier_id or offer.expires_ms <= self.clock()):
            return None
        order = await self.store.order(offer.order_id)
        (held,) = await self.store.held_orders([courier_id])
        job = (await self._jobs(courier_id, [order]))[order.order_id] if order else None
        return wire.OfferPayload(
            **(msgspec.structs.asdict(job) if job else {}),
            offer_id=offer.offer_id, order_id=offer.order_id,
            pickup=_point(order.pickup if order else None),
            dropoff=_point(order.dropoff if order else None),
            ready_at=order.ready_ms if order else None,
            expires_at=offer.expires_ms, stacked=bool(held))

    @staticmethod
    def offer_message(payload: wire.OfferPayload) -> bytes:
        """The OFFER message as pushed on the courier's socket."""
        return wire.encode(wire.Offer(payload=payload))

    async def rebuilding(self) -> bool:
        """The dispatch state this process has seen was lost and is not rebuilt yet (one GET;
        a first start, with no state yet, is not a loss: it starts empty at once)."""
        return (self.rebuilder is not None and self.rebuilder.known is not None
                and await self.store.generation() is None)

    async def state_ready(self, wait_s: float = 10.0) -> bool:
        """Wait (up to `wait_s`) until the dispatch state exists: after Redis lost it, events
        applied to the half-empty store before the rebuild has put the orders back would be
        lost (food ready for an order not restored yet) or would mask older ones in the
        orders view. False: still not there (the caller retries later)."""
        deadline = time.monotonic() + wait_s
        while self.rebuilder is not None and await self.store.generation() is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def offers(self, courier_id: str) -> OfferList:
        """The courier's open offer as a list (empty or one)."""
        o = await self.open_offer(courier_id)
        if o is None:
            return OfferList([])
        job = {f: getattr(o, f) for f in CourierJob.__struct_fields__}
        return OfferList([Offer(**job, offer_id=o.offer_id, order_id=o.order_id,
                                pickup=_latlng(o.pickup), dropoff=_latlng(o.dropoff),
                                ready_at=o.ready_at,
                                expires_at=o.expires_at)])

    async def set_availability(self, courier_id: str,
                               data: Availability) -> CourierStatus | Refused:
        """Go online (idle) or offline (refused while holding an offer or an order); a
        vehicle given replaces the one on file."""
        now_ms = self.clock()
        t = await self.store.set_availability(
            courier_id, online=data.online,
            vehicle=Vehicle(data.vehicle) if data.vehicle else None, now_ms=now_ms)
        if t.result is TransitionResult.BUSY:
            return refused(t)
        if self.records is not None:
            # Recorded once it took effect (a refused offline changes nothing); a failure is
            # a 503 and the client's retry, idempotent, records it.
            fix = await self.couriers.position(courier_id) if data.online else None
            await self.records.save_availability(
                courier_id, online=data.online, vehicle=data.vehicle or None, at_ms=now_ms,
                at=(fix.lat, fix.lng) if fix is not None else None)
        courier = await self.store.courier(courier_id)
        return CourierStatus(courier_id=courier_id, state=courier.state.value,
                             vehicle=courier.vehicle.value if courier.vehicle else None)

    async def accept(self, courier_id: str, offer_id: str) -> Transition | Refused:
        """Accept the courier's offer (its order is assigned to it); refused when it is not
        the courier's, closed, or expired (it then expires)."""
        now_ms = self.clock()
        offer = await self.store.offer_info(offer_id)
        event = self._assigned(offer.order_id, courier_id, offer_id, now_ms) if offer else None
        t = await self.store.resolve(offer_id, OfferAction.ACCEPT, courier_id=courier_id,
                                     now_ms=now_ms, event_row=event.row if event else b"",
                                     order_id=offer.order_id if offer else "")
        if t.result is TransitionResult.ACCEPTED:
            self.metrics.offer_results.labels(t.result.value).inc()
            if event is not None:  # an offer's order never changes: the row was recorded
                await self._publish(event)
            return t
        if t.result is TransitionResult.EXPIRED:
            self.metrics.offer_results.labels(t.result.value).inc()
        return refused(t)

    async def decline(self, courier_id: str, offer_id: str) -> Transition | Refused:
        """Decline the courier's offer: its order waits again, never offered to it again."""
        now_ms = self.clock()
        if self.records is not None:
            # Recorded first: a retried decline finds the offer closed, and nothing would
            # record it then. Recording a decline that is then refused (the offer expired
            # meanwhile) says what expiry says anyway: not this courier again.
            offer = await self.store.offer_info(offer_id)
            if offer is not None and offer.courier_id == courier_id:
                await self.records.save_decline(offer.order_id, courier_id, now_ms)
        t = await self.store.resolve(offer_id, OfferAction.DECLINE, courier_id=courier_id,
                                     now_ms=now_ms)
        if t.result is not TransitionResult.DECLINED:
            return refused(t)
        self.metrics.offer_results.labels(t.result.value).inc()
        return t

    async def courier_orders(self, courier_id: str) -> DispatchOrderList:
        """The orders the courier carries now (several when stacked)."""
        (held,) = await self.store.held_orders([courier_id])
        if not held:
            return DispatchOrderList([])
        orders = [o for o in await self.store.orders(held) if o.courier_id == courier_id]
        jobs = await self._jobs(courier_id, orders)
        now_ms = self.clock()
        return DispatchOrderList([order_view(o, now_ms, jobs[o.order_id]) for o in orders])

    async def _jobs(self, courier_id: str,
                    orders: list[OrderRecord]) -> dict[str, CourierJob]:
        """What the courier is shown of each of its orders or its offer: commerce's details
        and the legs from its last fix at its vehicle's speed."""
        details = await self.view.details([o.order_id for o in orders]) if self.view else {}
        position = await self.couriers.position(courier_id)
        courier = await self.store.courier(courier_id)
        here = Point(position.lat, position.lng) if position else None
        vehicle = courier.vehicle or Vehicle.BIKE
        return {o.order_id: courier_job(details.get(o.order_id), job_legs(
            here, _point(o.pickup), _point(o.dropoff),
            on_board=o.state in (OrderDispatchState.PICKED_UP, OrderDispatchState.DELIVERING),
            model=self.model, vehicle=vehicle)) for o in orders}

    async def _offer_jobs(self, offers: list[PlannedOffer],
                          couriers: RoundCouriers | None = None) -> dict[str, CourierJob]:
        """`_jobs` for a round's offers: one read of the details and, unless the round's
        courier table has them (the positions and vehicles it planned with), one each of the
        positions and the vehicles, for all of them."""
        if not offers:
            return {}
        ids = [o.courier_id for o in offers]
        details = await self.view.details([o.order_id for o in offers]) if self.view else {}
        here: list[Point | None]
        if couriers is not None:
            at = {c: i for i, c in enumerate(couriers.ids)}
            rows = [at[c] for c in ids]
            lats, lngs = couriers.lat[rows].tolist(), couriers.lng[rows].tolist()
            here = [Point(la, ln) for la, ln in zip(lats, lngs, strict=True)]
            vehicles: list[bytes | str | None] = [couriers.vehicle[i] for i in rows]
            unknown = [k for k, v in enumerate(vehicles) if not v]  # e.g. stacked couriers
            if unknown:
                read = await self.store.redis.hmget(self.store.vehicles_key,
                                                    [ids[k] for k in unknown])
                for k, v in zip(unknown, read, strict=True):
                    vehicles[k] = v
        else:
            here = [Point(p.lat, p.lng) if p else None
                    for p in await self.couriers.positions(ids)]
            vehicles = await self.store.redis.hmget(self.store.vehicles_key, ids)
        return {o.order_id: courier_job(details.get(o.order_id), job_legs(
            h, Point(o.pickup_lat, o.pickup_lng), Point(o.dropoff_lat, o.dropoff_lng),
            on_board=False, model=self.model, vehicle=_vehicle(v)))
            for o, h, v in zip(offers, here, vehicles, strict=True)}

    async def report(self, courier_id: str, order_id: str,
                     new: OrderDispatchState) -> DispatchOrder | Refused:
        """A courier reports progress on an order it holds. Delivered only near the door: its
        last fix within `delivered_within_m` of the drop-off."""
        order = await self.store.order(order_id)
        if order is None or order.courier_id != courier_id:
            return Refused(reason=Refusal.NOT_FOUND)
        if new is OrderDispatchState.DELIVERED:
            too_far = await self._away_from_door(courier_id, order)
            if too_far is not None:
                return too_far
        return await self._progressed(order_id, courier_id, new)

    async def _away_from_door(self, courier_id: str, order: OrderRecord) -> Refused | None:
        """Why the courier may not mark `order` delivered where it is (None: it may)."""
        pos = await self.couriers.position(courier_id)
        if pos is None:
            return Refused(reason=Refusal.NO_POSITION, within_m=self.delivered_within_m)
        door = order.dropoff or Point(0.0, 0.0)
        dist_m = haversine_m(pos.lat, pos.lng, door.lat, door.lng)
        if dist_m > self.delivered_within_m:
            return Refused(reason=Refusal.TOO_FAR, dist_m=dist_m,
                           within_m=self.delivered_within_m)
        return None

    async def fleet_orders(self, status: str | None) -> DispatchOrderList | Refused:
        """Dispatch orders in one active state (default waiting), or every late one (past
        its promise), by promised time then id."""
        wanted = status or OrderDispatchState.WAITING.value
        if wanted not in FLEET_FILTERS:
            return Refused(reason=Refusal.BAD_STATUS, detail=str(sorted(FLEET_FILTERS)))
        now_ms = self.clock()
        if wanted == STUCK:
            records = [o for o, _ in await self.stalled(now_ms)]
        else:
            states = (ACTIVE_ORDER_STATES if wanted == LATE
                      else (OrderDispatchState(wanted),))
            ids: list[str] = []
            for s in states:
                ids += await self.store.orders_in_state(s)
            records = await self.store.orders(ids)
        # The fleet sees whose order it is (chef, customer's first name), not the courier's
        # job details (addresses, phone, pay).
        details = await self.view.details([o.order_id for o in records]) if self.view else {}
        orders = [order_view(o, now_ms, _names(details.get(o.order_id))) for o in records]
        if wanted == LATE:
            orders = [o for o in orders if o.late]
        return DispatchOrderList(sorted(orders, key=lambda o: (o.promised_at or 0, o.order_id)))

    async def fleet_assign(self, order_id: str, courier_id: str) -> DispatchOrder | Refused:
        """`force_assign`, then the order as it is now."""
        t = await self.force_assign(order_id, courier_id)
        if t.result is not TransitionResult.ASSIGNED:
            return refused(t)
        return await self._order_now(order_id)

    async def fleet_unassign(self, order_id: str) -> DispatchOrder | Refused:
        """`unassign`, then the order as it is now."""
        t = await self.unassign(order_id)
        if t.result is not TransitionResult.UNASSIGNED:
            return refused(t)
        return await self._order_now(order_id)

    async def fleet_report(self, order_id: str,
                           new: OrderDispatchState) -> DispatchOrder | Refused:
        """A fleet manager records progress for the order's courier (no distance rule)."""
        order = await self.store.order(order_id)
        if order is None or order.courier_id is None:
            return Refused(reason=Refusal.NOT_ASSIGNED)
        return await self._progressed(order_id, order.courier_id, new)

    def config(self) -> DispatchConfig:
        s = self.settings
        return DispatchConfig(policy=s.dispatch.policy, round_s=s.dispatch.round_s,
                              offer_ttl_s=s.dispatch.offer_ttl_s, radius_m=s.dispatch.radius_m)

    async def _progressed(self, order_id: str, courier_id: str,
                          new: OrderDispatchState) -> DispatchOrder | Refused:
        t = await self.progress(order_id, courier_id, new)
        if t.result != new:
            return refused(t)
        return await self._order_now(order_id)

    async def _order_now(self, order_id: str) -> DispatchOrder:
        (order,) = await self.store.orders([order_id])
        return order_view(order, self.clock())

    async def force_assign(self, order_id: str, courier_id: str) -> Transition:
        now_ms = self.clock()
        event = self._assigned(order_id, courier_id, f"fleet-{uuid.uuid4().hex}", now_ms)
        t = await self.store.force_assign(order_id, courier_id, now_ms, event.row)
        if t.result is TransitionResult.ASSIGNED:
            await self._publish(event)
            order = await self.store.order(order_id)
            await self._push(courier_id, wire.OrderAssigned(payload=wire.OrderAssignedPayload(
                order_id=order_id, by=wire.AssignedBy.FLEET,
                pickup=_point(order.pickup if order else None),
                dropoff=_point(order.dropoff if order else None))))
        return t

    async def unassign(self, order_id: str) -> Transition:
        now_ms = self.clock()
        # The event names the courier, known only inside the script: read it first, and
        # record the event only if the script unassigned from that very courier.
        order = await self.store.order(order_id)
        held_by = (order.courier_id if order else None) or ""
        event = self._event(self.names.dispatch_event("unassigned", order_id),
                            CourierUnassigned(order_id=order_id, courier_id=held_by,
                                              at_ms=now_ms, reason="fleet"),
                            msg_id=f"{order_id}:unassigned:{now_ms}")
        t = await self.store.unassign(order_id, now_ms, event.row if held_by else b"",
                                      courier_id=held_by)
        if t.result is TransitionResult.UNASSIGNED:
            if held_by and t.courier_id == held_by:
                await self._publish(event)
            else:  # raced with another change: the script recorded nothing, publish now
                await self._publish(self._event(
                    self.names.dispatch_event("unassigned", order_id),
                    CourierUnassigned(order_id=order_id, courier_id=t.courier_id,
                                      at_ms=now_ms, reason="fleet"),
                    msg_id=f"{order_id}:unassigned:{now_ms}"), parked=False)
            await self._push(t.courier_id, wire.OrderUnassigned(
                payload=wire.OrderUnassignedPayload(order_id=order_id)))
        return t

    async def progress(self, order_id: str, courier_id: str,
                       new: OrderDispatchState) -> Transition:
        now_ms = self.clock()
        event: Any
        if new is OrderDispatchState.PICKED_UP:
            event = OrderPickedUp(order_id=order_id, courier_id=courier_id, at_ms=now_ms)
        elif new is OrderDispatchState.DELIVERING:
            event = OrderDelivering(order_id=order_id, courier_id=courier_id, at_ms=now_ms)
        else:
            event = OrderDelivered(order_id=order_id, courier_id=courier_id, at_ms=now_ms)
        pending = self._event(self.names.dispatch_event(new.value, order_id), event,
                              msg_id=f"{order_id}:{new.value}")
        t = await self.store.progress(order_id, courier_id, new, now_ms, pending.row)
        if t.result == new:
            await self._publish(pending)
        return t

    async def stalled(self, now_ms: int) -> list[tuple[OrderRecord, Stall]]:
        """Every active order the stall rule (`dispatch.stall.judge`) finds stalled at
        `now_ms`, with its verdict, by order id: all active orders and their couriers'
        last fixes, read in a few pipelines."""
        ids: list[str] = []
        for s in ACTIVE_ORDER_STATES:
            ids += await self.store.all_orders_in_state(s)
        orders = await self.store.orders(sorted(ids))
        couriers = sorted({o.courier_id for o in orders if o.courier_id})
        fixes = dict(zip(couriers, await self.couriers.positions(couriers), strict=True))
        out = []
        for o in orders:
            fix = fixes.get(o.courier_id) if o.courier_id else None
            verdict = judge(progress_of(o, fix.ts_ms if fix else None), self.stall_limits,
                            now_ms)
            if verdict is not None:
                out.append((o, verdict))
        return out

    async def withdraw_stalled(self, order: OrderRecord, now_ms: int) -> Transition:
        """Take a stalled assignment back (`DispatchStore.withdraw_stalled`: only if it is
        still that assignment): the order waits again without that courier, the courier
        hears UNASSIGNED and its capacity is free, dispatch.unassigned (reason "stalled") is
        recorded with the change."""
        courier_id = order.courier_id or ""
        event = self._event(self.names.dispatch_event("unassigned", order.order_id),
                            CourierUnassigned(order_id=order.order_id, courier_id=courier_id,
                                              at_ms=now_ms, reason=STALLED),
                            msg_id=f"{order.order_id}:unassigned:{now_ms}")
        t = await self.store.withdraw_stalled(order.order_id, courier_id,
                                              order.assigned_ms or 0, now_ms, event.row)
        if t.result is TransitionResult.UNASSIGNED:
            await self._publish(event)
            await self._push(courier_id, wire.OrderUnassigned(
                payload=wire.OrderUnassignedPayload(order_id=order.order_id)))
        return t

    def _assigned(self, order_id: str, courier_id: str, offer_id: str,
                  now_ms: int) -> PendingEvent:
        return self._event(self.names.dispatch_event("assigned", order_id),
                           CourierAssigned(order_id=order_id, courier_id=courier_id,
                                           offer_id=offer_id, at_ms=now_ms),
                           msg_id=f"{order_id}:assigned:{offer_id}")

    def _event(self, subject: str, event: Any, *, msg_id: str) -> PendingEvent:
        """A dispatch.* event and its outbox row, built before the transition's script so the
        script can record it in the same atomic step as the state change."""
        return PendingEvent(subject=subject, msg_id=msg_id, event=event,
                            row=_encoder.encode(OutboxRow(
                                subject=subject, msg_id=msg_id,
                                event=msgspec.Raw(encode(event)), parked_ms=self.clock())))

    async def _publish(self, pending: PendingEvent, *, parked: bool = True) -> None:
        """Publish an event whose row the transition put in the outbox (``parked``), then
        remove the row. If the publish fails (NATS down) the row stays and `relay_outbox`
        publishes it later; if this process dies first, any core's relay does. JetStream
        drops a second copy by its msg id, so the event is stored once either way.

        One short try: the outbox already holds the event, so a request does not wait out a
        NATS leader election (the retries took up to ~10 s) before answering its caller."""
        try:
            await publish(self.js, pending.subject, pending.event, msg_id=pending.msg_id,
                          timeout_s=INLINE_PUBLISH_TIMEOUT_S, attempts=1)
        except Exception as exc:  # any failure: the event must not be lost
            raise_if_cancelling()
            log.warning("publish of %s failed (%r); left in the outbox", pending.msg_id, exc)
            if not parked:
                await self.store.park_event(pending.row)
            return
        if parked:
            await self.store.drop_event(pending.row)

    async def relay_outbox(self, limit: int = 100, *, grace_ms: int | None = None) -> int:
        """Publish outbox rows in order, oldest first, once they are `grace_ms` old (default
        DISPATCH_OUTBOX_GRACE_MS; younger ones are normally being published by the request
        that wrote them); stop at the first failure. Returns how many were published."""
        if grace_ms is None:
            grace_ms = self.settings.dispatch.outbox_grace_ms
        sent = 0
        while sent < limit and (raw := await self.store.outbox_head()) is not None:
            try:
                row = _outbox_row.decode(raw)
                event = decode(bytes(row.event))
            except msgspec.DecodeError:
                log.error("dropping an undecodable outbox row: %r", raw[:200])
                await self.store.drop_outbox_head(raw)
                continue
            if row.parked_ms > self.clock() - grace_ms:
                break
            try:
                await publish(self.js, row.subject, event, msg_id=row.msg_id)
            except Exception as exc:
                raise_if_cancelling()
                log.warning("outbox relay paused: %r", exc)
                break
            await self.store.drop_outbox_head(raw)
            sent += 1
        return sent

    async def _push(self, courier_id: str, message: wire.CourierMessage) -> None:
        """Core-plain NATS to whichever process holds the courier's socket."""
        if not courier_id:
            return
        with contextlib.suppress(Exception):  # a push is best effort; state is in Redis
            await self.nats.publish(self.names.courier_inbox(courier_id), wire.encode(message))


@functools.lru_cache(maxsize=1024)
def _region_anchor(region: str) -> int:
    """The grid anchor of a region's rounds: its centre child at the live resolution (the
    same every round, so cells' local IJ keys are remembered between rounds)."""
    return h3.str_to_int(h3.cell_to_center_child(region, LIVE_RES))

