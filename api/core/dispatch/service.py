"""Dispatch runtime: order intake, matching rounds per region under a lease, offers, expiry.

The decisions are pure (``dispatch.costs``, ``dispatch.matching``, ``dispatch.lifecycle``);
this module gathers their inputs from Redis, applies their outputs through the atomic scripts
of `DispatchStore`, pushes offers to couriers over NATS and publishes dispatch.* events.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from typing import Any

import h3
import msgspec
import numpy as np
import numpy.typing as npt
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram

from api.core.dispatch.store import DispatchStore, OfferClaim, Transition
from api.core.gps.ingest import wall_ms
from api.observability import Metrics
from api.settings import Settings
from api.stores.live_index import Hit, IndexSnapshot, LiveIndex, NearestFinder
from dispatch.costs import (
    ALL_VEHICLES_MASK,
    CandidateCosts,
    CostParams,
    Couriers,
    HaversinePairTravel,
    Orders,
    candidate_costs,
    vehicle_code,
)
from dispatch.lifecycle import OrderDispatchState, queue_entry_ms
from dispatch.matching import assign_orders, greedy_nearest
from dispatch.stacking import StackedCourier, StackOrder, stack_cost_s
from geo.cells import LIVE_RES, region_of, regions_near
from geo.travel import HaversineTravelModel, Vehicle
from streams.catalog import Names
from streams.events import (
    CourierAssigned,
    CourierUnassigned,
    OrderDelivered,
    OrderDelivering,
    OrderEvent,
    OrderPickedUp,
    OrderStatusChanged,
    decode,
    encode,
)
from streams.jetstream import publish, raise_if_cancelling

log = logging.getLogger("homechef.dispatch")

MAX_ORDERS_PER_ROUND = 2000
OUTBOX_GRACE_MS = 3000
"""The relay leaves outbox rows younger than this to the request publishing them."""
STACK_CANDIDATES = 4  # couriers heading to a chef looked at per order
ROUND_ORDER_FIELDS = ("plat", "plng", "dlat", "dlng", "ready_ms", "promised_ms", "chef")
"""What a round reads of each order (costs, stacking, the offer)."""


class OfferPayload(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: str
    order_id: str
    pickup: dict[str, float]
    dropoff: dict[str, float]
    ready_at: int | None
    """Epoch ms UTC when the food is expected ready."""
    expires_at: int
    """Epoch ms UTC after which the offer is withdrawn."""
    stacked: bool = False
    """The courier already holds another order: this one would be carried alongside it."""


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


class CourierMessage(msgspec.Struct, frozen=True):
    type: str
    payload: Any


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


class Dispatcher:
    def __init__(self, settings: Settings, names: Names, store: DispatchStore,
                 couriers: LiveIndex, nats: NATS, js: JetStreamContext,
                 metrics: DispatchMetrics) -> None:
        self.settings = settings
        self.names = names
        self.store = store
        self.couriers = couriers
        self.nats = nats
        self.js = js
        self.metrics = metrics
        self.worker_id = uuid.uuid4().hex
        self.params = CostParams()
        self.travel = HaversinePairTravel()
        self.model = HaversineTravelModel()

    # -- intake ----------------------------------------------------------------------------
    async def on_order_event(self, event: OrderEvent | Any) -> None:
        """OrdersView listener: accepted orders enter dispatch; cancellations leave it; a
        courier on the way learns when the food is ready (ORDER_READY)."""
        if not isinstance(event, OrderStatusChanged):
            return
        now_ms = wall_ms()
        if event.status in ("cancelled", "refunded"):
            result = await self.store.cancel(event.order_id, now_ms)
            if result.courier_id:
                await self._push(result.courier_id, "OFFER_WITHDRAWN",
                                 {"order_id": event.order_id, "reason": "cancelled"})
            return
        if event.status == "ready":
            courier_id = await self.store.food_ready(event.order_id, event.at_ms or now_ms)
            if courier_id:
                await self._push(courier_id, "ORDER_READY",
                                 {"order_id": event.order_id, "ready_at": event.at_ms or now_ms})
            return
        if event.status != "accepted":
            return
        await self.enqueue(event, now_ms)

    async def enqueue(self, event: OrderStatusChanged, now_ms: int) -> bool:
        lat, lng = event.pickup.lat, event.pickup.lng
        nearest, _ = await self.couriers.nearby(
            lat, lng, radius_m=self.settings.dispatch.radius_m, limit=1, now_ms=now_ms,
            stale_s=self.settings.ingest.courier_stale_s, statuses=["idle"])
        travel_s = (self.model.travel_s(nearest[0].lat, nearest[0].lng, lat, lng, Vehicle.BIKE)
                    if nearest else None)  # None: supply is short, enter at once
        enter_ms = queue_entry_ms(now_ms=now_ms, ready_at_ms=event.ready_at_ms,
                                  expected_travel_s=travel_s)
        fields: dict[str, str | int | float] = {
            "plat": lat, "plng": lng, "dlat": event.dropoff.lat, "dlng": event.dropoff.lng,
            "ready_ms": event.ready_at_ms or now_ms,
            "promised_ms": event.promised_at_ms or now_ms + 45 * 60_000,
            "number": event.order_number, "chef": event.chef_id,
        }
        return await self.store.enqueue(event.order_id, region=region_of(lat, lng),
                                        enter_ms=enter_ms, now_ms=now_ms, fields=fields)

    # -- loops -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Every DISPATCH_ROUND_S: expire due offers, then run rounds of the regions we lease."""
        ttl_ms = round(self.settings.dispatch.lease_ttl_s * 1000)
        while True:
            raise_if_cancelling()
            started = time.monotonic()
            await self.relay_outbox()
            await self.expire_due_offers()
            for region in await self.store.regions():
                if await self.store.hold_lease(region, self.worker_id, ttl_ms):
                    await self.run_round(region)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.settings.dispatch.round_s - elapsed))

    async def expire_due_offers(self) -> None:
        now_ms = wall_ms()
        for offer_id in await self.store.due_offers(now_ms):
            t = await self.store.resolve(offer_id, "expire", now_ms=now_ms)
            if t.result == "expired":
                self.metrics.offer_results.labels("expired").inc()
                await self._push(t.courier_id, "OFFER_EXPIRED", {"offer_id": offer_id,
                                                                 "order_id": t.order_id})

    async def run_round(self, region: str) -> int:
        """One matching round of a region; returns the number of offers sent."""
        started = time.perf_counter()
        now_ms = wall_ms()
        # Due orders still waiting, with their declined couriers: one script, one reply.
        n_due, orders, declined = await self.store.round_orders(
            region, now_ms, MAX_ORDERS_PER_ROUND, fields=ROUND_ORDER_FIELDS)
        if not n_due:
            await self.store.drop_region_if_empty(region)
            return 0
        if not orders:
            return 0
        k = self.settings.dispatch.candidates
        finder = await self.finder(region, orders, declined, now_ms)
        members = finder.members
        # Stacking: the couriers heading to a chef first, so their inputs (one script) are
        # read by Redis while the idle couriers are searched here.
        stack_read: asyncio.Future[Any] | None = None
        to_pickup = None
        if self.settings.dispatch.max_stack >= 2:
            to_pickup, _ = finder.nearest("to_pickup")
            stack_ids = [members.ids[c] for c in np.unique(to_pickup[to_pickup >= 0]).tolist()]
            if stack_ids:  # sorted: member indices order like ids
                stack_read = asyncio.ensure_future(self.store.stack_inputs(
                    stack_ids, self.settings.dispatch.max_stack))
        try:
            cand, cols = _candidate_columns(finder.nearest("idle")[0], declined, members.ids, k)
            stack_inputs = await stack_read if stack_read is not None else {}
        finally:
            if stack_read is not None and not stack_read.done():
                stack_read.cancel()
        stacked = self._stack_candidates(orders, declined, now_ms, members, to_pickup,
                                         stack_inputs)
        courier_ids = [members.ids[c] for c in cols.tolist()]
        if not courier_ids and not stacked.courier_ids:
            return 0
        vehicle_names = [members.attr[c] for c in cols.tolist()]  # '' by the live search
        if self.settings.dispatch.search != "snapshot" or "" in vehicle_names:
            infos = await self.store.couriers(courier_ids)
            vehicle_names = [info.get("vehicle", "") for info in infos]
        codes = {v: vehicle_code(_vehicle(v)) for v in set(vehicle_names)}
        now_s = now_ms / 1000.0

        def f64(values: list[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
            return np.asarray(values, dtype=np.float64)

        order_arrays = Orders(
            chef_lat=f64([float(o["plat"]) for o in orders]),
            chef_lng=f64([float(o["plng"]) for o in orders]),
            drop_lat=f64([float(o["dlat"]) for o in orders]),
            drop_lng=f64([float(o["dlng"]) for o in orders]),
            ready_at_s=f64([int(o["ready_ms"]) / 1000.0 for o in orders]),
            promised_at_s=f64([int(o["promised_ms"]) / 1000.0 for o in orders]),
            allowed_vehicles=np.full(len(orders), ALL_VEHICLES_MASK, dtype=np.int64),
        )
        courier_arrays = Couriers(
            lat=members.lat[cols], lng=members.lng[cols],
            vehicle_code=np.asarray([codes[v] for v in vehicle_names], dtype=np.int64),
            available_at_s=np.full(len(courier_ids), now_s, dtype=np.float64),
        )
        costs = stacked.append_to(candidate_costs(order_arrays, courier_arrays, cand,
                                                  now_s=now_s, params=self.params,
                                                  travel=self.travel))
        penalty_s = self.settings.dispatch.unassigned_penalty_s
        if self.settings.dispatch.policy == "greedy":  # the baseline, for comparisons
            assignment = greedy_nearest(costs, ready_at_s=order_arrays.ready_at_s,
                                        unassigned_penalty_s=penalty_s)
        else:
            assignment = assign_orders(costs, unassigned_penalty_s=penalty_s)
        sent = 0
        ttl_ms = round(self.settings.dispatch.offer_ttl_s * 1000)
        picked = [(i, j) for i, j in enumerate(assignment.courier_idx.tolist()) if j >= 0]
        claims = []
        for i, j in picked:
            if j < len(courier_ids):
                claims.append(OfferClaim(courier_id=courier_ids[j],
                                         order_id=orders[i]["order_id"]))
            else:  # a courier heading to a chef, one more order (stacking)
                cid, held = stacked.courier(j - len(courier_ids))
                claims.append(OfferClaim(courier_id=cid, order_id=orders[i]["order_id"],
                                         held=tuple(held),
                                         max_stack=self.settings.dispatch.max_stack))
        claim_ms = wall_ms()  # the courier gets the full TTL from the claim on
        expires_ms = claim_ms + ttl_ms
        # The claims go out at once (CLAIMS_PER_CALL per atomic script call); each call's
        # offers are pushed as its reply arrives, while Redis runs the next calls.
        done = lost = 0
        inbox = self.names.courier_inbox
        chef_lat, chef_lng = order_arrays.chef_lat.tolist(), order_arrays.chef_lng.tolist()
        drop_lat, drop_lng = order_arrays.drop_lat.tolist(), order_arrays.drop_lng.tolist()
        ready_ms = [int(o["ready_ms"]) for o in orders]
        async with contextlib.aclosing(self.store.offer_chunks(
                claims, now_ms=claim_ms, expires_ms=expires_ms)) as chunks:
            async for results in chunks:
                for (i, j), claim, (result, offer_id) in zip(
                        picked[done:done + len(results)], claims[done:done + len(results)],
                        results, strict=True):
                    if result != "ok":
                        lost += 1
                        continue
                    sent += 1
                    message = _encoder.encode(CourierMessage("OFFER", OfferPayload(
                        offer_id=offer_id, order_id=orders[i]["order_id"],
                        pickup={"lat": chef_lat[i], "lng": chef_lng[i]},
                        dropoff={"lat": drop_lat[i], "lng": drop_lng[i]},
                        ready_at=ready_ms[i], expires_at=expires_ms,
                        stacked=j >= len(courier_ids))))
                    try:  # as `_push`: best effort, the offer is in Redis
                        await self.nats.publish(inbox(claim.courier_id), message)
                    except Exception:
                        raise_if_cancelling()
                done += len(results)
        self.metrics.offers.inc(sent)
        self.metrics.claims_lost.inc(lost)
        self.metrics.rounds.inc()
        self.metrics.round_seconds.observe(time.perf_counter() - started)
        return sent

    async def finder(self, region: str, orders: list[dict[str, str]],
                     declined: list[set[str]], now_ms: int) -> NearestFinder:
        """The round's candidate couriers per order: the nearest idle ones (K + declined)
        and, when stacking is on, the nearest heading to a chef (STACK_CANDIDATES +
        declined), within DISPATCH_RADIUS_M, fresh per COURIER_STALE_S, nearest first.

        ``snapshot`` (default): one read of the region's couriers (and its neighbours'),
        with their vehicles, searched in memory; ``live``: `nearby_many` on the Redis index.
        Same answer."""
        k = self.settings.dispatch.candidates
        limits = {"idle": [k + len(dec) for dec in declined]}
        if self.settings.dispatch.max_stack >= 2:
            limits["to_pickup"] = [STACK_CANDIDATES + len(dec) for dec in declined]
        points = [(float(o["plat"]), float(o["plng"])) for o in orders]
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

    async def search(self, region: str, orders: list[dict[str, str]],
                     declined: list[set[str]], now_ms: int) -> dict[str, list[list[Hit]]]:
        """`finder`'s candidates as hit lists (member id, lat, lng, distance, vehicle)."""
        finder = await self.finder(region, orders, declined, now_ms)
        return {status: finder.hits(status) for status in
                (["idle", "to_pickup"] if self.settings.dispatch.max_stack >= 2 else ["idle"])}

    def _stack_candidates(self, orders: list[dict[str, str]], declined: list[set[str]],
                          now_ms: int, members: IndexSnapshot,
                          to_pickup: npt.NDArray[np.int64] | None,
                          inputs: dict[str, tuple[str, list[dict[str, str]]]],
                          ) -> StackCandidates:
        """Couriers heading to a chef that may take one of these orders too (see
        `dispatch.stacking`), with the added travel as the matching cost; `to_pickup` are
        the nearest such couriers per order (indices into `members`), `inputs` what
        `DispatchStore.stack_inputs` said of them (the eligible ones: no open offer, room in
        the stack, every held order still assigned)."""
        out = StackCandidates(len(orders))
        max_stack = self.settings.dispatch.max_stack
        if max_stack < 2 or not orders or to_pickup is None or not inputs:
            return out
        index = {cid: i for i, cid in enumerate(members.ids)}
        eligible: dict[str, list[str]] = {}
        couriers: dict[str, StackedCourier] = {}
        for cid, (vehicle, rows) in inputs.items():
            at = index[cid]
            eligible[cid] = [r["order_id"] for r in rows]
            couriers[cid] = StackedCourier(
                position=(float(members.lat[at]), float(members.lng[at])),
                vehicle=_vehicle(vehicle), held=tuple(_stack_order(r) for r in rows))
        now_s = now_ms / 1000.0
        near = np.isin(to_pickup, np.asarray([index[cid] for cid in couriers], dtype=np.int64))
        for i in np.flatnonzero(near.any(axis=1)).tolist():  # orders near an eligible one
            new = _stack_order(orders[i])
            dec = declined[i]
            for m in to_pickup[i].tolist():
                if m < 0:
                    continue
                member_id = members.ids[m]
                c = couriers.get(member_id)
                if c is None or member_id in dec:
                    continue
                cost_s = stack_cost_s(c, new, now_s=now_s, max_stack=max_stack,
                                      service_s=self.params.service_s, travel=self.model,
                                      lateness_weight=self.params.lateness_weight)
                if cost_s is not None:
                    out.add(i, member_id, eligible[member_id], cost_s)
        return out

    # -- courier and fleet actions ---------------------------------------------------------
    async def open_offer(self, courier_id: str) -> OfferPayload | None:
        """The courier's open, unexpired offer (a courier holds at most one at a time)."""
        info = await self.store.courier(courier_id)
        offer_id = info.get("offer", "")
        if not offer_id:
            return None
        offer = await self.store.offer_info(offer_id)
        if (not offer or offer.get("state") != "open" or offer.get("courier") != courier_id
                or int(offer["expires"]) <= wall_ms()):
            return None
        order = await self.store.order(offer["order"]) or {}
        (held,) = await self.store.held_orders([courier_id])
        return OfferPayload(
            offer_id=offer_id, order_id=offer["order"],
            pickup={"lat": float(order.get("plat", 0)), "lng": float(order.get("plng", 0))},
            dropoff={"lat": float(order.get("dlat", 0)), "lng": float(order.get("dlng", 0))},
            ready_at=int(order["ready_ms"]) if order.get("ready_ms") else None,
            expires_at=int(offer["expires"]), stacked=bool(held))

    @staticmethod
    def offer_message(payload: OfferPayload) -> bytes:
        """The OFFER message as pushed on the courier's socket."""
        return _encoder.encode(CourierMessage("OFFER", payload))

    async def accept(self, courier_id: str, offer_id: str) -> Transition:
        now_ms = wall_ms()
        offer = await self.store.offer_info(offer_id) or {}
        event = (self._assigned(offer["order"], courier_id, offer_id, now_ms)
                 if offer.get("order") else None)
        t = await self.store.resolve(offer_id, "accept", courier_id=courier_id, now_ms=now_ms,
                                     event_row=event.row if event else b"",
                                     order_id=offer.get("order", ""))
        if t.result == "accepted":
            self.metrics.offer_results.labels("accepted").inc()
            if event is not None:  # an offer's order never changes: the row was recorded
                await self._publish(event)
        elif t.result == "expired":
            self.metrics.offer_results.labels("expired").inc()
        return t

    async def decline(self, courier_id: str, offer_id: str) -> Transition:
        t = await self.store.resolve(offer_id, "decline", courier_id=courier_id,
                                     now_ms=wall_ms())
        if t.result == "declined":
            self.metrics.offer_results.labels("declined").inc()
        return t

    async def force_assign(self, order_id: str, courier_id: str) -> Transition:
        now_ms = wall_ms()
        event = self._assigned(order_id, courier_id, f"fleet-{uuid.uuid4().hex}", now_ms)
        t = await self.store.force_assign(order_id, courier_id, now_ms, event.row)
        if t.result == "assigned":
            await self._publish(event)
            order = await self.store.order(order_id) or {}
            await self._push(courier_id, "ASSIGNED", {
                "order_id": order_id, "by": "fleet",
                "pickup": {"lat": float(order.get("plat", 0)), "lng": float(order.get("plng", 0))},
                "dropoff": {"lat": float(order.get("dlat", 0)),
                            "lng": float(order.get("dlng", 0))}})
        return t

    async def unassign(self, order_id: str) -> Transition:
        now_ms = wall_ms()
        # The event names the courier, known only inside the script: read it first, and
        # record the event only if the script unassigned from that very courier.
        held_by = (await self.store.order(order_id) or {}).get("courier", "")
        event = self._event(self.names.dispatch_event("unassigned", order_id),
                            CourierUnassigned(order_id=order_id, courier_id=held_by,
                                              at_ms=now_ms, reason="fleet"),
                            msg_id=f"{order_id}:unassigned:{now_ms}")
        t = await self.store.unassign(order_id, now_ms, event.row if held_by else b"",
                                      courier_id=held_by)
        if t.result == "unassigned":
            if held_by and t.courier_id == held_by:
                await self._publish(event)
            else:  # raced with another change: the script recorded nothing, publish now
                await self._publish(self._event(
                    self.names.dispatch_event("unassigned", order_id),
                    CourierUnassigned(order_id=order_id, courier_id=t.courier_id,
                                      at_ms=now_ms, reason="fleet"),
                    msg_id=f"{order_id}:unassigned:{now_ms}"), parked=False)
            await self._push(t.courier_id, "UNASSIGNED", {"order_id": order_id})
        return t

    async def progress(self, order_id: str, courier_id: str,
                       new: OrderDispatchState) -> Transition:
        now_ms = wall_ms()
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
        if t.result == new.value:
            await self._publish(pending)
        return t

    def _assigned(self, order_id: str, courier_id: str, offer_id: str,
                  now_ms: int) -> PendingEvent:
        return self._event(self.names.dispatch_event("assigned", order_id),
                           CourierAssigned(order_id=order_id, courier_id=courier_id,
                                           offer_id=offer_id, at_ms=now_ms),
                           msg_id=f"{order_id}:assigned:{offer_id}")

    @staticmethod
    def _event(subject: str, event: Any, *, msg_id: str) -> PendingEvent:
        """A dispatch.* event and its outbox row, built before the transition's script so the
        script can record it in the same atomic step as the state change."""
        return PendingEvent(subject=subject, msg_id=msg_id, event=event,
                            row=_encoder.encode(OutboxRow(
                                subject=subject, msg_id=msg_id,
                                event=msgspec.Raw(encode(event)), parked_ms=wall_ms())))

    async def _publish(self, pending: PendingEvent, *, parked: bool = True) -> None:
        """Publish an event whose row the transition put in the outbox (``parked``), then
        remove the row. If the publish fails (NATS down) the row stays and `relay_outbox`
        publishes it later; if this process dies first, any core's relay does. JetStream
        drops a second copy by its msg id, so the event is stored once either way."""
        try:
            await publish(self.js, pending.subject, pending.event, msg_id=pending.msg_id)
        except Exception as exc:  # any failure: the event must not be lost
            raise_if_cancelling()
            log.warning("publish of %s failed (%r); left in the outbox", pending.msg_id, exc)
            if not parked:
                await self.store.park_event(pending.row)
            return
        if parked:
            await self.store.drop_event(pending.row)

    async def relay_outbox(self, limit: int = 100, *, grace_ms: int = OUTBOX_GRACE_MS) -> int:
        """Publish outbox rows in order, oldest first, once they are `grace_ms` old (younger
        ones are normally being published by the request that wrote them); stop at the first
        failure. Returns how many were published."""
        sent = 0
        while sent < limit and (raw := await self.store.outbox_head()) is not None:
            try:
                row = _outbox_row.decode(raw)
                event = decode(bytes(row.event))
            except msgspec.DecodeError:
                log.error("dropping an undecodable outbox row: %r", raw[:200])
                await self.store.drop_outbox_head(raw)
                continue
            if row.parked_ms > wall_ms() - grace_ms:
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

    async def _push(self, courier_id: str, kind: str, payload: Any) -> None:
        """Core-plain NATS to whichever process holds the courier's socket."""
        if not courier_id:
            return
        with contextlib.suppress(Exception):  # a push is best effort; state is in Redis
            await self.nats.publish(self.names.courier_inbox(courier_id),
                                    _encoder.encode(CourierMessage(kind, payload)))


class StackCandidates:
    """Stacked couriers of one round as extra matching columns (after the idle couriers)."""

    def __init__(self, n_orders: int) -> None:
        self.n_orders = n_orders
        self.courier_ids: list[str] = []
        self._held: list[list[str]] = []
        self._col: dict[str, int] = {}
        self._pairs: list[tuple[int, int, float]] = []

    def add(self, order: int, courier_id: str, held: list[str], cost_s: float) -> None:
        col = self._col.get(courier_id)
        if col is None:
            col = self._col[courier_id] = len(self.courier_ids)
            self.courier_ids.append(courier_id)
            self._held.append(held)
        self._pairs.append((order, col, cost_s))

    def courier(self, col: int) -> tuple[str, list[str]]:
        return self.courier_ids[col], self._held[col]

    def append_to(self, costs: CandidateCosts) -> CandidateCosts:
        """`costs` with one more candidate slot per stacked pair (columns numbered on)."""
        if not self._pairs:
            return costs
        per_order = np.bincount([p[0] for p in self._pairs], minlength=self.n_orders)
        width = int(per_order.max())
        n, k = costs.courier_idx.shape
        idx = np.full((n, k + width), -1, dtype=np.int64)
        cost = np.full((n, k + width), np.inf)
        travel = np.full((n, k + width), np.inf)
        idx[:, :k], cost[:, :k], travel[:, :k] = costs.courier_idx, costs.cost_s, costs.travel_s
        slot = [k] * n
        for i, col, c in self._pairs:
            idx[i, slot[i]] = costs.n_couriers + col
            cost[i, slot[i]] = travel[i, slot[i]] = c
            slot[i] += 1
        return CandidateCosts(courier_idx=idx, cost_s=cost, travel_s=travel,
                              n_couriers=costs.n_couriers + len(self.courier_ids))


def _candidate_columns(
    found: npt.NDArray[np.int64], declined: list[set[str]], ids: list[str], k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The matching's candidate slots from the search: per order its first `k` couriers
    found (member indices, nearest first) that did not decline it, and the couriers as
    columns numbered in order of first appearance (row by row). Returns (slots as column
    numbers padded with -1, each column's member index)."""
    n = len(declined)
    cand = np.full((n, k), -1, dtype=np.int64)
    width = min(k, found.shape[1]) if found.ndim == 2 else 0
    if width:
        cand[:, :width] = found[:, :width]
    for i in [i for i, dec in enumerate(declined) if dec]:  # rare: search again without them
        row = [m for m in found[i].tolist() if m >= 0 and ids[m] not in declined[i]][:k]
        cand[i] = -1
        cand[i, :len(row)] = row
    flat = cand.ravel()
    used, first = np.unique(flat[flat >= 0], return_index=True)
    cols = used[np.argsort(first, kind="stable")]
    column_of = np.full(len(ids) + 1, -1, dtype=np.int64)  # the last entry answers -1
    column_of[cols] = np.arange(len(cols), dtype=np.int64)
    return column_of[cand], cols


@functools.lru_cache(maxsize=1024)
def _region_anchor(region: str) -> int:
    """The grid anchor of a region's rounds: its centre child at the live resolution (the
    same every round, so cells' local IJ keys are remembered between rounds)."""
    return h3.str_to_int(h3.cell_to_center_child(region, LIVE_RES))


def _stack_order(o: dict[str, str]) -> StackOrder:
    plat, plng = float(o["plat"]), float(o["plng"])
    return StackOrder(order_id=o["order_id"], chef=o.get("chef") or f"{plat},{plng}",
                      pickup=(plat, plng), dropoff=(float(o["dlat"]), float(o["dlng"])),
                      ready_at_s=int(o["ready_ms"]) / 1000.0,
                      promised_at_s=int(o["promised_ms"]) / 1000.0)


def _vehicle(raw: str) -> Vehicle:
    try:
        return Vehicle(raw)
    except ValueError:
        return Vehicle.BIKE
