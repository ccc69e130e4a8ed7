"""Repositioning hints (`dispatch.reposition`), on hand-built cities of res-7 cells where
an idle courier takes one order of the horizon.

Adjacent res-7 cells' centres are about 2.4 km apart, so the default 3 km cap allows a move
to a neighbour and refuses one two cells away.
"""

from __future__ import annotations

import h3
import pytest

from dispatch.reposition import (
    IdleCourier,
    RepositionParams,
    predict_demand,
    reposition_hints,
)
from geo.cells import cell_center, cell_of

P = RepositionParams(cell_res=7, orders_per_courier=1.0)
HOME = cell_of(52.52, 13.405, 7)
NEAR = sorted(h3.grid_ring(HOME, 1))[0]
FAR = sorted(h3.grid_ring(HOME, 2))[0]
OTHER_NEAR = sorted(h3.grid_ring(HOME, 1))[3]
MIN = 60_000
T = 1_900_000_000_000


def at(cell: str, n: int, prefix: str, movable: bool = True) -> list[IdleCourier]:
    """`n` idle couriers a few metres apart near `cell`'s centre, ids prefix0, prefix1..."""
    lat, lng = cell_center(cell)
    return [IdleCourier(courier_id=f"{prefix}{i}", lat=lat + i * 1e-4, lng=lng,
                        movable=movable) for i in range(n)]


def test_an_oversupplied_cell_sends_one_courier_to_a_short_neighbour() -> None:
    """Home: 3 couriers, no orders. Neighbour: 1.5 expected orders, nobody. One courier (the
    nearest to the neighbour's centre) is hinted there, with the numbers behind it."""
    idle = at(HOME, 3, "c")
    hints = reposition_hints(idle, {NEAR: 1.5}, P)
    assert len(hints) == 1
    h = hints[0]
    nearest = min(idle, key=lambda c: h3.great_circle_distance(
        (c.lat, c.lng), cell_center(NEAR), unit="m"))
    assert h.courier_id == nearest.courier_id
    assert (h.cell, h.demand, h.supply) == (NEAR, 1.5, 0)
    assert (h.from_cell, h.from_demand, h.from_supply) == (HOME, 0.0, 3)
    assert (h.lat, h.lng) == cell_center(NEAR)
    assert h.gain_orders == 1.0
    assert 1500 < h.dist_m < 3000


def test_no_hint_when_the_couriers_own_cell_is_not_oversupplied() -> None:
    """Home has 2 couriers and 2 expected orders: moving one would leave it short, so the
    neighbour's deficit of 5 gets nobody; with 3 couriers at home, exactly one goes."""
    assert reposition_hints(at(HOME, 2, "c"), {HOME: 2.0, NEAR: 5.0}, P) == []
    assert len(reposition_hints(at(HOME, 3, "c"), {HOME: 2.0, NEAR: 5.0}, P)) == 1


def test_a_small_deficit_draws_one_courier_a_large_one_several() -> None:
    """Ten spare couriers at home: a neighbour short of 1.9 couriers gets one (after it, 0.9
    is below `min_deficit`), one short of 3 gets three."""
    idle = at(HOME, 10, "c")
    assert len(reposition_hints(idle, {NEAR: 1.9}, P)) == 1
    hints = reposition_hints(idle, {NEAR: 3.0}, P)
    assert len(hints) == 3
    assert {h.cell for h in hints} == {NEAR}
    assert len({h.courier_id for h in hints}) == 3


def test_a_deficit_below_min_deficit_draws_nobody() -> None:
    """0.8 expected orders and nobody there: less than one courier's worth."""
    assert reposition_hints(at(HOME, 5, "c"), {NEAR: 0.8}, P) == []


def test_couriers_already_heading_there_count_as_supply() -> None:
    """A neighbour short of 2 with 1 courier already on its way (not movable, placed at the
    target) lacks one: one more hint, and the courier on its way gets none."""
    idle = at(HOME, 5, "c") + at(NEAR, 1, "m", movable=False)
    hints = reposition_hints(idle, {NEAR: 2.0}, P)
    assert [h.courier_id[0] for h in hints] == ["c"]
    assert hints[0].supply == 1


def test_no_hint_beyond_the_distance_cap() -> None:
    """Two cells away is beyond 3 km; with a 6 km cap the courier goes."""
    idle = at(HOME, 3, "c")
    assert reposition_hints(idle, {FAR: 4.0}, P) == []
    far = RepositionParams(cell_res=7, orders_per_courier=1.0, max_move_m=6000.0)
    assert len(reposition_hints(idle, {FAR: 4.0}, far)) == 3


def test_each_courier_gets_at_most_one_hint_and_the_largest_deficit_goes_first() -> None:
    """Home can spare exactly one courier (2 there, 1 expected order); two neighbours are
    short, 4 and 2: the one short of 4 gets it."""
    idle = at(HOME, 2, "c")
    hints = reposition_hints(idle, {HOME: 1.0, NEAR: 2.0, OTHER_NEAR: 4.0}, P)
    assert [h.cell for h in hints] == [OTHER_NEAR]


def test_couriers_inside_the_deficit_cell_stay_and_count() -> None:
    """Couriers already in the short cell get no hint to it; they reduce its deficit."""
    idle = at(NEAR, 2, "n") + at(HOME, 4, "c")
    hints = reposition_hints(idle, {NEAR: 3.0}, P)
    assert [h.courier_id[0] for h in hints] == ["c"]


def test_predict_demand_a_steady_rate_predicts_itself() -> None:
    """One order a minute for the last 30 minutes predicts 15 in the next 15 (within the
    sampling error of minute steps); an order older than the window, or from the future,
    counts for nothing."""
    past = [(T - i * MIN, HOME) for i in range(30)]
    d = predict_demand([*past, (T - 31 * MIN, NEAR), (T + MIN, NEAR)], T, P)
    assert set(d) == {HOME}
    assert d[HOME] == pytest.approx(15.0, rel=0.05)


def test_predict_demand_weighs_recent_orders_more() -> None:
    """Two orders now outweigh two orders 20 minutes ago by 2^(20/15)."""
    d = predict_demand([(T, HOME), (T, HOME), (T - 20 * MIN, NEAR), (T - 20 * MIN, NEAR)],
                       T, P)
    assert d[HOME] / d[NEAR] == pytest.approx(2 ** (20 / 15))


def test_params_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="min_move_m"):
        RepositionParams(min_move_m=500.0, max_move_m=100.0)
    with pytest.raises(ValueError, match="orders_per_courier"):
        RepositionParams(orders_per_courier=0.0)
