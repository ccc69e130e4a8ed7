"""The solver pool admits a solve only if it would start within `max_wait_s`: the queued
solves' time limits, shared over the processes, say how long that is."""

from __future__ import annotations

import contextlib

import pytest

from api.core.routing_api import SolverBusyError, SolverPool


def test_admission_counts_queued_seconds_and_frees_them_when_done() -> None:
    pool = SolverPool(processes=2, max_wait_s=3.0)
    try:
        with contextlib.ExitStack() as held:
            for _ in range(4):  # waits 0, 1, 2, 3 s: admitted
                held.enter_context(pool.admit(2.0))
            assert pool.queued_s == 8.0
            with pytest.raises(SolverBusyError) as busy:  # would wait 4 s
                held.enter_context(pool.admit(2.0))
            assert busy.value.retry_after_s == 1
            assert pool.queued_s == 8.0  # a refusal holds nothing
        assert pool.queued_s == 0.0
        with pool.admit(2.0):  # everything finished: admitted again
            assert pool.queued_s == 2.0
    finally:
        pool.get().shutdown()


def test_a_failed_solve_frees_its_seconds() -> None:
    pool = SolverPool(processes=1, max_wait_s=0.5)
    try:
        with pytest.raises(RuntimeError), pool.admit(5.0):
            raise RuntimeError("the solve failed")
        assert pool.queued_s == 0.0
        with pool.admit(5.0):
            pass
    finally:
        pool.get().shutdown()
