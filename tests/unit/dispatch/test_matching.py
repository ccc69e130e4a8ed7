"""Specification of the optimal matcher: given costs and a penalty, this is the assignment."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.costs import CandidateCosts
from dispatch.matching import (
    Assignment,
    assign_orders,
    certify_candidates,
    greedy_nearest,
)

INF = np.inf


def brute_force_ms(cost_s: npt.NDArray[np.float64], penalty_s: float) -> int:
    """Minimum total over every assignment (courier or none per order, couriers distinct),
    in the matcher's 1 ms units."""
    n, m = cost_s.shape
    q = np.rint(cost_s * 1000)
    p = round(penalty_s * 1000)
    best = n * p
    for choice in itertools.product(range(-1, m), repeat=n):
        held = [j for j in choice if j >= 0]
        if len(held) != len(set(held)):
            continue
        total = sum(p if j < 0 else q[i, j] for i, j in enumerate(choice))
        if np.isfinite(total):
            best = min(best, int(total))
    return best


def check_valid(a: Assignment, cost_s: npt.NDArray[np.float64], penalty_s: float) -> None:
    held = a.courier_idx[a.courier_idx >= 0]
    assert len(held) == len(set(held.tolist())), "a courier got two orders"
    for i, j in enumerate(a.courier_idx.tolist()):
        if j >= 0:
            assert np.isfinite(cost_s[i, j]), "an infeasible pair was assigned"
            assert a.cost_s[i] == cost_s[i, j]
        else:
            assert a.cost_s[i] == penalty_s


@st.composite
def small_problems(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], float]:
    n = draw(st.integers(0, 5))
    m = draw(st.integers(0, 6))
    # Coarse values make ties common, which is where solvers and tie rules go wrong.
    values = st.one_of(st.integers(0, 40).map(float), st.just(INF),
                       st.floats(0, 40, allow_nan=False).map(lambda x: round(x, 3)))
    cost = np.array(draw(st.lists(values, min_size=n * m, max_size=n * m)),
                    dtype=np.float64).reshape(n, m)
    penalty = float(draw(st.integers(1, 45)))
    return cost, penalty


@settings(max_examples=300, deadline=None, derandomize=True)
@given(small_problems())
def test_dense_and_sparse_are_optimal_against_brute_force(
    problem: tuple[npt.NDArray[np.float64], float],
) -> None:
    """Both solvers reach the brute-force minimum over all assignments (with infeasible pairs
    and "no courier"), assign no masked pair, never give a courier twice, and agree."""
    cost, penalty = problem
    dense = assign_orders(cost, unassigned_penalty_s=penalty)
    sparse = assign_orders(CandidateCosts.from_dense(cost), unassigned_penalty_s=penalty)
    best = brute_force_ms(cost, penalty)
    assert dense.objective_ms == best
    assert sparse.objective_ms == best
    check_valid(dense, cost, penalty)
    check_valid(sparse, cost, penalty)
    np.testing.assert_array_equal(dense.courier_idx, sparse.courier_idx)


def test_no_courier_when_every_courier_costs_more_than_the_penalty() -> None:
    """An order whose every courier costs more than the penalty is left for the next round."""
    cost = np.array([[900.0, 1200.0], [100.0, 950.0]])
    a = assign_orders(cost, unassigned_penalty_s=600.0)
    assert a.courier_idx.tolist() == [-1, 0]
    assert a.cost_s.tolist() == [600.0, 100.0]
    assert a.n_unassigned == 1
    assert a.total_cost_s == 700.0


def test_no_courier_when_the_only_feasible_courier_serves_someone_cheaper() -> None:
    """Two orders want one courier: the optimum serves the one that saves more over the
    penalty, not the first one."""
    cost = np.array([[500.0], [100.0]])
    a = assign_orders(cost, unassigned_penalty_s=600.0)
    assert a.courier_idx.tolist() == [-1, 0]


def test_masked_pair_is_never_assigned_even_when_it_would_be_cheapest() -> None:
    """+inf (vehicle not allowed, pickup too far) is a hard constraint, not a big cost."""
    cost = np.array([[INF, 50.0], [10.0, INF]])
    for solved in (assign_orders(cost, unassigned_penalty_s=100.0),
                   assign_orders(CandidateCosts.from_dense(cost), unassigned_penalty_s=100.0)):
        assert solved.courier_idx.tolist() == [1, 0]
    only_masked = np.array([[INF, INF]])
    assert assign_orders(only_masked, unassigned_penalty_s=1e6).courier_idx.tolist() == [-1]


def test_equal_costs_use_the_lowest_couriers_in_index_order() -> None:
    """Documented tie-break: among equal-cost optima, lower-indexed orders get lower-indexed
    couriers and the lowest-indexed couriers are used."""
    cost = np.full((3, 5), 42.0)
    for solved in (assign_orders(cost, unassigned_penalty_s=100.0),
                   assign_orders(CandidateCosts.from_dense(cost), unassigned_penalty_s=100.0)):
        assert solved.courier_idx.tolist() == [0, 1, 2]


def test_equal_costs_leave_the_highest_indexed_orders_without_a_courier() -> None:
    """When couriers run out at equal cost, "no courier" goes to the highest-indexed orders."""
    cost = np.full((4, 2), 42.0)
    solved = assign_orders(cost, unassigned_penalty_s=100.0)
    assert solved.courier_idx.tolist() == [0, 1, -1, -1]


def test_tie_break_follows_indices_not_input_order() -> None:
    """Permuting interchangeable couriers and orders gives the rule's answer for the new
    indices (not the permuted old answer), and the same input twice gives the same output."""
    rng = np.random.default_rng(5)
    # Three kinds of courier (equal columns within a kind), two kinds of order.
    kind_cost = np.array([[10.0, 20.0, 30.0], [30.0, 20.0, 10.0]])
    order_kind = np.array([0, 0, 1, 1, 0])
    courier_kind = np.array([0, 1, 2, 0, 1, 2, 0])
    base = kind_cost[order_kind][:, courier_kind]
    for _ in range(20):
        po = rng.permutation(len(order_kind))
        pc = rng.permutation(len(courier_kind))
        cost = base[po][:, pc]
        first = assign_orders(cost, unassigned_penalty_s=100.0)
        again = assign_orders(cost.copy(), unassigned_penalty_s=100.0)
        np.testing.assert_array_equal(first.courier_idx, again.courier_idx)
        sparse = assign_orders(CandidateCosts.from_dense(cost), unassigned_penalty_s=100.0)
        np.testing.assert_array_equal(first.courier_idx, sparse.courier_idx)
        # The rule, checked directly: within each order kind, orders in index order hold
        # couriers in index order, and each kind uses the lowest couriers of its cheapest kind.
        ok = order_kind[po]
        ck = courier_kind[pc]
        for kind in (0, 1):
            mine = np.flatnonzero(ok == kind)
            held = first.courier_idx[mine]
            assert (np.diff(held) > 0).all()
            best_kind = 0 if kind == 0 else 2
            assert held.tolist() == np.flatnonzero(ck == best_kind)[: len(mine)].tolist() or (
                # kind 0 has 3 orders but only 3 couriers of kind 0: all of them
                held.tolist() == np.flatnonzero(ck == best_kind).tolist()
            )


def test_rectangular_more_orders_than_couriers() -> None:
    """More orders than couriers: every courier is used when that beats the penalty."""
    rng = np.random.default_rng(11)
    cost = rng.uniform(10, 90, (12, 4)).round(3)
    a = assign_orders(cost, unassigned_penalty_s=100.0)
    assert a.n_unassigned == 8
    assert sorted(a.courier_idx[a.courier_idx >= 0].tolist()) == [0, 1, 2, 3]


def test_sparse_and_dense_agree_on_random_geometric_sized_problems() -> None:
    """On larger seeded problems (too big for brute force) the sparse candidate solver and
    linear_sum_assignment reach the same optimum when candidates include every feasible pair."""
    rng = np.random.default_rng(3)
    for n, m in ((40, 60), (80, 50), (60, 200)):
        cost = rng.uniform(0, 1000, (n, m)).round(3)
        cost[rng.random((n, m)) < 0.6] = INF
        dense = assign_orders(cost, unassigned_penalty_s=700.0)
        # Only the finite pairs, in scrambled column order, padded with -1.
        rows = []
        for i in range(n):
            js = rng.permutation(np.flatnonzero(np.isfinite(cost[i])))
            rows.append(js)
        width = max(len(r) for r in rows)
        idx = np.full((n, width), -1)
        for i, js in enumerate(rows):
            idx[i, : len(js)] = js
        c = np.where(idx >= 0, cost[np.arange(n)[:, None], np.maximum(idx, 0)], INF)
        sparse = assign_orders(CandidateCosts(courier_idx=idx, cost_s=c, travel_s=c,
                                              n_couriers=m), unassigned_penalty_s=700.0)
        assert sparse.objective_ms == dense.objective_ms
        np.testing.assert_array_equal(sparse.courier_idx, dense.courier_idx)


def test_greedy_can_be_worse_than_optimal() -> None:
    """Greedy nearest-courier takes courier 0 for the first-ready order, leaving the second
    order only a far courier; the optimum swaps and saves 2 x 100 - 2 x 50 = 100 s."""
    cost = np.array([[100.0, 150.0], [110.0, 900.0]])
    costs = CandidateCosts.from_dense(cost)
    greedy = greedy_nearest(costs, ready_at_s=np.array([0.0, 60.0]), unassigned_penalty_s=2000)
    optimal = assign_orders(costs, unassigned_penalty_s=2000)
    assert greedy.courier_idx.tolist() == [0, 1]
    assert optimal.courier_idx.tolist() == [1, 0]
    assert greedy.total_cost_s == 1000.0
    assert optimal.total_cost_s == 260.0


def test_greedy_serves_orders_in_order_of_readiness() -> None:
    """The order whose food is ready first picks first, whatever its index."""
    travel = np.array([[60.0], [30.0]])
    costs = CandidateCosts.from_dense(travel)
    g = greedy_nearest(costs, ready_at_s=np.array([500.0, 100.0]), unassigned_penalty_s=1000)
    assert g.courier_idx.tolist() == [-1, 0]


def test_duplicate_candidates_keep_the_cheapest_copy() -> None:
    """A courier listed twice for one order (two k-ring searches merged) counts once."""
    idx = np.array([[0, 0, 1], [1, -1, -1]])
    c = np.array([[50.0, 40.0, 300.0], [60.0, INF, INF]])
    a = assign_orders(CandidateCosts(courier_idx=idx, cost_s=c, travel_s=c, n_couriers=2),
                      unassigned_penalty_s=500.0)
    assert a.courier_idx.tolist() == [0, 1]
    assert a.cost_s.tolist() == [40.0, 60.0]


def test_empty_rounds() -> None:
    """No orders or no couriers is a valid round."""
    assert assign_orders(np.zeros((0, 3)), unassigned_penalty_s=10).courier_idx.size == 0
    a = assign_orders(np.zeros((2, 0)), unassigned_penalty_s=10)
    assert a.courier_idx.tolist() == [-1, -1]
    empty = CandidateCosts(courier_idx=np.full((2, 0), -1), cost_s=np.zeros((2, 0)),
                           travel_s=np.zeros((2, 0)), n_couriers=5)
    assert assign_orders(empty, unassigned_penalty_s=10).courier_idx.tolist() == [-1, -1]


def test_nan_costs_are_rejected() -> None:
    """NaN is a bug upstream, not "infeasible": refuse it rather than guess."""
    with pytest.raises(ValueError, match="NaN"):
        assign_orders(np.array([[np.nan]]), unassigned_penalty_s=10)


def test_certificate_proves_optimality_beyond_the_candidates() -> None:
    """With each order's K cheapest couriers as candidates, the price certificate proves the
    result when the caller's bound on left-out couriers is at least the price, and the
    result then equals the optimum over all couriers."""
    rng = np.random.default_rng(8)
    n, m, k = 30, 120, 8
    cost = rng.uniform(0, 1000, (n, m)).round(3)
    order = np.argsort(cost, axis=1, kind="stable")
    idx = order[:, :k]
    c = np.take_along_axis(cost, idx, 1)
    outside_bound = np.take_along_axis(cost, order[:, k : k + 1], 1)[:, 0]  # (K+1)-th cheapest
    cand = CandidateCosts(courier_idx=idx, cost_s=c, travel_s=c, n_couriers=m)
    restricted = assign_orders(cand, unassigned_penalty_s=800.0)
    cert = certify_candidates(cand, restricted, outside_bound, unassigned_penalty_s=800.0)
    full = assign_orders(cost, unassigned_penalty_s=800.0)
    if cert.all_proven:
        assert restricted.objective_ms == full.objective_ms
    assert cert.proven.mean() > 0.5
    # Prices never exceed the penalty (the order can always take "no courier").
    assert (cert.price_s <= 800.0 + 1e-9).all()


def test_certificate_refuses_when_a_left_out_courier_is_cheaper() -> None:
    """If the caller's bound says a left-out courier might cost less than the price, that
    order is not proven (and indeed the full optimum is better)."""
    cost = np.array([[100.0, 20.0]])
    cand = CandidateCosts(courier_idx=np.array([[0]]), cost_s=np.array([[100.0]]),
                          travel_s=np.array([[100.0]]), n_couriers=2)
    a = assign_orders(cand, unassigned_penalty_s=500.0)
    cert = certify_candidates(cand, a, np.array([20.0]), unassigned_penalty_s=500.0)
    assert not cert.all_proven
    assert cert.price_s.tolist() == [100.0]
    assert assign_orders(cost, unassigned_penalty_s=500.0).objective_ms < a.objective_ms


@settings(max_examples=150, deadline=None, derandomize=True)
@given(small_problems(), st.integers(1, 3))
def test_certificate_is_sound(
    problem: tuple[npt.NDArray[np.float64], float], k: int,
) -> None:
    """Whenever the certificate proves every order (bound = cheapest left-out pair), the
    candidate-restricted optimum equals the brute-force optimum over all couriers."""
    cost, penalty = problem
    n, m = cost.shape
    if n == 0:
        return
    order = np.argsort(cost, axis=1, kind="stable")
    kk = min(k, m)
    idx = order[:, :kk]
    c = np.take_along_axis(cost, idx, 1)
    left = order[:, kk:]
    bound = (np.take_along_axis(cost, left, 1).min(axis=1) if left.shape[1]
             else np.full(n, INF))
    cand = CandidateCosts(courier_idx=idx, cost_s=c, travel_s=c, n_couriers=m)
    a = assign_orders(cand, unassigned_penalty_s=penalty)
    cert = certify_candidates(cand, a, bound, unassigned_penalty_s=penalty)
    if cert.all_proven:
        assert a.objective_ms == brute_force_ms(cost, penalty)
