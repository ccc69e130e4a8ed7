"""When dispatch work has stalled: the watchdog's rule, pure (the caller passes ``now_ms``).

An assignment that makes no progress strands its order: the food waits at the kitchen while
the courier's app has died, lost its network or been forgotten, and nothing else ever moves
the order on. `judge` looks at one active order — its state, when it entered that state,
when the food was marked ready, and the courier's last GPS fix — and says whether it is
stalled, why (`StallReason`) and what is safe to do about it (`StallAction`):

- assigned, the courier silent (no fix, and no assignment either, for `StallLimits.no_fix_s`):
  **withdraw** — the food is still at the kitchen, so the order can go to someone else;
- assigned, the food ready for `StallLimits.no_progress_s` and still not collected (the
  courier moves but does not come): **withdraw**;
- picked up or delivering, the courier silent for `no_fix_s`: **surface** only — the food is
  with that courier, and no other courier can deliver it;
- in any active state for longer than `StallLimits.stuck_s`: **surface** (a kitchen that never
  marks the food ready, a courier that never reports delivery, an order nobody can take).

A withdrawal is always of an order not yet picked up (`StallAction.WITHDRAW` is only ever
answered for `OrderDispatchState.ASSIGNED`).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from dispatch.lifecycle import CARRIED_STATES, FINAL_ORDER_STATES, OrderDispatchState

__all__ = ["OrderProgress", "Stall", "StallAction", "StallLimits", "StallReason", "judge"]


class StallReason(StrEnum):
    NO_FIX = "no_fix"
    """The courier holding it sent no GPS fix for `StallLimits.no_fix_s`."""
    NO_PROGRESS = "no_progress"
    """Assigned, the food ready for `StallLimits.no_progress_s`, not picked up."""
    TOO_LONG = "too_long"
    """In its current state for longer than `StallLimits.stuck_s`."""


class StallAction(StrEnum):
    WITHDRAW = "withdraw"
    """Take the order back from its courier (it waits again, offered to others)."""
    SURFACE = "surface"
    """Show it to people (metric, log, the console's stuck list); change nothing."""


class StallLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The deadlines of `judge`, in seconds (DISPATCH_STALL_NO_FIX_S,
    DISPATCH_STALL_NO_PROGRESS_S, DISPATCH_STUCK_S)."""

    no_fix_s: float = 180.0
    no_progress_s: float = 1800.0
    stuck_s: float = 3600.0


class OrderProgress(msgspec.Struct, frozen=True, kw_only=True):
    """What `judge` needs of an order (epoch ms UTC; None: not known / not happened)."""

    state: OrderDispatchState
    since_ms: int | None
    """When it entered its current state (for waiting: when it entered the queue)."""
    food_ready_ms: int | None = None
    """When the chef marked the food ready."""
    last_fix_ms: int | None = None
    """The holding courier's last accepted GPS fix."""


class Stall(msgspec.Struct, frozen=True, kw_only=True):
    """A stalled order: why, what to do, and since when (the start of the deadline that
    passed)."""

    reason: StallReason
    action: StallAction
    since_ms: int


def judge(p: OrderProgress, limits: StallLimits, now_ms: int) -> Stall | None:
    """Whether the order `p` has stalled at `now_ms` (None: it has not, or is closed, or
    the time it entered its state is unknown). The first deadline passed, in the order of
    the module's list, decides."""
    if p.state in FINAL_ORDER_STATES or p.since_ms is None:
        return None
    held = p.state is OrderDispatchState.ASSIGNED or p.state in CARRIED_STATES
    if held:
        heard_ms = max(p.since_ms, p.last_fix_ms or 0)
        if now_ms - heard_ms > limits.no_fix_s * 1000:
            return Stall(reason=StallReason.NO_FIX, action=_act(p.state), since_ms=heard_ms)
    if p.state is OrderDispatchState.ASSIGNED and p.food_ready_ms is not None:
        waited_from = max(p.since_ms, p.food_ready_ms)
        if now_ms - waited_from > limits.no_progress_s * 1000:
            return Stall(reason=StallReason.NO_PROGRESS, action=StallAction.WITHDRAW,
                         since_ms=waited_from)
    if now_ms - p.since_ms > limits.stuck_s * 1000:
        return Stall(reason=StallReason.TOO_LONG, action=StallAction.SURFACE,
                     since_ms=p.since_ms)
    return None


def _act(state: OrderDispatchState) -> StallAction:
    """Withdraw before pickup; once the food is with the courier, surface only."""
    return StallAction.WITHDRAW if state is OrderDispatchState.ASSIGNED else StallAction.SURFACE
