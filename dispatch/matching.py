"""Optimal order <-> courier assignment for one matching round (docs/dispatch.md), pure.

Problem. Order i either gets one courier j (cost c[i, j]; a courier takes at most one order)
or "no courier" at `unassigned_penalty_s`; minimise the total. "No courier" is modelled with one
private dummy column per order at the penalty, which makes the rectangular problem always have a
full matching. Pairs dearer than the penalty are dropped first: any assignment using one is
strictly improved by sending that order to its dummy instead, so no optimum uses them.

Exactness. Costs are rounded to `COST_RESOLUTION_S` (1 ms) integers before solving, so the
solvers compare exact integers (kept far below 2**52, checked) and "equal cost" means equal. The
minimised objective is `Assignment.objective_ms`; rounding moves any assignment's float total by
at most n_orders x 0.5 ms.

Solvers. Candidate lists (what a round uses) go to scipy's sparse LAPJVsp
(`min_weight_full_bipartite_matching`); a dense matrix goes to `linear_sum_assignment`. Both
are exact; the tests check them against each other and against brute force.

Ties (documented rule). Among the minimum-cost assignments the result is one where
  (a) no order could move to a free courier with a LOWER index at the same cost, and
  (b) no two orders i < i' could swap what they hold, at the same total cost, when i holds the
      higher-indexed courier ("no courier" ranks after every courier).
Solvers pick an arbitrary optimum; `_settle_ties` then applies such cost-neutral moves until
none is left. Each move keeps the total and feasibility, so optimality is kept; each lowers
(sum of held indices, inversions of the held-index sequence) lexicographically, so it ends.
When orders or couriers are interchangeable (equal rows or columns of costs, e.g. couriers
waiting at one hub, orders from one kitchen) this pins the answer: the lowest-indexed couriers
are used, in index order, and the highest-indexed orders go without. Rarer ties between
unrelated pairs are still deterministic (same input, same output) but not specified further.

Certificate. `certify_candidates` computes the smallest optimal LP dual prices of the result
and proves, per order, that no courier left out of its candidate list could lower the optimum.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from dispatch.costs import CandidateCosts

__all__ = [
    "COST_RESOLUTION_S",
    "Assignment",
    "Certificate",
    "assign_and_certify",
    "assign_orders",
    "certify_candidates",
    "greedy_nearest",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COST_RESOLUTION_S = 1e-3
# Largest |total| the float64 solvers may meet; well inside the 2**53 exact-integer range so
# the solvers' own sums of potentials stay exact too.
_EXACT_LIMIT = float(2**50)


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Result of a round: order index -> courier index, or -1 for "no courier"."""

    courier_idx: IntArray
    cost_s: FloatArray
    """Per order: the pair's cost, or the unassigned penalty."""
    objective_ms: int
    """Sum of the 1 ms-rounded costs: the quantity that is exactly minimised."""

    @property
    def total_cost_s(self) -> float:
        return float(self.cost_s.sum())

    @property
    def n_unassigned(self) -> int:
        return int(np.count_nonzero(self.courier_idx < 0))


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    """Proof, per order, that couriers outside its candidate list cannot lower the optimum."""

    price_s: FloatArray
    """LP dual price of each order (its marginal cost in the optimum). A courier outside the
    list could only lower the optimum if it cost less than this for that order."""
    proven: npt.NDArray[np.bool_]
    """True where the caller's lower bound on outside couriers is >= the price."""

    @property
    def all_proven(self) -> bool:
        return bool(self.proven.all())


class _Graph(msgspec.Struct, frozen=True):
    """Usable pairs (finite, not dearer than the penalty) in CSR, rows sorted by courier."""

    indptr: IntArray
    row: IntArray
    col: IntArray
    q: IntArray  # cost in units of COST_RESOLUTION_S
    cost_s: FloatArray
    travel_s: FloatArray
    n_couriers: int
    penalty_q: int

    @property
    def n_orders(self) -> int:
        return len(self.indptr) - 1

    def find(self, rows: IntArray, cols: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """(edge position, found) for the pairs (rows[k], cols[k])."""
        if not len(self.col):
            return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        keys = self.row * self.n_couriers + self.col  # ascending: rows, then columns
        want = rows * self.n_couriers + cols
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        return pos, keys[pos] == want


def _quantize(cost_s: FloatArray) -> FloatArray:
    """Cost in whole units of COST_RESOLUTION_S (float64, exact integers; inf stays inf)."""
    if np.isnan(cost_s).any():
        raise ValueError("costs must not be NaN (use +inf for infeasible pairs)")
    return np.asarray(np.rint(cost_s / COST_RESOLUTION_S))


def _penalty_q(unassigned_penalty_s: float) -> int:
    if not np.isfinite(unassigned_penalty_s):
        raise ValueError("unassigned_penalty_s must be finite")
    return int(np.rint(unassigned_penalty_s / COST_RESOLUTION_S))


def _build_graph(
    rows: IntArray,
    cols: IntArray,
    cost_s: FloatArray,
    travel_s: FloatArray,
    shape: tuple[int, int],
    penalty_q: int,
) -> _Graph:
    n_orders, n_couriers = shape
    qf = _quantize(cost_s)
    keep = qf <= penalty_q  # also drops +inf
    # Sort by (row, col); if a pair is listed twice keep its cheapest copy.
    sel = np.flatnonzero(keep)
    key = rows[sel] * n_couriers + cols[sel]
    by_key = np.argsort(key, kind="stable")
    sel, key = sel[by_key], key[by_key]
    if len(key) and (key[1:] == key[:-1]).any():
        # Per run of equal keys, the first copy at the run's minimum cost (O(n), no 2nd sort).
        first = np.ones(len(sel), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        group = np.cumsum(first) - 1
        q_sel = qf[sel]
        at_min = np.flatnonzero(q_sel == np.minimum.reduceat(q_sel, np.flatnonzero(first))[group])
        _, pick = np.unique(group[at_min], return_index=True)
        sel = sel[at_min[pick]]
    rows, cols, qf, cost_s, travel_s = rows[sel], cols[sel], qf[sel], cost_s[sel], travel_s[sel]
    q = qf.astype(np.int64)
    lo = min(int(q.min()) if len(q) else penalty_q, penalty_q)
    hi = max(int(q.max()) if len(q) else penalty_q, penalty_q)
    if (hi - lo + 1) * (n_orders + 1) >= _EXACT_LIMIT:
        raise ValueError("cost range x n_orders too large for exact solving at 1 ms resolution")
    indptr = np.zeros(n_orders + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_orders), out=indptr[1:])
    return _Graph(indptr, rows.astype(np.int64), cols.astype(np.int64), q, cost_s, travel_s,
                  n_couriers, penalty_q)


def _graph_from_candidates(costs: CandidateCosts, penalty_q: int) -> _Graph:
    rows, slots = np.nonzero(costs.courier_idx >= 0)
    return _build_graph(
        rows.astype(np.int64),
        costs.courier_idx[rows, slots],
        costs.cost_s[rows, slots],
        costs.travel_s[rows, slots],
        (costs.n_orders, costs.n_couriers),
        penalty_q,
    )


def _solve_sparse(g: _Graph) -> IntArray:
    """Courier per order via LAPJVsp on the used couriers + one dummy column per order."""
    n = g.n_orders
    used, col_c = np.unique(g.col, return_inverse=True)
    n_real = len(used)
    # Row i holds its pairs, then its dummy (the largest column index, so rows stay sorted).
    indptr = g.indptr + np.arange(n + 1, dtype=np.int64)
    indices = np.empty(len(g.col) + n, dtype=np.int64)
    data = np.empty(len(g.col) + n, dtype=np.float64)
    pair_pos = np.arange(len(g.col), dtype=np.int64) + g.row
    dummy_pos = indptr[1:] - 1
    # LAPJVsp wants non-zero weights: shift every weight by the same constant. Each order is
    # matched exactly once (to a courier or its dummy), so every full matching's total shifts
    # by n x constant and the optimum is unchanged.
    shift = 1 - min(int(g.q.min()) if len(g.q) else g.penalty_q, g.penalty_q)
    indices[pair_pos] = col_c
    data[pair_pos] = g.q + shift
    indices[dummy_pos] = n_real + np.arange(n)
    data[dummy_pos] = g.penalty_q + shift
    matrix = csr_array((data, indices, indptr), shape=(n, n_real + n))
    _, col_of_row = min_weight_full_bipartite_matching(matrix)
    courier_idx = np.full(n, -1, dtype=np.int64)
    real = col_of_row < n_real
    courier_idx[real] = used[col_of_row[real]]
    return courier_idx


def _solve_dense(cost_s: FloatArray, penalty_q: int) -> IntArray:
    """Courier per order via linear_sum_assignment on [costs | diagonal of penalties]."""
    n, m = cost_s.shape
    augmented = np.full((n, m + n), np.inf)
    block = augmented[:, :m]
    np.divide(cost_s, COST_RESOLUTION_S, out=block)
    np.rint(block, out=block)
    block[block > penalty_q] = np.inf
    augmented[np.arange(n), m + np.arange(n)] = penalty_q
    _, col = linear_sum_assignment(augmented)
    return np.where(col < m, col, -1).astype(np.int64)


def _settle_ties(g: _Graph, courier_idx: IntArray, cur_q: IntArray) -> None:
    """Apply cost-neutral moves (a) and (b) of the module docstring until none is left.

    Mutates courier_idx / cur_q in place. Ties are rare in real rounds, so each pass is a
    couple of vectorised scans over the pairs and the loop usually runs once.
    """
    m = g.n_couriers
    owner = np.full(m, -1, dtype=np.int64)
    held = courier_idx >= 0
    owner[courier_idx[held]] = np.flatnonzero(held)
    while True:
        rank = np.where(courier_idx >= 0, courier_idx, m)
        # (a) move to a free lower-indexed courier at the same cost.
        sel = (owner[g.col] < 0) & (g.col < rank[g.row]) & (g.q == cur_q[g.row])
        if sel.any():
            r, c, q = g.row[sel], g.col[sel], g.q[sel]
            _, first = np.unique(r, return_index=True)  # pairs sorted by column: lowest first
            r, c, q = r[first], c[first], q[first]
            by_courier = np.argsort(c, kind="stable")  # r ascending within one courier
            r, c, q = r[by_courier], c[by_courier], q[by_courier]
            _, first = np.unique(c, return_index=True)  # lowest order wins a contested courier
            r, c, q = r[first], c[first], q[first]
            old = courier_idx[r]
            owner[old[old >= 0]] = -1
            owner[c] = r
            courier_idx[r] = c
            cur_q[r] = q
            continue
        # (b) i < i' swap so that the lower order holds the lower courier.
        other = owner[g.col]
        sel = (other > g.row) & (g.col < rank[g.row])
        if not sel.any():
            return
        i, j2, i2, q_i_j2 = g.row[sel], g.col[sel], other[sel], g.q[sel]
        ai = courier_idx[i]
        pos, found = g.find(i2, np.maximum(ai, 0))
        q_rev = np.where(ai >= 0, g.q[pos], g.penalty_q)
        found = found | (ai < 0)
        ok = found & (q_i_j2 + q_rev == cur_q[i] + cur_q[i2])
        if not ok.any():
            return
        busy: set[int] = set()
        for a, b, j, qa, qb in zip(i[ok].tolist(), i2[ok].tolist(), j2[ok].tolist(),
                                   q_i_j2[ok].tolist(), q_rev[ok].tolist(), strict=True):
            if a in busy or b in busy:
                continue
            busy.update((a, b))
            mine = int(courier_idx[a])
            courier_idx[a], cur_q[a], owner[j] = j, qa, a
            courier_idx[b], cur_q[b] = mine, qb
            if mine >= 0:
                owner[mine] = b


def _held_q(g: _Graph, courier_idx: IntArray) -> IntArray:
    """Rounded cost of what each order holds (the penalty for "no courier")."""
    held = courier_idx >= 0
    pos, found = g.find(np.flatnonzero(held), courier_idx[held])
    if not found.all():
        raise ValueError("assignment uses pairs that are not usable (infeasible or not listed)")
    cur_q = np.full(len(courier_idx), g.penalty_q, dtype=np.int64)
    cur_q[held] = g.q[pos]
    return cur_q


def _result(g: _Graph, courier_idx: IntArray, unassigned_penalty_s: float) -> Assignment:
    held = courier_idx >= 0
    pos, _ = g.find(np.flatnonzero(held), courier_idx[held])
    cost_s = np.full(len(courier_idx), float(unassigned_penalty_s))
    cost_s[held] = g.cost_s[pos]
    objective_ms = int(_held_q(g, courier_idx).sum())
    return Assignment(courier_idx=courier_idx, cost_s=cost_s, objective_ms=objective_ms)


def assign_orders(
    costs: CandidateCosts | npt.ArrayLike, *, unassigned_penalty_s: float
) -> Assignment:
    """Minimum-total-cost assignment (exact), "no courier" costing `unassigned_penalty_s`.

    Args:
        costs: `CandidateCosts` (per-order candidate lists; solved sparse) or a dense
            (n_orders, n_couriers) array of seconds (+inf = infeasible; solved dense).
        unassigned_penalty_s: cost of leaving an order for a later round.

    Returns:
        The assignment; ties follow the rule in the module docstring.
    """
    penalty_q = _penalty_q(unassigned_penalty_s)
    if isinstance(costs, CandidateCosts):
        return _assign_sparse(_graph_from_candidates(costs, penalty_q), unassigned_penalty_s)
    else:
        dense = np.asarray(costs, dtype=np.float64)
        if dense.ndim != 2:
            raise ValueError(f"dense costs must be 2-D, got shape {dense.shape}")
        if np.isnan(dense).any():
            raise ValueError("costs must not be NaN (use +inf for infeasible pairs)")
        # Superset of the usable pairs (rounding can admit up to half a unit over the penalty);
        # _build_graph applies the exact rule.
        rows, cols = np.nonzero(dense <= unassigned_penalty_s + COST_RESOLUTION_S)
        pair_cost = dense[rows, cols]
        g = _build_graph(rows.astype(np.int64), cols.astype(np.int64), pair_cost, pair_cost,
                         dense.shape, penalty_q)
        courier_idx = _solve_dense(dense, penalty_q) if len(dense) else np.zeros(0, np.int64)
    _settle_ties(g, courier_idx, _held_q(g, courier_idx))
    return _result(g, courier_idx, unassigned_penalty_s)


def _assign_sparse(g: _Graph, unassigned_penalty_s: float) -> Assignment:
    courier_idx = _solve_sparse(g) if g.n_orders else np.zeros(0, dtype=np.int64)
    _settle_ties(g, courier_idx, _held_q(g, courier_idx))
    return _result(g, courier_idx, unassigned_penalty_s)


def assign_and_certify(
    costs: CandidateCosts, outside_lower_bound_s: npt.ArrayLike, *, unassigned_penalty_s: float
) -> tuple[Assignment, Certificate]:
    """`assign_orders` then `certify_candidates` on one shared pair graph (a round's hot
    path: building the graph is ~15 % of a solve at 60k pairs)."""
    g = _graph_from_candidates(costs, _penalty_q(unassigned_penalty_s))
    assignment = _assign_sparse(g, unassigned_penalty_s)
    return assignment, _certify(g, assignment, outside_lower_bound_s)


def greedy_nearest(
    costs: CandidateCosts, *, ready_at_s: npt.ArrayLike, unassigned_penalty_s: float
) -> Assignment:
    """Baseline: orders in order of readiness (ties: lower index) each take the nearest free
    candidate courier (shortest ride to the chef; ties: lower index).

    Pairs that are infeasible or dearer than the penalty are skipped, as in the optimum.
    """
    g = _graph_from_candidates(costs, _penalty_q(unassigned_penalty_s))
    n = g.n_orders
    ready = np.asarray(ready_at_s, dtype=np.float64)
    if ready.shape != (n,):
        raise ValueError(f"ready_at_s must have shape ({n},)")
    free = np.ones(g.n_couriers, dtype=bool)
    courier_idx = np.full(n, -1, dtype=np.int64)
    for i in np.lexsort((np.arange(n), ready)).tolist():
        lo, hi = int(g.indptr[i]), int(g.indptr[i + 1])
        cols = g.col[lo:hi]
        ride_s = np.where(free[cols], g.travel_s[lo:hi], np.inf)
        if not np.isfinite(ride_s).any():
            continue
        k = int(np.argmin(ride_s))  # columns ascend within a row: first minimum = lowest index
        courier_idx[i] = cols[k]
        free[cols[k]] = False
    return _result(g, courier_idx, unassigned_penalty_s)


def certify_candidates(
    costs: CandidateCosts,
    assignment: Assignment,
    outside_lower_bound_s: npt.ArrayLike,
    *,
    unassigned_penalty_s: float,
) -> Certificate:
    """Prove that the candidate-restricted optimum is the optimum over ALL couriers.

    LP duality: with dual prices u_i (orders, u_i <= penalty) and v_j <= 0 (couriers, 0 when
    free) that are optimal for the candidate problem, the same assignment is optimal for the
    full problem iff c[i, j] >= u_i + v_j also for every pair left out. Since v_j <= 0,
    c[i, j] >= u_i is enough, and c[i, j] >= outside_lower_bound_s[i] (the caller's bound on
    every courier it did not list for order i, e.g. `costs.outside_cost_lower_bound_s`)
    gives it for a whole order.

    Among the optimal duals we want the smallest prices, i.e. the largest v. With
    u_i = c[i, held_i] - v[held_i] (complementary slackness) the dual constraints are
    difference constraints v_j <= v_k + (c[i, j] - c[i, k]) for i holding k, plus
    v_j <= c[i, j] - penalty for i holding none, v_j <= 0, v_free = 0; their largest solution
    is a shortest-path distance (Bellman-Ford, vectorised: one pass per path length). The
    result is then checked against every dual constraint, so a bad input cannot certify.
    """
    g = _graph_from_candidates(costs, _penalty_q(unassigned_penalty_s))
    return _certify(g, assignment, outside_lower_bound_s)


def _certify(g: _Graph, assignment: Assignment, outside_lower_bound_s: npt.ArrayLike
             ) -> Certificate:
    penalty_q = g.penalty_q
    n = g.n_orders
    courier_idx = assignment.courier_idx
    held = courier_idx >= 0
    cur_q = _held_q(g, courier_idx)
    owner = np.full(g.n_couriers, -1, dtype=np.int64)
    owner[courier_idx[held]] = np.flatnonzero(held)
    # v of the courier held by order i, stored per order (couriers held by nobody: v = 0).
    src, dst = g.row, owner[g.col]
    to_held = (dst >= 0) & (dst != src)
    v = np.zeros(n, dtype=np.int64)
    from_none = to_held & ~held[src]
    np.minimum.at(v, dst[from_none], g.q[from_none] - penalty_q)
    chain = to_held & held[src]
    c_src, c_dst, c_w = src[chain], dst[chain], g.q[chain] - cur_q[src[chain]]
    for _ in range(n + 1):
        relaxed = v.copy()
        np.minimum.at(relaxed, c_dst, v[c_src] + c_w)
        if np.array_equal(relaxed, v):
            break
        v = relaxed
    else:
        raise ValueError("assignment is not optimal for these costs (negative cycle)")
    price_q = np.where(held, cur_q - v, penalty_q)
    v_of_col = np.zeros(g.n_couriers, dtype=np.int64)
    v_of_col[courier_idx[held]] = v[held]
    if (price_q > penalty_q).any() or (g.q < price_q[g.row] + v_of_col[g.col]).any():
        raise ValueError("assignment is not optimal for these costs")
    bound_q = _quantize(np.broadcast_to(np.asarray(outside_lower_bound_s, dtype=np.float64), (n,)))
    return Certificate(price_s=price_q * COST_RESOLUTION_S, proven=bound_q >= price_q)
