"""Repositioning hints: where an idle courier should wait for the next orders, pure (issue 19).

Demand is predicted from the recent past (`predict_demand`): the orders accepted in the last
`window_s`, counted by their kitchen's H3 cell (`cell_res`), each weighted by how recent it is
(half-life `half_life_s`), and scaled to the expected orders of the next `horizon_s`. Supply is
the idle couriers per cell. An idle courier takes about `orders_per_courier` of a cell's orders
over the horizon, so a cell needs ``demand / orders_per_courier`` couriers:

    surplus(cell) = supply - demand / orders_per_courier
    deficit(cell) = -surplus(cell)

`reposition_hints` gives each idle courier at most one hint, greedily: the cell with the
largest deficit (at least `min_deficit`) takes the nearest movable courier within
`max_move_m` (and at least `min_move_m` away) whose own cell keeps enough couriers without it
(surplus >= 1); that cell's deficit falls by one courier, the courier's cell's surplus too,
and the cell goes back in line while its deficit is still at least `min_deficit`. So a small
deficit draws one courier, never several, and no courier leaves a cell that would then be
short. A hint says why (the demand and supply of both cells) and what it is worth:
`gain_orders`, the horizon's orders in the target that had no idle courier of their own,
``min(1, deficit) * orders_per_courier``.

Pure: cells, points and numbers in, hints out; the lab (`lab.engine`, ``-repos`` policies)
keeps the accepted orders in memory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from geo.cells import HEAT_RES, cell_center, cell_of
from geo.distance import haversine_m

__all__ = ["IdleCourier", "RepositionHint", "RepositionParams", "predict_demand",
           "reposition_hints"]


class RepositionParams(msgspec.Struct, frozen=True, kw_only=True):
    """How demand is predicted and which moves are worth a hint; finite defaults."""

    cell_res: int = HEAT_RES + 1
    """H3 resolution of demand and supply: res 8 (~0.7 km², 0.5 km edge), one finer than
    the console's heat; at res 7 a hint's target (the cell's centre) can be a kilometre
    from the kitchens that make its demand (docs/lab.md measures both)."""
    window_s: float = 1800.0
    """Orders accepted this long ago or less count toward demand."""
    half_life_s: float = 900.0
    """An order this old counts half as much as one accepted now."""
    horizon_s: float = 900.0
    """Demand is the expected orders of this long ahead."""
    orders_per_courier: float = 2.0
    """Orders of the horizon one idle courier takes (busy couriers free up there too; 2
    measured better than 1 in the lab)."""
    min_deficit: float = 1.0
    """A cell draws couriers only while it lacks at least this many."""
    max_move_m: float = 3000.0
    """No hint farther than this (straight line to the target cell's centre)."""
    min_move_m: float = 300.0
    """No hint nearer than this: the courier is there already."""

    def __post_init__(self) -> None:
        if not 0 <= self.cell_res <= 15:
            raise ValueError("cell_res must be an H3 resolution (0-15)")
        if min(self.window_s, self.half_life_s, self.horizon_s, self.orders_per_courier,
               self.min_deficit) <= 0:
            raise ValueError("window_s, half_life_s, horizon_s, orders_per_courier and "
                             "min_deficit must be > 0")
        if not 0 <= self.min_move_m <= self.max_move_m:
            raise ValueError("0 <= min_move_m <= max_move_m")


class IdleCourier(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    lat: float
    lng: float
    movable: bool = True
    """False: counted as supply where it is (or is heading), but given no hint (already
    following one)."""


class RepositionHint(msgspec.Struct, frozen=True, kw_only=True):
    """Ride to (`lat`, `lng`), the centre of `cell`, and wait there."""

    courier_id: str
    cell: str
    lat: float
    lng: float
    dist_m: float
    demand: float
    """Expected orders in the target cell over the horizon."""
    supply: int
    """Idle couriers in the target cell before any hint."""
    from_cell: str
    from_demand: float
    from_supply: int
    gain_orders: float
    """Orders of the horizon in the target that had no idle courier of their own and this
    courier can take."""


def predict_demand(accepted: Iterable[tuple[int, str]], now_ms: int,
                   params: RepositionParams) -> dict[str, float]:
    """Expected orders per cell over the next `horizon_s`, from (accepted_ms, kitchen cell)
    of past orders: the recency-weighted count of the last `window_s`, scaled so that a
    steady rate predicts itself (weights normalised by the window's total weight)."""
    window_ms = params.window_s * 1000.0
    decay = math.log(2.0) / (params.half_life_s * 1000.0)
    # The integral of the weights over the window: a steady rate r gives r * norm.
    norm_s = (1.0 - math.exp(-decay * window_ms)) / decay / 1000.0
    scale = params.horizon_s / norm_s
    demand: dict[str, float] = {}
    for at_ms, cell in accepted:
        age_ms = now_ms - at_ms
        if 0 <= age_ms <= window_ms:
            demand[cell] = demand.get(cell, 0.0) + math.exp(-decay * age_ms) * scale
    return demand


def reposition_hints(idle: Sequence[IdleCourier], demand: Mapping[str, float],
                     params: RepositionParams) -> list[RepositionHint]:
    """At most one hint per movable idle courier (module docstring), by courier id.

    `demand`: expected orders per cell (`params.cell_res`) over the horizon. Deterministic:
    ties go to the lower cell id, then the nearer courier, then the lower courier id.
    """
    per = params.orders_per_courier
    cells = [cell_of(c.lat, c.lng, params.cell_res) for c in idle]
    supply: dict[str, int] = {}
    for cell in cells:
        supply[cell] = supply.get(cell, 0) + 1
    surplus = {cell: n - demand.get(cell, 0.0) / per for cell, n in supply.items()}
    line = [(-(d / per - supply.get(cell, 0)), cell) for cell, d in demand.items()]
    line = [(neg, cell) for neg, cell in line if -neg >= params.min_deficit]
    heapq.heapify(line)
    centre: dict[str, tuple[float, float]] = {}
    free = [i for i, c in enumerate(idle) if c.movable]
    hints: list[RepositionHint] = []
    while line and free:
        neg, cell = heapq.heappop(line)
        deficit = -neg
        lat, lng = centre.setdefault(cell, cell_center(cell))
        best: tuple[float, str, int] | None = None
        for i in free:
            c = idle[i]
            if cells[i] == cell or surplus[cells[i]] < 1.0:
                continue
            d_m = haversine_m(c.lat, c.lng, lat, lng)
            if params.min_move_m <= d_m <= params.max_move_m and (
                    best is None or (d_m, c.courier_id) < best[:2]):
                best = (d_m, c.courier_id, i)
        if best is None:
            continue  # no courier can go: the cell leaves the line
        d_m, courier_id, i = best
        home = cells[i]
        hints.append(RepositionHint(
            courier_id=courier_id, cell=cell, lat=lat, lng=lng, dist_m=d_m,
            demand=demand[cell], supply=supply.get(cell, 0), from_cell=home,
            from_demand=demand.get(home, 0.0), from_supply=supply[home],
            gain_orders=min(1.0, deficit) * per))
        free.remove(i)
        surplus[home] -= 1.0
        if deficit - 1.0 >= params.min_deficit:
            heapq.heappush(line, (-(deficit - 1.0), cell))
    return sorted(hints, key=lambda h: h.courier_id)
