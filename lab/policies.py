"""The policies the lab compares: named changes to production's dispatch settings.

A policy is a function of the production `LabDispatch` (built from the settings, as
`Dispatcher` builds its `RoundParams`): ``optimal`` is production as configured, ``greedy``
the nearest-first baseline, and the ``-nostack`` variants turn stacking off
(`DISPATCH_MAX_STACK=1`) to show what stacking is worth. The improvements of issue 19 are
each one production setting, switchable here under its own name:

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

``improved`` is the set docs/lab.md recommends switching on together: the optimal matcher
with prediction, holding, added lateness and no stacking.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from dispatch.prep import PrepParams
from dispatch.reposition import RepositionParams
from lab.engine import LabDispatch

__all__ = ["COMMIT_EARLY_S", "POLICIES", "REPOSITION_S", "STACK_MAX_DELAY_S", "apply_policy"]

COMMIT_EARLY_S = 180.0
"""``-hold``'s `RoundParams.commit_early_s`."""
STACK_MAX_DELAY_S = 60.0
"""``-stackcap``'s `RoundParams.stack_max_delay_s`."""
REPOSITION_S = 60.0
"""``-repos``: seconds between two rounds of hints (`LabDispatch.reposition_s`)."""


def _policy(policy: str, *, max_stack: int | None = None, prep: bool = False,
            hold: bool = False, stackcap: bool = False, late: bool = False,
            repos: bool = False) -> Callable[[LabDispatch], LabDispatch]:
    def apply(d: LabDispatch) -> LabDispatch:
        params = msgspec.structs.replace(d.params, policy=policy)
        if max_stack is not None:
            params = msgspec.structs.replace(params, max_stack=max_stack)
        if hold:
            params = msgspec.structs.replace(params, commit_early_s=COMMIT_EARLY_S)
        if stackcap:
            params = msgspec.structs.replace(params, stack_max_delay_s=STACK_MAX_DELAY_S)
        if late:
            params = msgspec.structs.replace(params, costs=msgspec.structs.replace(
                params.costs, late_added_only=True))
        d = msgspec.structs.replace(d, params=params)
        if prep and d.prep is None:
            d = msgspec.structs.replace(d, prep=PrepParams())
        if repos and d.reposition is None:
            d = msgspec.structs.replace(d, reposition=RepositionParams(),
                                        reposition_s=REPOSITION_S)
        return d

    return apply


POLICIES: dict[str, Callable[[LabDispatch], LabDispatch]] = {
    "greedy": _policy("greedy"),
    "optimal": _policy("optimal"),
    "greedy-nostack": _policy("greedy", max_stack=1),
    "optimal-nostack": _policy("optimal", max_stack=1),
    "greedy-prep": _policy("greedy", prep=True),
    "optimal-prep": _policy("optimal", prep=True),
    "optimal-prep-hold": _policy("optimal", prep=True, hold=True),
    "optimal-prep-stackcap": _policy("optimal", prep=True, stackcap=True),
    "optimal-prep-nostack": _policy("optimal", max_stack=1, prep=True),
    "optimal-prep-hold-nostack": _policy("optimal", max_stack=1, prep=True, hold=True),
    "improved": _policy("optimal", max_stack=1, prep=True, hold=True, late=True),
    "optimal-repos": _policy("optimal", repos=True),
    "improved-repos": _policy("optimal", max_stack=1, prep=True, hold=True, late=True,
                              repos=True),
}
"""Name -> the change it makes to production's dispatch."""


def apply_policy(name: str, production: LabDispatch) -> LabDispatch:
    """Production's dispatch under policy `name` (KeyError: no such policy)."""
    return POLICIES[name](production)
