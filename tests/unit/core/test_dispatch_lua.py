"""The dispatch scripts as composed from their ``.lua`` files: the state tables and TTLs come
from Python (never written in Lua), and every file shipped is used."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from api.core.dispatch import lua
from api.core.dispatch.store import KeyTtls
from api.stores.lua import lua_constants, lua_value

TTLS = KeyTtls().lua()


def test_every_lua_file_is_part_of_some_script() -> None:
    """No dead script: each ``.lua`` file of the package is a script of the store or a
    library one of them is composed with."""
    files = {p.name.removesuffix(".lua") for p in resources.files(lua.__name__).iterdir()
             if p.name.endswith(".lua")}
    used = set(lua.SCRIPTS) | {"outbox"}
    for libs, _ in lua.SCRIPTS.values():
        used |= set(libs)
    assert files == used


def test_the_lifecycle_tables_are_rendered_from_dispatch_lifecycle() -> None:
    """A script using the library starts with `dispatch.lifecycle`'s tables as Lua sets (the
    courier's reports below, written out by hand) and the named TTLs."""
    text = lua.script("progress", TTLS)
    assert ("local COURIER_REPORTS = {assigned = {picked_up = true}, delivering = "
            "{delivered = true}, picked_up = {delivered = true, delivering = true}}") in text
    assert "local FINAL_ORDER_STATES = {cancelled = true, delivered = true}" in text
    assert "local CLOSED_ORDER_TTL_MS = 86400000" in text
    for name in lua.LIFECYCLE_TABLES:
        assert f"local {name} = {lua_value(lua.LIFECYCLE_TABLES[name])}" in text


def test_no_script_writes_a_duration_or_a_state_table_itself() -> None:
    """Durations (5+ digit numbers) and `allowed`-style tables live only in the prelude."""
    for path in resources.files(lua.__name__).iterdir():
        if path.name.endswith(".lua"):
            body = path.read_text(encoding="utf-8")
            code = "\n".join(line.split("--", 1)[0] for line in body.splitlines())
            assert not re.search(r"\d{5,}", code), path.name
            assert "= true" not in code, path.name


def test_transitions_that_record_an_event_end_with_the_outbox() -> None:
    """Wrapped scripts run inside ``transition()`` and append their event after it."""
    text = lua.script("resolve", TTLS)
    assert text.index("local function transition()") < text.index("local r = transition()")
    assert "local function transition()" not in lua.script("cancel", TTLS)


def test_lua_values_render_as_literals_and_refuse_what_lua_cannot_name() -> None:
    """Ints and strings as literals (quotes escaped), sets of names as ``{x = true}``."""
    assert lua_value(5) == "5"
    assert lua_value("it's") == "'it\\'s'"
    assert lua_value({"b", "a"}) == "{a = true, b = true}"
    assert lua_constants({"N": 3}).endswith("local N = 3\n")
    with pytest.raises(ValueError, match="Lua table key"):
        lua_value({"not a name"})
    with pytest.raises(ValueError, match="Lua name"):
        lua_constants({"1x": 1})
