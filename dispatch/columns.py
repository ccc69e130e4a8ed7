"""A round's matching columns: the idle couriers the search found, then the stacked couriers.

The matcher (`dispatch.matching`) sees couriers as columns numbered 0..n-1 and, per order, a
short list of candidate columns (`dispatch.costs.CandidateCosts`). The search gives member
indices into a table of couriers (nearest first); `candidate_columns` turns those into columns,
and `StackCandidates` appends couriers heading to a chef, one more column each, after them.

Pure: numpy arrays and lists in and out.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from dispatch.costs import CandidateCosts

__all__ = ["StackCandidates", "StackedColumn", "candidate_columns"]

IntArray = npt.NDArray[np.int64]


def candidate_columns(found: IntArray, declined: list[frozenset[str]] | list[set[str]],
                      ids: list[str], k: int) -> tuple[IntArray, IntArray]:
    """The matching's candidate slots from the search: per order its first `k` couriers
    found (member indices, nearest first, -1 padded) that did not decline it, and the
    couriers as columns numbered in order of first appearance (row by row).

    Returns:
        (slots as column numbers, shape (n, k), padded with -1; each column's member index).
    """
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


class StackedColumn(msgspec.Struct, frozen=True, kw_only=True):
    """A courier heading to a chef, as one matching column."""

    courier_id: str
    held: tuple[str, ...]
    """The orders it holds (the claim checks they are still exactly these)."""


class StackCandidates:
    """Stacked couriers of one round as extra matching columns (after the idle couriers):
    `add` each feasible (order, courier) pair with its cost, then `append_to` the idle
    couriers' costs."""

    def __init__(self, n_orders: int) -> None:
        self.n_orders = n_orders
        self.columns: list[StackedColumn] = []
        self._col: dict[str, int] = {}
        self._pairs: list[tuple[int, int, float]] = []

    def __len__(self) -> int:
        return len(self.columns)

    def add(self, order: int, courier_id: str, held: tuple[str, ...], cost_s: float) -> None:
        """Order `order` may go to `courier_id` (holding `held`) at `cost_s`."""
        col = self._col.get(courier_id)
        if col is None:
            col = self._col[courier_id] = len(self.columns)
            self.columns.append(StackedColumn(courier_id=courier_id, held=held))
        self._pairs.append((order, col, cost_s))

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
                              n_couriers=costs.n_couriers + len(self.columns))
