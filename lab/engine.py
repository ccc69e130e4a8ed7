"""The lab's discrete-event simulation of a day, through the production decision code.

A virtual clock (epoch ms) jumps from event to event: a chef accepts an order, food becomes
ready, a courier arrives at a stop or leaves it, answers an offer, starts or ends its shift,
and every `LabDispatch.round_s` a matching round runs. What production decides is decided
here by the same pure functions, never a copy:

- intake: `dispatch.lifecycle.queue_entry_ms` (when the order enters matching, from the
  nearest idle courier's bike ride, as `Dispatcher.enqueue`), and on food ready
  `entry_when_food_ready_ms` (an order queued for later is due now) while the real ready
  time replaces the estimate (the store's `food_ready`); with `LabDispatch.prep`, the
  estimate is `dispatch.prep.predict_ready_ms` from the kitchens' ready marks so far
  (`Dispatcher.enqueue` and `learn_prep`, with the history in memory);
- rounds: the due waiting orders, oldest first (`round_orders`), the couriers found near
  each (the snapshot search's answer: idle ones K + declined, heading to a chef
  `stack_candidates` + declined, within `radius_m`, by (distance, id) — computed here by
  brute force over the few hundred couriers, `nearest_members`, which is faster than the
  grid at this size and differs at most in the last bit of a distance), the held orders of
  those that may stack (`stack_inputs`' rule), then `dispatch.round.plan_round` with the
  production `RoundParams` (costs, matcher, stacking);
- offers: each planned offer goes out; the courier answers after a think time (accepts with
  its probability) or lets it expire after `offer_ttl_s`; a decline or an expiry puts the
  order back with the courier in its declined set.

What production leaves to people is modelled: couriers ride straight legs at the travel
model's time × their own pace × per-leg noise; at a kitchen they wait for the food (its real
ready time) and hand over in `handover_s`; with several orders they always ride to the
nearest open stop (a held order's kitchen, or the door of one on board), as the courier of
`homechef simulate` does. Idle couriers stay where they are, unless
`LabDispatch.reposition` is set: then every `reposition_s` the idle couriers get
`dispatch.reposition.reposition_hints` (demand predicted from the orders accepted so far,
by kitchen cell, `predict_demand`), and each follows its hint with its acceptance
probability (drawn from (seed, courier, hint)), riding there as on any leg; on the way it
is idle (offers reach it where it is) and counts as supply at its target. The whole city
is one dispatch region.

Pure: no I/O and no wall clock; `progress` receives lines at every half hour of virtual time.
Same day, dispatch and policy: same result (all randomness comes from the seed: per offer
from (seed, order, courier, attempt), per leg from (seed, courier)).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.lifecycle import entry_when_food_ready_ms, queue_entry_ms
from dispatch.prep import PrepParams, predict_ready_ms, prep_ratio
from dispatch.reposition import IdleCourier, RepositionParams, predict_demand, reposition_hints
from dispatch.round import (
    HeldOrders,
    RoundCouriers,
    RoundInputs,
    RoundOrder,
    RoundParams,
    RoundPlan,
    parse_vehicle,
    plan_round,
)
from geo.cells import cell_of
from geo.distance import haversine_m, haversine_matrix_m
from geo.travel import TravelModel, Vehicle
from lab.city import Day, LabCourier, LabOrder

__all__ = ["DaySample", "LabDispatch", "OrderRecord", "Planner", "RunResult",
           "nearest_members", "simulate_day"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Planner = Callable[[RoundInputs, RoundParams], RoundPlan]
RoundHook = Callable[[RoundInputs, RoundPlan], None]


class LabDispatch(msgspec.Struct, frozen=True, kw_only=True):
    """Production's dispatch settings as the lab needs them (the CLI fills them from
    `api.settings.DispatchSettings`, as `Dispatcher` does)."""

    params: RoundParams = msgspec.field(default_factory=RoundParams)
    round_s: float = 2.0
    offer_ttl_s: float = 30.0
    radius_m: float = 5000.0
    stack_candidates: int = 4
    max_orders_per_round: int = 2000
    prep: PrepParams | None = None
    """Prep-time prediction from each kitchen's history (`dispatch.prep`,
    `DISPATCH_PREP_PREDICTION`); None: the declared time is trusted until the food is
    ready."""
    reposition: RepositionParams | None = None
    """Repositioning hints for idle couriers (`dispatch.reposition`); None: idle couriers
    stay where they are."""
    reposition_s: float = 60.0
    """Seconds between two rounds of hints."""


class OrderRecord(msgspec.Struct, kw_only=True):
    """What happened to one order (epoch ms; None: did not happen)."""

    order_id: str
    placed_ms: int
    accepted_ms: int
    promised_ms: int
    assigned_ms: int | None = None
    courier_id: str = ""
    stacked: bool = False
    at_chef_ms: int | None = None
    picked_up_ms: int | None = None
    predicted_drop_ms: int | None = None
    """At pickup: when the courier's remaining route (travel model, known ready times)
    reaches this door."""
    delivered_ms: int | None = None
    offers: int = 0


class DaySample(msgspec.Struct, frozen=True, kw_only=True):
    """The fleet every five minutes of virtual time."""

    at_ms: int
    online: int
    idle: int
    waiting: int
    """Orders accepted by their chef and without a courier."""


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    orders: list[OrderRecord]
    samples: list[DaySample]
    courier_online_ms: int
    """Sum over couriers of the time they were online."""
    empty_m: float
    """Straight-line metres ridden with no food on board (to kitchens)."""
    rounds: int
    offers: int
    hints: int = 0
    """Repositioning hints given (`LabDispatch.reposition`)."""
    hints_followed: int = 0
    reposition_m: float = 0.0
    """Straight-line metres ridden following hints (also in `empty_m`)."""


_Kind = Literal["waiting", "offered", "assigned", "picked", "delivered"]


class _Order:
    __slots__ = ("declined", "enter_ms", "idx", "known_ready_ms", "o", "rec", "state")

    def __init__(self, idx: int, o: LabOrder) -> None:
        self.idx, self.o = idx, o
        self.state: _Kind | None = None  # None: not accepted by its chef yet
        self.enter_ms = 0
        self.known_ready_ms = o.estimated_ready_ms
        self.declined: set[str] = set()
        self.rec = OrderRecord(order_id=o.order_id, placed_ms=o.placed_ms,
                               accepted_ms=o.accepted_ms, promised_ms=o.promised_ms)


class _Stop:
    __slots__ = ("order", "pickup")

    def __init__(self, order: _Order, pickup: bool) -> None:
        self.order, self.pickup = order, pickup

    @property
    def at(self) -> tuple[float, float]:
        return self.order.o.pickup if self.pickup else self.order.o.dropoff


class _Courier:
    __slots__ = ("c", "ending", "held", "hints", "idx", "leg", "noise", "offer", "online",
                 "online_ms", "picked", "pos", "serving", "target", "vehicle", "version")

    def __init__(self, idx: int, c: LabCourier, seed: int) -> None:
        self.idx, self.c = idx, c
        self.vehicle = parse_vehicle(c.vehicle)
        self.online = False
        self.ending = False  # shift over: goes offline once it holds nothing
        self.online_ms = 0  # when it came online (while online)
        self.pos = c.start
        self.offer: _Order | None = None
        self.held: list[_Order] = []
        self.target: _Stop | None = None  # the stop it rides to or is at
        self.serving = False  # at `target` (waiting for food or handing over)
        self.leg: tuple[int, int, tuple[float, float], tuple[float, float]] | None = None
        self.version = 0  # bumps on re-routing; stale arrivals are ignored
        self.picked = 0  # held orders collected
        self.hints = 0  # repositioning hints received
        self.noise = np.random.default_rng([seed, 8, idx])

    @property
    def status(self) -> str:
        """Derived as production derives it (dispatch.lifecycle's module docstring)."""
        if not self.online:
            return "offline"
        if not self.held:
            return "offered" if self.offer is not None else "idle"
        return "delivering" if self.picked else "to_pickup"

    def position(self, now_ms: int) -> tuple[float, float]:
        if self.leg is None or self.serving:
            return self.pos
        t0, t1, a, b = self.leg
        f = 1.0 if t1 <= t0 else min(1.0, max(0.0, (now_ms - t0) / (t1 - t0)))
        return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)


# Event kinds, in the order they are handled at one instant (rounds last: they see the
# instant's arrivals, answers and ready food).
_SHIFT_START, _ACCEPT, _READY, _ANSWER, _ARRIVE, _DEPART, _SHIFT_END, _ROUND = range(8)
# Repositioning (only with `LabDispatch.reposition`): after the instant's round.
_SETTLE, _HINTS = 8, 9
_SAMPLE_MS = 300_000
_PROGRESS_MS = 1_800_000


class _Sim:
    def __init__(self, day: Day, dispatch: LabDispatch, travel: TravelModel,
                 planner: Planner, on_round: RoundHook | None,
                 progress: Callable[[str], None] | None, label: str) -> None:
        self.day, self.d, self.travel = day, dispatch, travel
        self.params = dispatch.params
        self.model = dispatch.params.travel  # what dispatch and its ETAs believe
        self.planner, self.on_round, self.progress, self.label = planner, on_round, progress, label
        self.seed = day.seed
        self.handover_ms = round(day.scenario.couriers.handover_s * 1000)
        self.think_s = day.scenario.couriers.think_s
        self.leg_sigma = day.scenario.couriers.leg_sigma
        self.orders = [_Order(i, o) for i, o in enumerate(day.orders)]
        self.couriers = [_Courier(i, c, day.seed) for i, c in enumerate(day.couriers)]
        self.courier_by_id = {c.c.courier_id: c for c in self.couriers}
        self.events: list[tuple[int, int, int, int, int]] = []
        self.seq = 0
        self.waiting: dict[int, _Order] = {}
        self.samples: list[DaySample] = []
        self.online_total_ms = 0
        self.empty_m = 0.0
        self.rounds = self.offers = 0
        self.next_sample = day.start_ms
        self.next_progress = day.start_ms + _PROGRESS_MS
        self.kitchen_prep: dict[int, list[float]] = {}  # `prep_ratio`s, oldest first
        self.city_prep: list[float] = []
        self.accepted_cells: list[tuple[int, str]] = []  # (accepted ms, kitchen cell)
        self.hints = self.hints_followed = 0
        self.reposition_m = 0.0

    def push(self, at_ms: int, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at_ms, kind, self.seq, a, b))

    def run(self) -> RunResult:
        day = self.day
        for c in self.couriers:
            self.push(c.c.shift_start_ms, _SHIFT_START, c.idx)
            self.push(c.c.shift_end_ms, _SHIFT_END, c.idx)
        for o in self.orders:
            self.push(o.o.accepted_ms, _ACCEPT, o.idx)
            self.push(o.o.ready_ms, _READY, o.idx)
        round_ms = max(1, round(self.d.round_s * 1000))
        self.push(day.start_ms, _ROUND)
        hints_ms = max(1, round(self.d.reposition_s * 1000))
        if self.d.reposition is not None:
            self.push(day.start_ms, _HINTS)
        end = day.end_ms
        handlers = {_SHIFT_START: self.shift_start, _ACCEPT: self.accept, _READY: self.ready,
                    _ANSWER: self.answer, _ARRIVE: self.arrive, _DEPART: self.depart,
                    _SHIFT_END: self.shift_end, _SETTLE: self.settle}
        while self.events:
            now, kind, _, a, b = heapq.heappop(self.events)
            if now > end:
                break
            self.observe(now)
            if kind == _ROUND:
                self.round(now)
                self.push(now + round_ms, _ROUND)
            elif kind == _HINTS:
                self.reposition(now)
                self.push(now + hints_ms, _HINTS)
            else:
                handlers[kind](now, a, b)
        for c in self.couriers:
            if c.online:
                self.online_total_ms += end - c.online_ms
        return RunResult(orders=[o.rec for o in self.orders], samples=self.samples,
                         courier_online_ms=self.online_total_ms, empty_m=self.empty_m,
                         rounds=self.rounds, offers=self.offers, hints=self.hints,
                         hints_followed=self.hints_followed, reposition_m=self.reposition_m)

    # -- observation ------------------------------------------------------------------------
    def observe(self, now: int) -> None:
        while now >= self.next_sample:
            online = [c for c in self.couriers if c.online]
            self.samples.append(DaySample(
                at_ms=self.next_sample, online=len(online),
                idle=sum(1 for c in online if c.status == "idle"),
                waiting=sum(1 for o in self.waiting.values() if o.state == "waiting")))
            self.next_sample += _SAMPLE_MS
        if self.progress is not None and now >= self.next_progress:
            at = self.next_progress
            self.next_progress += _PROGRESS_MS
            placed = sum(1 for o in self.orders if o.o.placed_ms <= at)
            delivered = sum(1 for o in self.orders if o.state == "delivered")
            s = self.samples[-1]
            hh, mm = divmod(((at // 60_000) % 1440), 60)
            self.progress(f"{self.label} {hh:02d}:{mm:02d} UTC: placed {placed}, delivered "
                          f"{delivered}, waiting {s.waiting}, couriers idle {s.idle} of "
                          f"{s.online} online")

    # -- chefs and intake -------------------------------------------------------------------
    def accept(self, now: int, i: int, _: int) -> None:
        """The chef accepted: the order enters dispatch (`Dispatcher.enqueue`)."""
        o = self.orders[i]
        lat, lng = o.o.pickup
        idle = [(c.position(now), c.idx) for c in self.couriers if c.status == "idle"]
        travel_s = None
        if idle:
            d_m, k = min((haversine_m(p[0], p[1], lat, lng), k) for p, k in idle)
            if d_m <= self.d.radius_m:  # the intake's search: nearest idle within reach
                at = self.couriers[k].position(now)
                travel_s = self.model.travel_s(at[0], at[1], lat, lng, Vehicle.BIKE)
        o.state = "waiting"
        if self.d.prep is not None:
            o.known_ready_ms = predict_ready_ms(
                accepted_ms=now, declared_ready_ms=o.o.estimated_ready_ms,
                kitchen=self.kitchen_prep.get(o.o.chef, ()), city=self.city_prep,
                params=self.d.prep)
        o.enter_ms = queue_entry_ms(now_ms=now, ready_at_ms=o.known_ready_ms,
                                    expected_travel_s=travel_s)
        self.waiting[i] = o
        if self.d.reposition is not None:
            self.accepted_cells.append((now, cell_of(lat, lng, self.d.reposition.cell_res)))

    def ready(self, now: int, i: int, _: int) -> None:
        """The kitchen marks the food ready (the store's `food_ready`)."""
        o = self.orders[i]
        o.known_ready_ms = now
        if self.d.prep is not None:
            self.learn_prep(o, now, self.d.prep)
        if o.state == "waiting":
            o.enter_ms = entry_when_food_ready_ms(enter_ms=o.enter_ms, now_ms=now)
        c = self.courier_of(o)
        if c is not None and c.serving and c.target is not None and c.target.order is o \
                and c.target.pickup:
            self.pick_up(c, now)

    def learn_prep(self, o: _Order, now: int, params: PrepParams) -> None:
        """One more observation of the kitchen's prep (`Dispatcher.learn_prep`)."""
        x = prep_ratio(accepted_ms=o.o.accepted_ms, declared_ready_ms=o.o.estimated_ready_ms,
                       ready_ms=now, params=params)
        if x is None:
            return
        kitchen = self.kitchen_prep.setdefault(o.o.chef, [])
        kitchen.append(x)
        del kitchen[:-params.history]
        self.city_prep.append(x)
        del self.city_prep[:-params.city_history]

    # -- rounds -----------------------------------------------------------------------------
    def round(self, now: int) -> None:
        due = sorted((o for o in self.waiting.values()
                      if o.state == "waiting" and o.enter_ms <= now),
                     key=lambda o: (o.enter_ms, o.o.order_id))[:self.d.max_orders_per_round]
        if not due:
            return
        max_stack = self.params.max_stack
        idle = [c for c in self.couriers if c.status == "idle"]
        heading = ([c for c in self.couriers if c.status == "to_pickup"]
                   if max_stack >= 2 else [])
        if not idle and not any(self.may_stack(c) for c in heading):
            return  # plan_round would find no courier: skip the search
        members = sorted(idle + heading, key=lambda c: c.c.courier_id)
        pos = [c.position(now) for c in members]
        lat = np.asarray([p[0] for p in pos], dtype=np.float64)
        lng = np.asarray([p[1] for p in pos], dtype=np.float64)
        qlat = np.asarray([o.o.pickup[0] for o in due], dtype=np.float64)
        qlng = np.asarray([o.o.pickup[1] for o in due], dtype=np.float64)
        dist_m = haversine_matrix_m(qlat, qlng, lat, lng)
        n_declined = np.asarray([len(o.declined) for o in due], dtype=np.int64)
        statuses = np.asarray([c.status for c in members])

        def nearest(status: str, k: int) -> IntArray:
            return nearest_members(dist_m, statuses == status, k + n_declined,
                                   self.d.radius_m)

        idle_found = nearest("idle", self.params.candidates)
        to_pickup = None
        stacks: list[HeldOrders] = []
        if max_stack >= 2:
            to_pickup = nearest("to_pickup", self.d.stack_candidates)
            for m in np.unique(to_pickup[to_pickup >= 0]).tolist():
                c = members[m]
                if self.may_stack(c):
                    stacks.append(HeldOrders(
                        courier_id=c.c.courier_id, vehicle=c.c.vehicle,
                        orders=tuple(sorted((self.round_order(h) for h in c.held),
                                            key=lambda r: r.order_id))))
        inputs = RoundInputs(
            orders=[self.round_order(o) for o in due], now_ms=now, idle=idle_found,
            to_pickup=to_pickup, stacks=tuple(stacks),
            couriers=RoundCouriers(ids=[c.c.courier_id for c in members], lat=lat, lng=lng,
                                   vehicle=[c.c.vehicle for c in members]))
        plan = self.planner(inputs, self.params)
        self.rounds += 1
        if self.on_round is not None:
            self.on_round(inputs, plan)
        by_id = {c.c.courier_id: c for c in members}
        by_order = {o.o.order_id: o for o in due}
        for offer in plan.offers:
            self.make_offer(now, by_order[offer.order_id], by_id[offer.courier_id],
                            offer.stacked)

    def may_stack(self, c: _Courier) -> bool:
        """`DispatchStore.stack_inputs`: no open offer, room, holding only orders not
        collected (its status says to_pickup)."""
        return (c.offer is None and 1 <= len(c.held) < self.params.max_stack
                and c.status == "to_pickup")

    def round_order(self, o: _Order) -> RoundOrder:
        return RoundOrder(order_id=o.o.order_id, chef=f"k{o.o.chef}", pickup_lat=o.o.pickup[0],
                          pickup_lng=o.o.pickup[1], dropoff_lat=o.o.dropoff[0],
                          dropoff_lng=o.o.dropoff[1], ready_ms=o.known_ready_ms,
                          promised_ms=o.o.promised_ms, declined=frozenset(o.declined))

    # -- repositioning ----------------------------------------------------------------------
    def reposition(self, now: int) -> None:
        """Hints to the idle couriers (`dispatch.reposition`); each follows its own with its
        acceptance probability. A courier on its way counts as supply at its target, one
        handing over its last order where it is; neither gets a new hint."""
        params = self.d.reposition
        assert params is not None
        window_ms = round(params.window_s * 1000)
        cut = next((i for i, (t, _) in enumerate(self.accepted_cells) if now - t <= window_ms),
                   len(self.accepted_cells))
        del self.accepted_cells[:cut]
        idle = [c for c in self.couriers if c.status == "idle"]
        if not idle or not self.accepted_cells:
            return
        demand = predict_demand(self.accepted_cells, now, params)
        at = [c.leg[3] if c.leg is not None else c.pos for c in idle]
        hints = reposition_hints(
            [IdleCourier(courier_id=c.c.courier_id, lat=p[0], lng=p[1],
                         movable=c.leg is None and c.target is None and not c.serving)
             for c, p in zip(idle, at, strict=True)], demand, params)
        for h in hints:
            c = self.courier_by_id[h.courier_id]
            c.hints += 1
            self.hints += 1
            rng = np.random.default_rng([self.seed, 9, c.idx, c.hints])
            if rng.random() >= c.c.accept_prob:
                continue
            self.hints_followed += 1
            c.version += 1
            goal = (h.lat, h.lng)
            model_s = self.travel.travel_s(c.pos[0], c.pos[1], goal[0], goal[1], c.vehicle)
            real_ms = round(model_s * c.c.pace * float(c.noise.lognormal(0.0, self.leg_sigma))
                            * 1000)
            self.empty_m += h.dist_m
            self.reposition_m += h.dist_m
            c.leg = (now, now + real_ms, c.pos, goal)
            self.push(now + real_ms, _SETTLE, c.idx, c.version)

    def settle(self, now: int, k: int, version: int) -> None:
        """A courier following a hint is there (unless an order sent it elsewhere)."""
        c = self.couriers[k]
        if version != c.version or c.leg is None or c.target is not None:
            return
        c.pos, c.leg = c.leg[3], None

    # -- offers -----------------------------------------------------------------------------
    def make_offer(self, now: int, o: _Order, c: _Courier, stacked: bool) -> None:
        o.state = "offered"
        o.rec.offers += 1
        c.offer = o
        self.offers += 1
        rng = np.random.default_rng([self.seed, 7, o.idx, c.idx, o.rec.offers])
        think_ms = round(float(rng.uniform(*self.think_s)) * 1000)
        ttl_ms = round(self.d.offer_ttl_s * 1000)
        accepts = bool(rng.random() < c.c.accept_prob) and think_ms < ttl_ms
        # One int carries both: the courier's index and whether it accepts (lowest bit).
        self.push(now + min(think_ms, ttl_ms), _ANSWER, o.idx, c.idx * 2 + accepts)
        o.rec.stacked = stacked  # the last offer's; only an accepted one is kept

    def answer(self, now: int, i: int, packed: int) -> None:
        o, c, accepts = self.orders[i], self.couriers[packed // 2], bool(packed % 2)
        c.offer = None
        if not accepts:  # declined, or let the offer expire: never offered it again
            o.state = "waiting"
            o.declined.add(c.c.courier_id)
            self.maybe_offline(c, now)
            return
        o.state = "assigned"
        o.rec.assigned_ms = now
        o.rec.courier_id = c.c.courier_id
        del self.waiting[i]
        c.held.append(o)
        self.replan(c, now)

    def courier_of(self, o: _Order) -> _Courier | None:
        if not o.rec.courier_id or o.state not in ("assigned", "picked"):
            return None
        return self.courier_by_id[o.rec.courier_id]

    # -- couriers ---------------------------------------------------------------------------
    def shift_start(self, now: int, k: int, _: int) -> None:
        c = self.couriers[k]
        c.online, c.online_ms = True, now

    def shift_end(self, now: int, k: int, _: int) -> None:
        c = self.couriers[k]
        c.ending = True
        self.maybe_offline(c, now)

    def maybe_offline(self, c: _Courier, now: int) -> None:
        if c.ending and c.online and not c.held and c.offer is None:
            c.online = False
            self.online_total_ms += now - c.online_ms

    def replan(self, c: _Courier, now: int) -> None:
        """An order was accepted: an idle courier sets off; one riding or at a stop goes on,
        and the order joins its open stops (`next_stop`)."""
        if c.target is None and not c.serving:
            c.pos = c.position(now)
            self.ride(c, now)

    @staticmethod
    def next_stop(held: list[_Order], picked: set[_Order], at: tuple[float, float],
                  ) -> _Stop | None:
        """The nearest open stop (a held order's kitchen, or the door of one on board), as
        `homechef simulate`'s courier rides (`api.simulator.agents`); ties by order id."""
        stops = [_Stop(o, o not in picked) for o in held]
        return min(stops, key=lambda s: (haversine_m(*at, *s.at), s.order.o.order_id),
                   default=None)

    def ride(self, c: _Courier, now: int) -> None:
        """Set off to the nearest open stop (or stand idle when there is none)."""
        c.version += 1
        stop = self.next_stop(c.held, {o for o in c.held if o.state == "picked"}, c.pos)
        if stop is None:
            c.target, c.leg = None, None
            self.maybe_offline(c, now)
            return
        c.target = stop
        model_s = self.travel.travel_s(c.pos[0], c.pos[1], stop.at[0], stop.at[1], c.vehicle)
        if not c.picked:
            self.empty_m += haversine_m(*c.pos, *stop.at)
        real_ms = round(model_s * c.c.pace * float(c.noise.lognormal(0.0, self.leg_sigma))
                        * 1000)
        c.leg = (now, now + real_ms, c.pos, stop.at)
        self.push(now + real_ms, _ARRIVE, c.idx, c.version)

    def arrive(self, now: int, k: int, version: int) -> None:
        c = self.couriers[k]
        if version != c.version or c.target is None:
            return
        stop = c.target
        c.pos, c.serving, c.leg = stop.at, True, None
        o = stop.order
        if stop.pickup:
            if o.rec.at_chef_ms is None:
                o.rec.at_chef_ms = now
            if o.o.ready_ms <= now:
                self.pick_up(c, now)
            return  # else: waits for the food (`ready`)
        o.rec.delivered_ms = now
        o.state = "delivered"
        c.held = [h for h in c.held if h is not o]  # it holds it no more: free for offers
        c.picked -= 1
        self.push(now + self.handover_ms, _DEPART, k, c.version)

    def pick_up(self, c: _Courier, now: int) -> None:
        assert c.target is not None
        o = c.target.order
        o.state = "picked"
        c.picked += 1
        o.rec.picked_up_ms = now
        o.rec.predicted_drop_ms = self.predict_drop(c, o, now + self.handover_ms)
        self.push(now + self.handover_ms, _DEPART, c.idx, c.version)

    def depart(self, now: int, k: int, version: int) -> None:
        c = self.couriers[k]
        if version != c.version or c.target is None:
            return
        c.serving = False
        c.target = None
        self.ride(c, now)

    def predict_drop(self, c: _Courier, o: _Order, leave_ms: int) -> int:
        """When the courier's remaining route reaches `o`'s door, on the travel model (what
        an ETA knows: no pace, no noise; food ready at the known time), stop by stop as the
        courier rides them (`next_stop`)."""
        t = leave_ms / 1000.0
        at = c.pos
        picked = {h for h in c.held if h.state == "picked"}
        held = list(c.held)
        while (stop := self.next_stop(held, picked, at)) is not None:
            t += self.model.travel_s(at[0], at[1], stop.at[0], stop.at[1], c.vehicle)
            at = stop.at
            if stop.pickup:
                t = max(t, stop.order.known_ready_ms / 1000.0)
                picked.add(stop.order)
            elif stop.order is o:
                return round(t * 1000)
            else:
                held.remove(stop.order)
            t += self.handover_ms / 1000.0
        return round(t * 1000)  # not reached: `o` is held and on board


def nearest_members(dist_m: FloatArray, eligible: BoolArray, limit: IntArray,
                    radius_m: float) -> IntArray:
    """Per query row, the first `limit[q]` eligible members within `radius_m` by (distance,
    member index), -1 padded to the largest limit (`geo.grid_index.nearest_within`'s
    answer, with members numbered in id order)."""
    width = max(1, int(limit.max(initial=1)))
    masked = np.where(eligible[None, :] & (dist_m <= radius_m), dist_m, np.inf)
    order = np.argsort(masked, axis=1, kind="stable")[:, :width]
    found = np.take_along_axis(masked, order, axis=1)
    keep = np.isfinite(found) & (np.arange(order.shape[1])[None, :] < limit[:, None])
    out = np.full((dist_m.shape[0], width), -1, dtype=np.int64)
    out[:, :order.shape[1]] = np.where(keep, order, -1)
    return out


def simulate_day(day: Day, dispatch: LabDispatch, travel: TravelModel, *,
                 planner: Planner = plan_round, on_round: RoundHook | None = None,
                 progress: Callable[[str], None] | None = None, label: str = "") -> RunResult:
    """Run the day (module docstring). `planner` is production's `plan_round` unless a test
    wraps it; `on_round` sees every round's inputs and plan."""
    return _Sim(day, dispatch, travel, planner, on_round, progress,
                label or dispatch.params.policy).run()

