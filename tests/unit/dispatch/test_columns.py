"""A round's matching columns (`dispatch.columns`): the candidate slots from the search's
member indices are what the per-member loop they replaced built — per order its first K
couriers found that did not decline it, couriers numbered as columns in order of first
appearance, row by row — and stacked couriers are appended as further columns."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dispatch.columns import StackCandidates, candidate_columns
from dispatch.costs import CandidateCosts
from tests.unit.geo.strategies import seeded


def _loop(found: list[list[int]], declined: list[set[str]], ids: list[str],
          k: int) -> tuple[list[list[int]], list[int]]:
    """The loop a round ran before (over hit lists)."""
    index_of: dict[str, int] = {}
    cols: list[int] = []
    cand = [[-1] * k for _ in found]
    for i, (members, dec) in enumerate(zip(found, declined, strict=True)):
        slot = 0
        for m in members:
            if m < 0:
                continue
            member_id = ids[m]
            if member_id in dec or slot >= k:
                continue
            j = index_of.get(member_id)
            if j is None:
                j = index_of[member_id] = len(cols)
                cols.append(m)
            cand[i][slot] = j
            slot += 1
    return cand, cols


@seeded(60)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), members=st.integers(1, 30),
       k=st.integers(1, 6), width=st.integers(1, 10))
def test_candidate_columns_equal_the_per_member_loop(seed: int, n: int, members: int, k: int,
                                                     width: int) -> None:
    """Slots and columns equal the per-member loop's on random searches and declines."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(members)]
    found = np.full((n, width), -1, dtype=np.int64)
    for i in range(n):
        row = rng.permutation(members)[:rng.integers(0, min(width, members) + 1)]
        found[i, :len(row)] = row
    declined = [set(rng.choice(ids, size=rng.integers(0, min(3, members) + 1),
                               replace=False).tolist())
                if rng.random() < 0.3 else set() for _ in range(n)]
    cand, cols = candidate_columns(found, declined, ids, k)
    want_cand, want_cols = _loop(found.tolist(), declined, ids, k)
    assert cand.shape == (n, k)
    assert cand.tolist() == want_cand
    assert cols.tolist() == want_cols


def test_stacked_couriers_are_columns_after_the_idle_ones() -> None:
    """Each stacked courier is one column numbered after the idle couriers, in order of
    first `add`; its pairs take extra slots of their order's row, at their cost (travel too:
    the greedy baseline ranks by it); rows without a stacked pair are padded."""
    idle = CandidateCosts(courier_idx=np.array([[0, 1], [1, -1], [0, -1]]),
                          cost_s=np.array([[10.0, 20.0], [5.0, np.inf], [7.0, np.inf]]),
                          travel_s=np.array([[1.0, 2.0], [3.0, np.inf], [4.0, np.inf]]),
                          n_couriers=2)
    stacked = StackCandidates(3)
    assert stacked.append_to(idle) is idle  # nothing stacked: the costs as they were
    stacked.add(2, "s-b", ("o9",), 30.0)
    stacked.add(0, "s-a", ("o7", "o8"), 40.0)
    stacked.add(2, "s-a", ("o7", "o8"), 50.0)
    got = stacked.append_to(idle)
    assert got.n_couriers == 4
    assert [(c.courier_id, c.held) for c in stacked.columns] == [("s-b", ("o9",)),
                                                                 ("s-a", ("o7", "o8"))]
    assert got.courier_idx.tolist() == [[0, 1, 3, -1], [1, -1, -1, -1], [0, -1, 2, 3]]
    assert got.cost_s[2, 2:].tolist() == [30.0, 50.0]
    assert got.travel_s[0, 2] == 40.0
    assert np.isinf(got.cost_s[1, 2:]).all()
