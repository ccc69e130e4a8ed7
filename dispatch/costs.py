"""Cost of giving an order to a courier, in seconds, for one matching round (docs/dispatch.md).

Pure: plain numpy arrays in and out, no I/O, no clock (the round's `now_s` is passed in).

For order i and courier j with vehicle v (all times in seconds on the round's clock):

    start_s     = max(now_s, available_at_s[j])        courier is free from here, at (lat, lng)
    travel_s    = travel(courier j -> chef i, v)
    arrive_s    = start_s + travel_s
    wait_s      = max(0, ready_at_s[i] - arrive_s)      courier idles at the chef
    delivered_s = max(arrive_s, ready_at_s[i]) + service_s + travel(chef i -> drop-off i, v)
    late_s      = max(0, delivered_s - promised_at_s[i])
                  (with `late_added_only`: beyond max(start_s, ready_at_s[i]) + the same
                  service and ride, the lateness no courier could avoid)
    cost_s      = travel_weight * travel_s + wait_weight * wait_s + lateness_weight * late_s

A pair is infeasible (cost +inf) when the order does not allow the courier's vehicle, when the
vehicle is a bike and the chef -> drop-off distance exceeds `max_bike_delivery_m`, or when
`travel_s > max_pickup_travel_s`.

Two layouts: `candidate_costs` (for each order only the K couriers the caller's H3 k-ring search
returned; what a round uses) and `dense_costs` (every order x every courier; tests and the
full-matrix reference in the benchmark). Both evaluate the same element-wise function on
gathered 1-D arrays, so a pair gets bit-identical costs in either layout.
"""

from __future__ import annotations

from typing import Protocol

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec.structs import force_setattr

from geo.distance import EARTH_RADIUS_M
from geo.travel import HaversineTravelModel, Vehicle

__all__ = [
    "ALL_VEHICLES_MASK",
    "VEHICLES",
    "CandidateCosts",
    "CostParams",
    "Couriers",
    "HaversinePairTravel",
    "Orders",
    "PairTravelModel",
    "candidate_costs",
    "dense_costs",
    "effective_vehicle_mask",
    "outside_cost_lower_bound_s",
    "pricing_radius_m",
    "vehicle_code",
    "vehicle_mask",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Couriers carry a small integer vehicle code (index into this tuple) so that per-pair vehicle
# look-ups are array indexing; orders carry a bitmask over the same codes.
VEHICLES: tuple[Vehicle, ...] = tuple(Vehicle)
ALL_VEHICLES_MASK = (1 << len(VEHICLES)) - 1
_BIKE_BIT = 1 << VEHICLES.index(Vehicle.BIKE)


def vehicle_code(vehicle: Vehicle) -> int:
    """The integer code of a vehicle type, as stored in `Couriers.vehicle_code`."""
    return VEHICLES.index(vehicle)


def vehicle_mask(*vehicles: Vehicle) -> int:
    """Bitmask of allowed vehicle types, as stored in `Orders.allowed_vehicles`."""
    mask = 0
    for v in vehicles:
        mask |= 1 << vehicle_code(v)
    return mask


def _as_1d(
    owner: msgspec.Struct, name: str, dtype: type[np.generic], n: int | None
) -> int:
    """Coerce field `name` to a 1-D array of `dtype`; return its length (checked against n)."""
    arr = np.ascontiguousarray(getattr(owner, name), dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{type(owner).__name__}.{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{type(owner).__name__}.{name} has {arr.shape[0]} rows, expected {n}")
    force_setattr(owner, name, arr)
    return int(arr.shape[0])


class Orders(msgspec.Struct, frozen=True, kw_only=True):
    """Orders waiting for a courier in one round; one row per order (struct of arrays)."""

    chef_lat: FloatArray
    chef_lng: FloatArray
    drop_lat: FloatArray
    drop_lng: FloatArray
    ready_at_s: FloatArray
    """When the chef expects the food to be ready (round clock, seconds)."""
    promised_at_s: FloatArray
    """Delivery time promised to the customer (round clock, seconds)."""
    allowed_vehicles: npt.NDArray[np.int64]
    """Bitmask over `VEHICLES` codes (see `vehicle_mask`), e.g. car-only for large orders."""

    def __post_init__(self) -> None:
        n = _as_1d(self, "chef_lat", np.float64, None)
        for name in ("chef_lng", "drop_lat", "drop_lng", "ready_at_s", "promised_at_s"):
            _as_1d(self, name, np.float64, n)
        _as_1d(self, "allowed_vehicles", np.int64, n)

    def __len__(self) -> int:
        return int(self.chef_lat.shape[0])


class Couriers(msgspec.Struct, frozen=True, kw_only=True):
    """Candidate couriers of one round; one row per courier (struct of arrays)."""

    lat: FloatArray
    """Where the courier is when it becomes free (its drop-off if it is finishing one)."""
    lng: FloatArray
    vehicle_code: npt.NDArray[np.int64]
    """Index into `VEHICLES`."""
    available_at_s: FloatArray
    """When the courier is free to take a new order (<= now for idle couriers)."""

    def __post_init__(self) -> None:
        n = _as_1d(self, "lat", np.float64, None)
        _as_1d(self, "lng", np.float64, n)
        _as_1d(self, "vehicle_code", np.int64, n)
        _as_1d(self, "available_at_s", np.float64, n)
        codes = self.vehicle_code
        if codes.size and (codes.min() < 0 or codes.max() >= len(VEHICLES)):
            raise ValueError("Couriers.vehicle_code must index VEHICLES")

    def __len__(self) -> int:
        return int(self.lat.shape[0])


class CostParams(msgspec.Struct, frozen=True, kw_only=True):
    """Weights and limits of the cost model; every field has a finite default."""

    travel_weight: float = 1.0
    """Per second the courier rides to the chef."""
    wait_weight: float = 0.5
    """Per second the courier idles at the chef (0 turns the idle-wait cost off). Below 1 on
    purpose: at 1, travel + wait = ready_at - start for every courier that arrives early, so the
    matcher could not tell a courier 1 min away from one 14 min away for food ready in 15 min."""
    lateness_weight: float = 3.0
    """Per second delivered after the promised time."""
    service_s: float = 120.0
    """Hand-over time at the chef plus at the customer's door."""
    late_added_only: bool = False
    """Charge only the lateness a courier adds: beyond the order's delivery had it been
    picked up at max(now, ready) by that vehicle. An order already past saving is then still
    offered; charged in full (False), an order that is late by more than
    `unassigned_penalty_s / lateness_weight` whoever takes it is never offered
    (docs/lab.md; `DISPATCH_LATE_ADDED_ONLY`)."""
    max_pickup_travel_s: float = 1200.0
    """Pairs whose ride to the chef is longer are infeasible."""
    max_bike_delivery_m: float = 4000.0
    """Bikes are not allowed when the chef -> drop-off straight-line distance is longer."""

    def __post_init__(self) -> None:
        weights = (self.travel_weight, self.wait_weight, self.lateness_weight)
        if min(weights) < 0 or not all(np.isfinite(weights)):
            raise ValueError("cost weights must be finite and >= 0")
        if self.service_s < 0 or self.max_pickup_travel_s < 0 or self.max_bike_delivery_m < 0:
            raise ValueError("service_s and the limits must be >= 0")


class PairTravelModel(Protocol):
    """Element-wise travel times (the pairwise form the sparse cost matrix needs).

    Implementations must be pure and deterministic, and must broadcast like numpy ufuncs.
    """

    def travel_pairs_s(
        self,
        lat_a: FloatArray,
        lng_a: FloatArray,
        lat_b: FloatArray,
        lng_b: FloatArray,
        vehicle_code: npt.NDArray[np.int64],
    ) -> FloatArray:
        """Seconds from point a[k] to point b[k] by vehicle vehicle_code[k]."""
        ...

    def travel_lower_bound_s(
        self, dist_m: FloatArray, vehicle_code: npt.NDArray[np.int64]
    ) -> FloatArray:
        """A lower bound on `travel_pairs_s` between two points dist_m apart (great circle)."""
        ...


def _haversine_pairs_m(
    lat_a: FloatArray, lng_a: FloatArray, lat_b: FloatArray, lng_b: FloatArray
) -> FloatArray:
    """Element-wise great-circle distance; geo.distance has only the scalar and the matrix form.

    Same formula and Earth radius as `geo.distance.haversine_m`.
    """
    p1 = np.radians(lat_a)
    p2 = np.radians(lat_b)
    dl = np.radians(lng_b - lng_a)
    a = np.sin((p2 - p1) * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl * 0.5) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a))))


class HaversinePairTravel:
    """`geo.travel.HaversineTravelModel` (haversine x circuity / speed) in pairwise form."""

    __slots__ = ("_s_per_m",)

    def __init__(self, model: HaversineTravelModel | None = None) -> None:
        model = HaversineTravelModel() if model is None else model
        # Same factor order as HaversineTravelModel.travel_matrix_s: dist * (circuity / speed).
        self._s_per_m = np.array([model.circuity / model.speeds_mps[v] for v in VEHICLES])

    def travel_pairs_s(
        self,
        lat_a: FloatArray,
        lng_a: FloatArray,
        lat_b: FloatArray,
        lng_b: FloatArray,
        vehicle_code: npt.NDArray[np.int64],
    ) -> FloatArray:
        dist_m = _haversine_pairs_m(lat_a, lng_a, lat_b, lng_b)
        return np.asarray(dist_m * self._s_per_m[vehicle_code])

    def travel_lower_bound_s(
        self, dist_m: FloatArray, vehicle_code: npt.NDArray[np.int64]
    ) -> FloatArray:
        return np.asarray(np.asarray(dist_m) * self._s_per_m[vehicle_code])


class CandidateCosts(msgspec.Struct, frozen=True, kw_only=True):
    """Sparse cost matrix: row i lists the couriers considered for order i (padded with -1).

    `cost_s` is +inf for infeasible pairs and for padding; `travel_s` is the ride to the chef
    (the greedy baseline ranks by it). All three arrays have shape (n_orders, K).
    """

    courier_idx: npt.NDArray[np.int64]
    cost_s: FloatArray
    travel_s: FloatArray
    n_couriers: int
    """Size of the courier index space (couriers are numbered 0..n_couriers-1)."""

    def __post_init__(self) -> None:
        idx = np.ascontiguousarray(self.courier_idx, dtype=np.int64)
        cost = np.ascontiguousarray(self.cost_s, dtype=np.float64)
        travel = np.ascontiguousarray(self.travel_s, dtype=np.float64)
        if idx.ndim != 2 or cost.shape != idx.shape or travel.shape != idx.shape:
            raise ValueError("courier_idx, cost_s and travel_s must share one 2-D shape")
        if idx.size and (idx.min() < -1 or idx.max() >= self.n_couriers):
            raise ValueError("courier_idx entries must be -1 or in [0, n_couriers)")
        force_setattr(self, "courier_idx", idx)
        force_setattr(self, "cost_s", cost)
        force_setattr(self, "travel_s", travel)

    @property
    def n_orders(self) -> int:
        return int(self.courier_idx.shape[0])

    @classmethod
    def from_dense(
        cls, cost_s: npt.ArrayLike, travel_s: npt.ArrayLike | None = None
    ) -> CandidateCosts:
        """Every courier a candidate of every order (tests: check sparse against dense)."""
        cost = np.asarray(cost_s, dtype=np.float64)
        n, m = cost.shape
        travel = cost if travel_s is None else np.asarray(travel_s, dtype=np.float64)
        idx = np.broadcast_to(np.arange(m, dtype=np.int64), (n, m))
        return cls(courier_idx=idx, cost_s=cost, travel_s=travel, n_couriers=m)


class _Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """Per-order and per-courier terms computed once per round, then gathered per pair."""

    mask: npt.NDArray[np.int64]  # allowed vehicles after the bike-distance rule
    deliver_s: FloatArray  # (n_orders, n_vehicles): chef -> drop-off ride per vehicle
    start_s: FloatArray  # (n_couriers,)


def _order_terms(
    orders: Orders,
    params: CostParams,
    travel: PairTravelModel,
    needed: tuple[IntArray, IntArray] | None = None,
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """(allowed-vehicle mask after the bike-distance rule, chef -> drop-off ride per vehicle).

    With `needed` = (order_idx, code), only those cells of the ride are asked of `travel`
    (the others are +inf): on roads every cell is a road query, and a round needs only the
    vehicles its candidates ride, where they are allowed and the pickup is feasible."""
    n, n_vehicles = len(orders), len(VEHICLES)
    mask = effective_vehicle_mask(orders, params)
    if needed is None:
        codes = np.broadcast_to(np.arange(n_vehicles, dtype=np.int64), (n, n_vehicles))

        def per_vehicle(x: FloatArray) -> FloatArray:
            return np.broadcast_to(x[:, None], (n, n_vehicles))

        deliver_s = travel.travel_pairs_s(
            per_vehicle(orders.chef_lat),
            per_vehicle(orders.chef_lng),
            per_vehicle(orders.drop_lat),
            per_vehicle(orders.drop_lng),
            codes,
        )
        return mask, deliver_s
    deliver_s = np.full((n, n_vehicles), np.inf)
    cells = np.unique(needed[0] * n_vehicles + needed[1])
    rows, codes = cells // n_vehicles, cells % n_vehicles
    if cells.size:
        deliver_s[rows, codes] = travel.travel_pairs_s(
            orders.chef_lat[rows], orders.chef_lng[rows], orders.drop_lat[rows],
            orders.drop_lng[rows], codes)
    return mask, deliver_s


def effective_vehicle_mask(orders: Orders, params: CostParams) -> npt.NDArray[np.int64]:
    """Allowed-vehicle bitmask per order after the bike-distance rule; candidate searches
    should return only couriers whose `1 << vehicle_code` is in it."""
    delivery_m = _haversine_pairs_m(
        orders.chef_lat, orders.chef_lng, orders.drop_lat, orders.drop_lng
    )
    too_far = delivery_m > params.max_bike_delivery_m
    mask = np.where(too_far, orders.allowed_vehicles & ~_BIKE_BIT, orders.allowed_vehicles)
    return mask.astype(np.int64)


def _prepare(
    orders: Orders, couriers: Couriers, now_s: float, params: CostParams, travel: PairTravelModel
) -> _Prepared:
    mask, deliver_s = _order_terms(orders, params, travel)
    start_s = np.maximum(float(now_s), couriers.available_at_s)
    return _Prepared(mask=mask, deliver_s=deliver_s, start_s=start_s)


def _pickup_s(
    orders: Orders,
    couriers: Couriers,
    order_idx: IntArray,
    courier_idx: IntArray,
    travel: PairTravelModel,
) -> FloatArray:
    """The ride of courier courier_idx[k] to the chef of order order_idx[k]."""
    return travel.travel_pairs_s(
        couriers.lat[courier_idx],
        couriers.lng[courier_idx],
        orders.chef_lat[order_idx],
        orders.chef_lng[order_idx],
        couriers.vehicle_code[courier_idx],
    )


def _pair_costs(
    orders: Orders,
    couriers: Couriers,
    prep: _Prepared,
    order_idx: IntArray,
    courier_idx: IntArray,
    params: CostParams,
    travel_s: FloatArray,
) -> FloatArray:
    """cost_s for the pairs (order_idx[k], courier_idx[k]) whose pickup rides are
    travel_s[k], 1-D gathered arrays."""
    code = couriers.vehicle_code[courier_idx]
    allowed = (prep.mask[order_idx] >> code) & 1
    feasible = (allowed == 1) & (travel_s <= params.max_pickup_travel_s)
    ready_s = orders.ready_at_s[order_idx]
    arrive_s = prep.start_s[courier_idx] + travel_s
    pickup_s = np.maximum(arrive_s, ready_s)
    # An infeasible pair may have no delivery ride (candidate_costs asks only the feasible
    # ones): keep its inf out of the arithmetic, its cost is inf anyway.
    deliver_s = params.service_s + np.where(feasible, prep.deliver_s[order_idx, code], 0.0)
    delivered_s = pickup_s + deliver_s
    due_s = orders.promised_at_s[order_idx]
    if params.late_added_only:  # the lateness an instant pickup would have is excused
        due_s = np.maximum(due_s, np.maximum(prep.start_s[courier_idx], ready_s) + deliver_s)
    late_s = np.maximum(0.0, delivered_s - due_s)
    cost_s = (
        params.travel_weight * travel_s
        + params.wait_weight * (pickup_s - arrive_s)
        + params.lateness_weight * late_s
    )
    return np.asarray(np.where(feasible, cost_s, np.inf))


def candidate_costs(
    orders: Orders,
    couriers: Couriers,
    candidates: npt.ArrayLike,
    *,
    now_s: float,
    params: CostParams,
    travel: PairTravelModel,
) -> CandidateCosts:
    """Costs of the caller's candidate couriers: `candidates[i]` lists courier indices for
    order i, padded with -1 (shape (n_orders, K); K may be 0)."""
    idx = np.asarray(candidates, dtype=np.int64)
    n = len(orders)
    if idx.ndim != 2 or idx.shape[0] != n:
        raise ValueError(f"candidates must have shape (n_orders={n}, K), got {idx.shape}")
    if idx.size and (idx.min() < -1 or idx.max() >= len(couriers)):
        raise ValueError("candidate courier indices must be -1 or in [0, n_couriers)")
    cost = np.full(idx.shape, np.inf)
    travel_s = np.full(idx.shape, np.inf)
    rows, slots = np.nonzero(idx >= 0)
    if rows.size:
        # Pickup rides first, then the delivery rides of the feasible pairs only (each is a
        # road query when the model rides the roads).
        cols = idx[rows, slots]
        t = _pickup_s(orders, couriers, rows, cols, travel)
        code = couriers.vehicle_code[cols]
        mask = effective_vehicle_mask(orders, params)
        want = (((mask[rows] >> code) & 1) == 1) & (t <= params.max_pickup_travel_s)
        deliver_mask, deliver_s = _order_terms(orders, params, travel,
                                               needed=(rows[want], code[want]))
        prep = _Prepared(mask=deliver_mask, deliver_s=deliver_s,
                         start_s=np.maximum(float(now_s), couriers.available_at_s))
        cost[rows, slots] = _pair_costs(orders, couriers, prep, rows, cols, params, t)
        travel_s[rows, slots] = t
    return CandidateCosts(courier_idx=idx, cost_s=cost, travel_s=travel_s,
                          n_couriers=len(couriers))


def dense_costs(
    orders: Orders,
    couriers: Couriers,
    *,
    now_s: float,
    params: CostParams,
    travel: PairTravelModel,
    chunk_pairs: int = 1 << 20,
) -> FloatArray:
    """Full (n_orders, n_couriers) cost matrix, built in row chunks of ~chunk_pairs pairs so
    the temporaries stay small (2,000 x 10,000 float64 is 160 MB by itself)."""
    n, m = len(orders), len(couriers)
    out = np.empty((n, m), dtype=np.float64)
    if n == 0 or m == 0:
        return out
    prep = _prepare(orders, couriers, now_s, params, travel)
    rows_per_chunk = max(1, chunk_pairs // m)
    all_couriers = np.arange(m, dtype=np.int64)
    for r0 in range(0, n, rows_per_chunk):
        r1 = min(n, r0 + rows_per_chunk)
        order_idx = np.repeat(np.arange(r0, r1, dtype=np.int64), m)
        courier_idx = np.tile(all_couriers, r1 - r0)
        t = _pickup_s(orders, couriers, order_idx, courier_idx, travel)
        c = _pair_costs(orders, couriers, prep, order_idx, courier_idx, params, t)
        out[r0:r1] = c.reshape(r1 - r0, m)
    return out


def outside_cost_lower_bound_s(
    orders: Orders,
    min_dist_m: npt.ArrayLike,
    *,
    now_s: float,
    latest_start_s: float,
    params: CostParams,
    travel: PairTravelModel,
) -> FloatArray:
    """Per order, a lower bound on the cost of ANY courier at least `min_dist_m[i]` metres
    (great circle) from the chef that is free by `latest_start_s` (>= now_s).

    The candidate search uses it to prove that couriers it did not return cannot lower the
    optimum (see `dispatch.matching.certify_candidates`). Each term is bounded on its own:
    travel >= the fastest allowed vehicle's time over min_dist_m; idle wait >= what is left
    until ready_at after starting at latest_start_s and riding that fast (valid because
    travel_weight >= wait_weight makes travel + wait non-decreasing in the ride; otherwise the
    wait term is dropped); lateness >= arriving no earlier than now_s + that ride and riding to
    the drop-off with the fastest allowed vehicle. +inf where every such courier is infeasible.
    """
    if latest_start_s < now_s:
        raise ValueError("latest_start_s must be >= now_s")
    return _OutsideBound(orders, params, travel)(min_dist_m, now_s, latest_start_s)


class _OutsideBound:
    """`outside_cost_lower_bound_s` with the per-order terms (allowed vehicles, delivery ride
    per vehicle: haversine work) computed once, so the pricing bisection redoes only the
    cheap part."""

    __slots__ = ("_allowed", "_deliver_s", "_orders", "_params", "_travel")

    def __init__(self, orders: Orders, params: CostParams, travel: PairTravelModel) -> None:
        mask, deliver_by_vehicle_s = _order_terms(orders, params, travel)
        self._allowed = [((mask >> code) & 1) == 1 for code in range(len(VEHICLES))]
        n = len(orders)
        deliver_s = np.full(n, np.inf)
        for code, allowed in enumerate(self._allowed):
            deliver_s = np.where(allowed, np.minimum(deliver_s, deliver_by_vehicle_s[:, code]),
                                 deliver_s)
        self._orders, self._params, self._travel = orders, params, travel
        self._deliver_s = deliver_s

    def __call__(self, min_dist_m: npt.ArrayLike, now_s: float,
                 latest_start_s: float) -> FloatArray:
        orders, params = self._orders, self._params
        n = len(orders)
        dist_m = np.broadcast_to(np.asarray(min_dist_m, dtype=np.float64), (n,))
        ride_s = np.full(n, np.inf)
        for code, allowed in enumerate(self._allowed):
            ride_lb_s = self._travel.travel_lower_bound_s(dist_m, np.full(n, code, np.int64))
            ride_s = np.where(allowed, np.minimum(ride_s, ride_lb_s), ride_s)
        feasible = np.isfinite(ride_s) & (ride_s <= params.max_pickup_travel_s)
        ride_s = np.where(feasible, ride_s, 0.0)  # keep inf out of the arithmetic below
        deliver_s = np.where(feasible, self._deliver_s, 0.0)
        wait_s = np.maximum(0.0, orders.ready_at_s - (latest_start_s + ride_s))
        if params.travel_weight < params.wait_weight:
            wait_s = np.zeros_like(wait_s)
        pickup_s = np.maximum(now_s + ride_s, orders.ready_at_s)
        late_s = np.maximum(0.0, pickup_s + params.service_s + deliver_s - orders.promised_at_s)
        if params.late_added_only:  # what a courier adds can be 0: no bound from lateness
            late_s = np.zeros_like(late_s)
        bound = (
            params.travel_weight * ride_s
            + params.wait_weight * wait_s
            + params.lateness_weight * late_s
        )
        return np.where(feasible, bound, np.inf)


def pricing_radius_m(
    orders: Orders,
    price_s: npt.ArrayLike,
    *,
    now_s: float,
    latest_start_s: float,
    params: CostParams,
    travel: PairTravelModel,
    tolerance_m: float = 1.0,
) -> FloatArray:
    """Per order, a radius beyond which every courier costs at least `price_s[i]`.

    Search all couriers within it and add them as candidates when `certify_candidates` could
    not prove order i; the bound is non-decreasing in the distance, so bisection finds it.
    """
    price = np.asarray(price_s, dtype=np.float64)
    n = len(orders)
    one_m = np.ones(len(VEHICLES))
    fastest_s_per_m = float(np.min(travel.travel_lower_bound_s(one_m, np.arange(len(VEHICLES)))))
    if fastest_s_per_m <= 0:
        raise ValueError("the travel model's lower bound must grow with distance")
    # Past the fastest vehicle's longest allowed pickup ride every courier is infeasible.
    hi = np.full(n, params.max_pickup_travel_s / fastest_s_per_m + 1.0)
    lo = np.zeros(n)

    if latest_start_s < now_s:
        raise ValueError("latest_start_s must be >= now_s")
    outside = _OutsideBound(orders, params, travel)

    def bound(d: FloatArray) -> FloatArray:
        return outside(d, now_s, latest_start_s)

    done = bound(lo) >= price
    hi = np.where(done, 0.0, hi)
    while np.any(hi - lo > tolerance_m):
        mid = 0.5 * (lo + hi)
        ok = bound(mid) >= price
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return hi
