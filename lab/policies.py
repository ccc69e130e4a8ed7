"""The policies the lab compares: named changes to production's dispatch settings.

A policy is a function of the production `LabDispatch` (built from the settings, as
`Dispatcher` builds its `RoundParams`): ``optimal`` is production as configured, ``greedy``
the nearest-first baseline, and the ``-nostack`` variants turn stacking off
(`DISPATCH_MAX_STACK=1`) to show what stacking is worth. An improvement joins here under its
own name, switchable beside the others.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from lab.engine import LabDispatch

__all__ = ["POLICIES", "apply_policy"]


def _matcher(policy: str, max_stack: int | None = None) -> Callable[[LabDispatch], LabDispatch]:
    def apply(d: LabDispatch) -> LabDispatch:
        params = msgspec.structs.replace(d.params, policy=policy)
        if max_stack is not None:
            params = msgspec.structs.replace(params, max_stack=max_stack)
        return msgspec.structs.replace(d, params=params)

    return apply


POLICIES: dict[str, Callable[[LabDispatch], LabDispatch]] = {
    "greedy": _matcher("greedy"),
    "optimal": _matcher("optimal"),
    "greedy-nostack": _matcher("greedy", max_stack=1),
    "optimal-nostack": _matcher("optimal", max_stack=1),
}
"""Name -> the change it makes to production's dispatch."""


def apply_policy(name: str, production: LabDispatch) -> LabDispatch:
    """Production's dispatch under policy `name` (KeyError: no such policy)."""
    return POLICIES[name](production)
