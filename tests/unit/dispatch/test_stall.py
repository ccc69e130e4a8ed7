"""The watchdog's rule: which active orders have stalled, why, and whether they may be
withdrawn (only before pickup) or only surfaced."""

from __future__ import annotations

import pytest

from dispatch.lifecycle import OrderDispatchState as S
from dispatch.stall import OrderProgress, Stall, StallAction, StallLimits, StallReason, judge

NOW = 1_900_000_000_000
SEC = 1000
MIN = 60 * SEC
LIMITS = StallLimits(no_fix_s=180, no_progress_s=1800, stuck_s=3600)
W, SURF = StallAction.WITHDRAW, StallAction.SURFACE

CASES = [
    # (why, progress, expected verdict)
    ("assigned, fixes coming: fine",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 10 * MIN, last_fix_ms=NOW - 5 * SEC), None),
    ("assigned, silent 3 min + 1 s: withdrawn",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 10 * MIN,
                   last_fix_ms=NOW - 3 * MIN - SEC),
     Stall(reason=StallReason.NO_FIX, action=W, since_ms=NOW - 3 * MIN - SEC)),
    ("assigned, silent exactly 3 min: not yet",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 10 * MIN, last_fix_ms=NOW - 3 * MIN),
     None),
    ("assigned a minute ago, last fix older: the assignment itself is progress",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - MIN, last_fix_ms=NOW - 20 * MIN), None),
    ("assigned, never a fix, 4 min: withdrawn",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 4 * MIN, last_fix_ms=None),
     Stall(reason=StallReason.NO_FIX, action=W, since_ms=NOW - 4 * MIN)),
    ("assigned, moving, food ready 31 min ago, not collected: withdrawn",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 40 * MIN, food_ready_ms=NOW - 31 * MIN,
                   last_fix_ms=NOW - SEC),
     Stall(reason=StallReason.NO_PROGRESS, action=W, since_ms=NOW - 31 * MIN)),
    ("assigned 10 min ago, food ready long before: its 30 min run from the assignment",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 10 * MIN, food_ready_ms=NOW - 50 * MIN,
                   last_fix_ms=NOW - SEC), None),
    ("assigned, moving, food never marked ready, 61 min: surfaced (kitchen), not withdrawn",
     OrderProgress(state=S.ASSIGNED, since_ms=NOW - 61 * MIN, last_fix_ms=NOW - SEC),
     Stall(reason=StallReason.TOO_LONG, action=SURF, since_ms=NOW - 61 * MIN)),
    ("picked up, silent 4 min: surfaced only (the food is with the courier)",
     OrderProgress(state=S.PICKED_UP, since_ms=NOW - 10 * MIN, last_fix_ms=NOW - 4 * MIN),
     Stall(reason=StallReason.NO_FIX, action=SURF, since_ms=NOW - 4 * MIN)),
    ("delivering, silent 4 min: surfaced only",
     OrderProgress(state=S.DELIVERING, since_ms=NOW - 10 * MIN, last_fix_ms=NOW - 4 * MIN),
     Stall(reason=StallReason.NO_FIX, action=SURF, since_ms=NOW - 4 * MIN)),
    ("delivering, moving, 61 min: surfaced",
     OrderProgress(state=S.DELIVERING, since_ms=NOW - 61 * MIN, last_fix_ms=NOW - SEC),
     Stall(reason=StallReason.TOO_LONG, action=SURF, since_ms=NOW - 61 * MIN)),
    ("waiting 61 min: surfaced (nobody can take it)",
     OrderProgress(state=S.WAITING, since_ms=NOW - 61 * MIN),
     Stall(reason=StallReason.TOO_LONG, action=SURF, since_ms=NOW - 61 * MIN)),
    ("waiting, queued for later: fine",
     OrderProgress(state=S.WAITING, since_ms=NOW + 20 * MIN), None),
    ("offered, no fix rule (the offer expires on its own): fine",
     OrderProgress(state=S.OFFERED, since_ms=NOW - 5 * MIN, last_fix_ms=None), None),
    ("delivered long ago: closed, never stalled",
     OrderProgress(state=S.DELIVERED, since_ms=NOW - 600 * MIN), None),
    ("cancelled: never stalled",
     OrderProgress(state=S.CANCELLED, since_ms=NOW - 600 * MIN), None),
    ("state entry unknown: not judged",
     OrderProgress(state=S.ASSIGNED, since_ms=None), None),
]


@pytest.mark.parametrize(("why", "progress", "expected"), CASES, ids=[c[0] for c in CASES])
def test_stall_verdicts(why: str, progress: OrderProgress, expected: Stall | None) -> None:
    """Each row: an order's progress at NOW and the verdict the rule must give."""
    assert judge(progress, LIMITS, NOW) == expected, why


def test_only_assigned_orders_are_ever_withdrawn() -> None:
    """Whatever the times, a withdrawal is only answered before pickup."""
    for state in S:
        for since in (NOW - 600 * MIN, NOW - 4 * MIN, NOW):
            for fix in (None, NOW - 600 * MIN, NOW):
                for ready in (None, NOW - 600 * MIN):
                    v = judge(OrderProgress(state=state, since_ms=since, last_fix_ms=fix,
                                            food_ready_ms=ready), LIMITS, NOW)
                    if v is not None and v.action is W:
                        assert state is S.ASSIGNED
