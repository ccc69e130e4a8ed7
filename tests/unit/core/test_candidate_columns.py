"""A round's candidate slots from the search's member indices (`_candidate_columns`) are
what the per-member loop they replaced built: per order its first K couriers found that did
not decline it, couriers numbered as columns in order of first appearance, row by row."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from api.core.dispatch.service import _candidate_columns
from geo.cells import cell_of
from geo.grid_index import anchor_cell, ij_keys
from tests.unit.geo.strategies import seeded


def _loop(found: list[list[int]], declined: list[set[str]], ids: list[str],
          k: int) -> tuple[list[list[int]], list[int]]:
    """The loop `run_round` ran before (over hit lists)."""
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
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(members)]
    found = np.full((n, width), -1, dtype=np.int64)
    for i in range(n):
        row = rng.permutation(members)[:rng.integers(0, min(width, members) + 1)]
        found[i, :len(row)] = row
    declined = [set(rng.choice(ids, size=rng.integers(0, min(3, members) + 1),
                               replace=False).tolist())
                if rng.random() < 0.3 else set() for _ in range(n)]
    cand, cols = _candidate_columns(found, declined, ids, k)
    want_cand, want_cols = _loop(found.tolist(), declined, ids, k)
    assert cand.shape == (n, k)
    assert cand.tolist() == want_cand
    assert cols.tolist() == want_cols


def test_ij_keys_from_filed_cells_equal_the_computed_ones() -> None:
    """Cells given (0 for unknown ones) give the same keys as cells computed from the
    points."""
    rng = np.random.default_rng(4)
    lat = 12.97 + rng.uniform(-0.1, 0.1, 300)
    lng = 77.59 + rng.uniform(-0.1, 0.1, 300)
    cells = [int(cell_of(a, b), 16) if i % 5 else 0
             for i, (a, b) in enumerate(zip(lat.tolist(), lng.tolist(), strict=True))]
    anchor = anchor_cell(12.97, 77.59)
    want = ij_keys(anchor, lat, lng)
    assert (ij_keys(anchor, lat, lng, cells=cells) == want).all()
    assert (ij_keys(anchor, lat, lng, cells=[c or 1 for c in cells][:10]) == want).all()
