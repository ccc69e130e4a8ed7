"""The dispatch store's Lua scripts, composed from the ``.lua`` files of this package.

Every transition script is the prelude (the state tables of `dispatch.lifecycle` and the key
TTLs, rendered from Python), ``lib.lua`` (and ``claims.lua`` for the offer scripts), then its
own file; the transitions that record a dispatch.* event are wrapped in
``local function transition() ... end`` followed by ``outbox.lua``.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.stores.lua import LuaValue, compose
from dispatch.lifecycle import (
    CARRIED_STATES,
    COURIER_REPORTS,
    FINAL_ORDER_STATES,
    FLEET_ASSIGNABLE,
    MAY_GO_OFFLINE,
    UNASSIGNABLE,
)

__all__ = ["LIFECYCLE_TABLES", "SCRIPTS", "script"]

LIFECYCLE_TABLES: dict[str, LuaValue] = {
    "COURIER_REPORTS": COURIER_REPORTS, "FLEET_ASSIGNABLE": FLEET_ASSIGNABLE,
    "UNASSIGNABLE": UNASSIGNABLE, "FINAL_ORDER_STATES": FINAL_ORDER_STATES,
    "CARRIED_STATES": CARRIED_STATES, "MAY_GO_OFFLINE": MAY_GO_OFFLINE,
}
"""The `dispatch.lifecycle` tables the scripts check, by their Lua name."""

_LIBS = ("lib",)
_CLAIMS = ("lib", "claims")
SCRIPTS: dict[str, tuple[tuple[str, ...], bool]] = {
    # name: (library files before it, wrapped with the outbox)
    "enqueue": ((), False),
    "offer": (_CLAIMS, False),
    "offer_stacked": (_CLAIMS, False),
    "offer_many": (_CLAIMS, False),
    "round_orders": ((), False),
    "stack_inputs": ((), False),
    "resolve": (_LIBS, True),
    "force_assign": (_LIBS, True),
    "unassign": (_LIBS, True),
    "progress": (_LIBS, True),
    "food_ready": ((), False),
    "cancel": (_LIBS, False),
    "availability": (_LIBS, False),
    "lease": ((), False),
    "drop_region_if_empty": ((), False),
    "drop_row": ((), False),
    "pop_if_head": ((), False),
    "withdraw_stalled": (_LIBS, True),
    "restore_holding": (_LIBS, False),
    "reassert": (_LIBS, False),
    "restore_courier": (_LIBS, False),
}
"""Every script of `DispatchStore`: the library files it is composed with, and whether its
reply's event enters the outbox in the same step."""


def script(name: str, constants: Mapping[str, LuaValue]) -> str:
    """The text of script `name`; `constants` (the store's named TTLs) join the lifecycle
    tables in the prelude of the scripts that use the library."""
    libs, outboxed = SCRIPTS[name]
    prelude = {**LIFECYCLE_TABLES, **constants} if libs else None
    if not outboxed:
        return compose(__name__, *libs, name, prelude=prelude)
    return "\n".join([compose(__name__, *libs, prelude=prelude),
                      "local function transition()", compose(__name__, name), "end",
                      compose(__name__, "outbox")])
