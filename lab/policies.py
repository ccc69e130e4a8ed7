"""The policies the lab compares, each a named dispatch set on top of production's settings.

``production`` is production's dispatch as configured (`DispatchSettings`, from the
environment). Every other policy sets the matcher, the stack bound and each improvement of
issue 19 itself, so its name means the same whatever production ships; only the rest (round
period, candidates, radius, offer TTL, ...) comes from production:

- ``greedy``: nearest courier first, the baseline; ``optimal``: minimum total cost; both
  stack up to `STACK` orders per courier and use none of the improvements;
- ``-nostack``: stacking off (`DISPATCH_MAX_STACK=1`), to show what stacking is worth;
- ``-prep``: prep-time prediction from each kitchen's history (`DISPATCH_PREP_PREDICTION`,
  `dispatch.prep`);
- ``-hold``: wait for a better courier (`DISPATCH_COMMIT_EARLY_S`,
  `RoundParams.commit_early_s`);
- ``-stackcap``: stacking refused when it delays an order on board by more than a minute
  (`DISPATCH_STACK_MAX_DELAY_S`, `RoundParams.stack_max_delay_s`);
- ``-late``: only the lateness a courier adds is charged (`DISPATCH_LATE_ADDED_ONLY`,
  `CostParams.late_added_only`), so an order already past saving is still offered;
- ``-repos``: idle couriers follow repositioning hints toward predicted demand
  (`dispatch.reposition`, `LabDispatch.reposition`, every `REPOSITION_S`).

``improved`` is the optimal matcher with prediction, holding, added lateness and no
stacking; ``improved-repos`` adds the hints. The settings' defaults are ``improved-repos``
(ADR 0044; a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from dispatch.prep import PrepParams
from dispatch.reposition import RepositionParams
from lab.engine import LabDispatch

__all__ = ["COMMIT_EARLY_S", "POLICIES", "REPOSITION_S", "STACK", "STACK_MAX_DELAY_S",
           "apply_policy"]

STACK = 2
"""Stack bound of the policies that stack."""

COMMIT_EARLY_S = 180.0
"""``-hold``'s `RoundParams.commit_early_s`."""
STACK_MAX_DELAY_S = 60.0
"""``-stackcap``'s `RoundParams.stack_max_delay_s`."""
REPOSITION_S = 60.0
"""``-repos``: seconds between two rounds of hints (`LabDispatch.reposition_s`)."""


def _policy(policy: str, *, stack: bool = True, prep: bool = False, hold: bool = False,
            stackcap: bool = False, late: bool = False,
            repos: bool = False) -> Callable[[LabDispatch], LabDispatch]:
    def apply(d: LabDispatch) -> LabDispatch:
        params = msgspec.structs.replace(
            d.params, policy=policy, max_stack=STACK if stack else 1,
            commit_early_s=COMMIT_EARLY_S if hold else None,
            stack_max_delay_s=STACK_MAX_DELAY_S if stackcap else None,
            costs=msgspec.structs.replace(d.params.costs, late_added_only=late))
        # Production's own prediction and hint parameters when it has them.
        return msgspec.structs.replace(
            d, params=params,
            prep=(d.prep or PrepParams()) if prep else None,
            reposition=(d.reposition or RepositionParams()) if repos else None,
            reposition_s=d.reposition_s if d.reposition else REPOSITION_S)

    return apply


def _production(d: LabDispatch) -> LabDispatch:
    return d


POLICIES: dict[str, Callable[[LabDispatch], LabDispatch]] = {
    "production": _production,
    "greedy": _policy("greedy"),
    "optimal": _policy("optimal"),
    "greedy-nostack": _policy("greedy", stack=False),
    "optimal-nostack": _policy("optimal", stack=False),
    "greedy-prep": _policy("greedy", prep=True),
    "optimal-prep": _policy("optimal", prep=True),
    "optimal-prep-hold": _policy("optimal", prep=True, hold=True),
    "optimal-prep-stackcap": _policy("optimal", prep=True, stackcap=True),
    "optimal-prep-nostack": _policy("optimal", stack=False, prep=True),
    "optimal-prep-hold-nostack": _policy("optimal", stack=False, prep=True, hold=True),
    "improved": _policy("optimal", stack=False, prep=True, hold=True, late=True),
    "optimal-repos": _policy("optimal", repos=True),
    "improved-repos": _policy("optimal", stack=False, prep=True, hold=True, late=True,
                              repos=True),
}
"""Name -> production's dispatch under that policy."""


def apply_policy(name: str, production: LabDispatch) -> LabDispatch:
    """Production's dispatch under policy `name` (KeyError: no such policy)."""
    return POLICIES[name](production)
