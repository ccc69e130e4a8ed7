"""Lua scripts as package resources, and the prelude of named values they are composed with.

Scripts live in ``.lua`` files next to the adapter package that runs them (shipped as package
data, read with `importlib.resources`); a script is its prelude (values rendered from Python,
so no TTL, limit or state table is written twice), any library files it uses, then its own
file, joined into one text for ``SCRIPT LOAD``.

This package holds the live index's scripts (`api.stores.live_index`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib import resources

__all__ = ["compose", "lua_constants", "lua_value", "read"]

LuaValue = int | str | Iterable[str] | Mapping[str, Iterable[str]]


@functools.cache
def read(package: str, name: str) -> str:
    """The text of ``<name>.lua`` shipped in `package` (a dotted package name)."""
    return resources.files(package).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def compose(package: str, *names: str, prelude: Mapping[str, LuaValue] | None = None) -> str:
    """One script: `prelude` as Lua ``local`` values, then the files `names` of `package`,
    in order (libraries first, the script's own body last)."""
    parts = [lua_constants(prelude)] if prelude else []
    parts += [read(package, name) for name in names]
    return "\n".join(parts)


def lua_constants(values: Mapping[str, LuaValue]) -> str:
    """``local NAME = value`` per entry: ints and strings as literals, a collection of
    strings as a set (``{a = true}``), a mapping of strings to collections as a table of
    sets."""
    lines = ["-- Rendered from Python at load time: do not edit here."]
    for name, value in values.items():
        if not name.isidentifier():
            raise ValueError(f"{name!r} is not a Lua name")
        lines.append(f"local {name} = {lua_value(value)}")
    return "\n".join(lines) + "\n"


def lua_value(value: LuaValue) -> str:
    """A Lua literal for an int, a string, a set of strings or a table of such sets."""
    if isinstance(value, bool):
        raise TypeError("booleans have no Lua rendering here")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {lua_value(v)}"
                               for k, v in sorted(value.items())) + "}"
    return "{" + ", ".join(f"{_key(k)} = true" for k in sorted(value)) + "}"


def _key(key: str) -> str:
    if not key.isidentifier():
        raise ValueError(f"{key!r} is not a Lua table key")
    return str(key)
