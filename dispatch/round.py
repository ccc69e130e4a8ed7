"""One matching round, pure: which courier is offered which order (`plan_round`).

A round takes the orders of a region that are due, the couriers a search found near each of
them, and decides the offers: candidate columns per order (the first K idle couriers found
that did not decline it, `dispatch.columns`), couriers heading to a chef that may carry the
order too (`dispatch.stacking`), the costs of each pair (`dispatch.costs`) and the policy —
the optimal assignment (`dispatch.matching.assign_orders`) or the nearest-first baseline
(`greedy_nearest`). The adapter (`api.core.dispatch.service.Dispatcher.run_round`) reads the
inputs, calls `plan_round`, then claims the offers atomically and pushes them.

Where the split sits. `plan_round` starts where the courier search ends: its inputs are the
search's answer — per order, member indices (nearest first) into one table of couriers, one
matrix per courier status — not the search itself. Three reasons:

- the ``live`` search mode *is* I/O (a Redis search per ring), so it cannot be inside;
- the ``snapshot`` search is in memory, but the round interleaves it with I/O: the couriers
  found heading to a chef decide whose held orders to read (one Redis script), and the idle
  couriers are searched while Redis answers. Inside `plan_round` that read would have to wait
  for the whole plan, or the plan be cut in two around it;
- both modes give the same matrices, so the plan does not know (or care) which ran, and a
  replay or a benchmark needs only the matrices (`geo.grid_index.PointGrid` computes them
  offline from positions).

Everything after the search and the reads is here: no I/O, no clock (`RoundInputs.now_ms`).
Same inputs, same plan (the matcher's ties are settled by rule, `dispatch.matching`).
"""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.columns import StackCandidates, candidate_columns
from dispatch.costs import (
    ALL_VEHICLES_MASK,
    CandidateCosts,
    CostParams,
    Couriers,
    HaversinePairTravel,
    Orders,
    PairTravelModel,
    candidate_costs,
    vehicle_code,
)
from dispatch.matching import assign_orders, greedy_nearest
from dispatch.stacking import StackedCourier, StackOrder, stack_cost_s
from geo.travel import HaversineTravelModel, TravelModel, Vehicle

__all__ = [
    "HeldOrders",
    "Offer",
    "Policy",
    "RoundCouriers",
    "RoundInputs",
    "RoundOrder",
    "RoundParams",
    "RoundPlan",
    "parse_vehicle",
    "plan_round",
    "stack_candidates",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Policy = Literal["optimal", "greedy"]
_NO_DECLINES: frozenset[str] = frozenset()


class RoundOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order waiting for a courier (or one a stacked courier holds)."""

    order_id: str
    chef: str = ""
    """Who cooks it ('' unknown: the pickup point then stands for the chef)."""
    pickup_lat: float
    pickup_lng: float
    dropoff_lat: float
    dropoff_lng: float
    ready_ms: int
    """Epoch ms UTC when the food is expected ready."""
    promised_ms: int
    """Epoch ms UTC promised to the customer."""
    declined: frozenset[str] = _NO_DECLINES
    """Couriers that declined it (or let its offer expire): never offered it again."""


class RoundCouriers(msgspec.Struct, frozen=True, kw_only=True):
    """The table of couriers the search's member indices point into (struct of arrays)."""

    ids: list[str]
    lat: FloatArray
    lng: FloatArray
    vehicle: list[str]
    """As stored ('bike', 'scooter', 'car'); '' or unknown counts as a bike. Read only for
    the couriers that become candidates, so the adapter may leave others ''."""


class HeldOrders(msgspec.Struct, frozen=True, kw_only=True):
    """A courier heading to a chef that may take one more order: no open offer, room in its
    stack, every held order still assigned to it (the adapter's read says so)."""

    courier_id: str
    """One of `RoundCouriers.ids` (its position is read there)."""
    vehicle: str
    """As `RoundCouriers.vehicle`."""
    orders: tuple[RoundOrder, ...]
    """What it holds, none picked up yet, sorted by order id."""


class RoundInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What one round knows: the orders, what the search found near them, and the time."""

    orders: list[RoundOrder]
    """The region's due, waiting orders, oldest first."""
    couriers: RoundCouriers
    idle: IntArray
    """Per order, idle couriers within reach as indices into `couriers`, nearest first (ties
    by id), -1 padded; shape (len(orders), width). Width at least K + that order's declines,
    so K remain once the decliners are skipped."""
    to_pickup: IntArray | None = None
    """As `idle`, for couriers heading to a chef (None: stacking not searched)."""
    stacks: tuple[HeldOrders, ...] = ()
    """Of the couriers in `to_pickup`, those that may stack, with what they hold."""
    now_ms: int
    """The round's clock, epoch ms UTC."""


class RoundParams(msgspec.Struct, frozen=True, kw_only=True):
    """How a round decides; every field has a finite default."""

    policy: Policy = "optimal"
    """``optimal``: minimum total cost (`assign_orders`); ``greedy``: the nearest-first
    baseline (`greedy_nearest`), kept for comparisons."""
    candidates: int = 12
    """K: idle couriers considered per order (nearest first, decliners skipped)."""
    max_stack: int = 2
    """Orders a courier may carry at once; below 2, no stacking."""
    unassigned_penalty_s: float = 1800.0
    """Cost of leaving an order for a later round; dearer pairs are never offered."""
    costs: CostParams = msgspec.field(default_factory=CostParams)
    commit_early_s: float | None = None
    """Wait for a better courier: an idle courier is offered an order only when it would
    reach the chef at most this long before the food is ready; an earlier one stays free
    (it may serve another order first, and a nearer courier may free up) and the order waits
    a round. None: any courier that costs less than the penalty is offered
    (`DISPATCH_COMMIT_EARLY_S`)."""
    stack_max_delay_s: float | None = None
    """Stacking by the delay it imposes: an order may join a courier's stack only when no
    held order's drop-off moves later by more than this (`dispatch.stacking`). None: any
    delay, priced in the cost (`DISPATCH_STACK_MAX_DELAY_S`)."""
    travel: TravelModel = msgspec.field(default_factory=HaversineTravelModel)
    """Travel times of stacking's insertions (and, in pairwise form, of the costs)."""
    pairs: PairTravelModel | None = None
    """The costs' pairwise travel times: a road model passes itself; None: the straight-line
    model's pairwise form (`HaversinePairTravel`), `travel` then being that model."""

    def __post_init__(self) -> None:
        if self.pairs is None:
            if not isinstance(self.travel, HaversineTravelModel):
                raise ValueError("RoundParams.pairs is required with a travel model other "
                                 "than HaversineTravelModel")
            msgspec.structs.force_setattr(self, "pairs", HaversinePairTravel(self.travel))

    def pair_travel(self) -> PairTravelModel:
        """`pairs`, never None once built."""
        assert self.pairs is not None  # set by __post_init__
        return self.pairs


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    """One offer to make: what the claim and the OFFER message need."""

    order_id: str
    courier_id: str
    stacked: bool = False
    """The courier already holds `held`: the order would be carried alongside them."""
    held: tuple[str, ...] = ()
    """For a stacked courier, the orders it holds (the claim is refused if they changed)."""
    pickup_lat: float
    pickup_lng: float
    dropoff_lat: float
    dropoff_lng: float
    ready_ms: int


class RoundPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a round decided."""

    offers: list[Offer]
    """In the order of `RoundInputs.orders`; no courier and no order twice."""
    unassigned: list[str]
    """Orders left for a later round (no feasible courier, or cheaper to wait)."""
    n_couriers: int
    """Couriers considered (matching columns: idle, then stacked); 0 when none was in
    reach, and the round did nothing."""
    total_cost_s: float = 0.0
    """Sum of the offers' costs and of the unassigned orders' penalties."""


def parse_vehicle(raw: str) -> Vehicle:
    """A stored vehicle name; unknown or missing ones count as a bike (the slowest)."""
    try:
        return Vehicle(raw)
    except ValueError:
        return Vehicle.BIKE


def _stack_order(o: RoundOrder) -> StackOrder:
    return StackOrder(order_id=o.order_id, chef=o.chef or f"{o.pickup_lat},{o.pickup_lng}",
                      pickup=(o.pickup_lat, o.pickup_lng),
                      dropoff=(o.dropoff_lat, o.dropoff_lng),
                      ready_at_s=o.ready_ms / 1000.0, promised_at_s=o.promised_ms / 1000.0)


def stack_candidates(inputs: RoundInputs, params: RoundParams) -> StackCandidates:
    """Couriers heading to a chef that may take one of these orders too (see
    `dispatch.stacking`), with the added travel as the matching cost: for each order, its
    `to_pickup` couriers that are in `inputs.stacks` and did not decline it."""
    orders, to_pickup = inputs.orders, inputs.to_pickup
    out = StackCandidates(len(orders))
    max_stack = params.max_stack
    if max_stack < 2 or not orders or to_pickup is None or not inputs.stacks:
        return out
    ids = inputs.couriers.ids
    lat, lng = inputs.couriers.lat, inputs.couriers.lng
    index = {cid: i for i, cid in enumerate(ids)}
    couriers: dict[str, tuple[StackedCourier, tuple[str, ...]]] = {}
    for s in inputs.stacks:
        at = index[s.courier_id]
        couriers[s.courier_id] = (StackedCourier(
            position=(float(lat[at]), float(lng[at])), vehicle=parse_vehicle(s.vehicle),
            held=tuple(_stack_order(o) for o in s.orders)),
            tuple(o.order_id for o in s.orders))
    now_s = inputs.now_ms / 1000.0
    service_s, lateness_weight = params.costs.service_s, params.costs.lateness_weight
    near = np.isin(to_pickup, np.asarray([index[cid] for cid in couriers], dtype=np.int64))
    for i in np.flatnonzero(near.any(axis=1)).tolist():  # orders near an eligible one
        new = _stack_order(orders[i])
        dec = orders[i].declined
        for m in to_pickup[i].tolist():
            if m < 0:
                continue
            member_id = ids[m]
            c = couriers.get(member_id)
            if c is None or member_id in dec:
                continue
            cost_s = stack_cost_s(c[0], new, now_s=now_s, max_stack=max_stack,
                                  service_s=service_s, travel=params.travel,
                                  lateness_weight=lateness_weight,
                                  max_delay_s=params.stack_max_delay_s)
            if cost_s is not None:
                out.add(i, member_id, c[1], cost_s)
    return out


def _f64(values: list[float]) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _hold_early(costs: CandidateCosts, ready_at_s: FloatArray, now_s: float,
                early_s: float) -> CandidateCosts:
    """`costs` without the pairs whose courier would reach the chef more than `early_s`
    before the food is ready (`RoundParams.commit_early_s`)."""
    early = ready_at_s[:, None] - (now_s + costs.travel_s) > early_s
    return msgspec.structs.replace(costs, cost_s=np.where(early, np.inf, costs.cost_s))


def plan_round(inputs: RoundInputs, params: RoundParams) -> RoundPlan:
    """The offers of one round (module docstring).

    Idle couriers are columns in order of first appearance in the candidate lists, stacked
    couriers after them; the chosen policy assigns each order at most one column, and each
    column at most one order. An order whose only candidates cost more than
    `params.unassigned_penalty_s` (or that has none) is left unassigned.
    """
    orders = inputs.orders
    declined = [o.declined for o in orders]
    members = inputs.couriers
    cand, cols = candidate_columns(inputs.idle, declined, members.ids, params.candidates)
    stacked = stack_candidates(inputs, params)
    col_list = cols.tolist()
    n_idle = len(col_list)
    if not orders or (not n_idle and not len(stacked)):
        return RoundPlan(offers=[], unassigned=[o.order_id for o in orders], n_couriers=0)
    vehicle_names = [members.vehicle[c] for c in col_list]
    codes = {v: vehicle_code(parse_vehicle(v)) for v in set(vehicle_names)}
    now_s = inputs.now_ms / 1000.0
    order_arrays = Orders(
        chef_lat=_f64([o.pickup_lat for o in orders]),
        chef_lng=_f64([o.pickup_lng for o in orders]),
        drop_lat=_f64([o.dropoff_lat for o in orders]),
        drop_lng=_f64([o.dropoff_lng for o in orders]),
        ready_at_s=_f64([o.ready_ms / 1000.0 for o in orders]),
        promised_at_s=_f64([o.promised_ms / 1000.0 for o in orders]),
        allowed_vehicles=np.full(len(orders), ALL_VEHICLES_MASK, dtype=np.int64),
    )
    courier_arrays = Couriers(
        lat=members.lat[cols], lng=members.lng[cols],
        vehicle_code=np.asarray([codes[v] for v in vehicle_names], dtype=np.int64),
        available_at_s=np.full(n_idle, now_s, dtype=np.float64),
    )
    idle_costs = candidate_costs(order_arrays, courier_arrays, cand, now_s=now_s,
                                 params=params.costs, travel=params.pair_travel())
    if params.commit_early_s is not None:
        idle_costs = _hold_early(idle_costs, order_arrays.ready_at_s, now_s,
                                 params.commit_early_s)
    costs = stacked.append_to(idle_costs)
    penalty_s = params.unassigned_penalty_s
    if params.policy == "greedy":
        assignment = greedy_nearest(costs, ready_at_s=order_arrays.ready_at_s,
                                    unassigned_penalty_s=penalty_s)
    else:
        assignment = assign_orders(costs, unassigned_penalty_s=penalty_s)
    offers: list[Offer] = []
    unassigned: list[str] = []
    for i, j in enumerate(assignment.courier_idx.tolist()):
        o = orders[i]
        if j < 0:
            unassigned.append(o.order_id)
            continue
        if j < n_idle:
            courier_id, held, is_stacked = members.ids[col_list[j]], (), False
        else:  # a courier heading to a chef, one more order (stacking)
            column = stacked.columns[j - n_idle]
            courier_id, held, is_stacked = column.courier_id, column.held, True
        offers.append(Offer(order_id=o.order_id, courier_id=courier_id, stacked=is_stacked,
                            held=held, pickup_lat=o.pickup_lat, pickup_lng=o.pickup_lng,
                            dropoff_lat=o.dropoff_lat, dropoff_lng=o.dropoff_lng,
                            ready_ms=o.ready_ms))
    return RoundPlan(offers=offers, unassigned=unassigned, n_couriers=costs.n_couriers,
                     total_cost_s=assignment.total_cost_s)
