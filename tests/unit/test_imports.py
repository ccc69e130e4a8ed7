"""The project's import graph: no cycles, core and commerce apart, a pure core.

Read statically with `ast` (nothing is imported) from every .py file of the project packages.

The graph. A node is a project module: `x/y.py` is `x.y`, a package `x/__init__.py` is `x`.
Every import statement counts wherever it is: module level, inside a function, under
`if TYPE_CHECKING:` (a dependency is a dependency, even when only run on demand). Relative
imports are resolved against the importing module's package. An import adds an edge from the
importing module to exactly the module it names:

- `import x.y.z` -> `x.y.z` (the longest prefix that is a project module);
- `from x.y import z` -> `x.y.z` if `z` is a submodule, else `x.y` (a name defined or
  re-exported by `x.y`); one edge per imported name; `from x.y import *` -> `x.y`.

Parent packages are not edges: that `import x.y` also runs `x/__init__` is ignored. So a
package `__init__` importing its own children is not a cycle by itself; it becomes one only
when a child (or something it imports) imports back a name from the package, e.g.
`from x import Thing` inside `x.y` while `x/__init__` imports `x.y`. A module importing itself
is ignored. Imports of modules outside the project packages are not nodes.

The rules checked:
1. the graph has no cycle;
2. nothing under `api.core` imports anything under `api.commerce`, nor the other way round;
3. nothing under `geo`, `routing`, `dispatch` or `lab` (the pure core) imports redis, nats,
   asyncpg or litestar, directly or through the project modules it imports.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geo", "dispatch", "routing", "streams", "roads", "api", "bench", "fleet_console",
            "lab")
PURE_CORE = ("geo", "routing", "dispatch", "lab")
IO_LIBRARIES = ("redis", "nats", "asyncpg", "litestar")


class Import:
    """One import statement's target, where it was written."""

    def __init__(self, target: str, path: Path, line: int) -> None:
        self.target = target  # absolute dotted name as written/resolved (maybe not a module)
        self.path = path
        self.line = line

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[_module_name(path)] = path
    return files


def _imports(module: str, path: Path, modules: set[str]) -> list[Import]:
    """Every import in the file, as absolute dotted targets; `from x import a, b` gives one
    target per name (`x.a` when that is a module, else `x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, path, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                source = ".".join(base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                target = candidate if alias.name != "*" and candidate in modules else source
                found.append(Import(target, path, node.lineno))
    return found


def _project_module(target: str, modules: set[str]) -> str | None:
    """The longest prefix of `target` that is a project module (None: not the project's)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in modules:
            return name
    return None


@functools.cache
def _graph() -> tuple[dict[str, dict[str, Import]], dict[str, list[Import]]]:
    """(project edges: module -> {imported module: first such import}, all imports per
    module, project or not). Read once per session: every test here only reads it."""
    files = _project_files()
    modules = set(files)
    edges: dict[str, dict[str, Import]] = {m: {} for m in files}
    every: dict[str, list[Import]] = {}
    for module, path in files.items():
        every[module] = _imports(module, path, modules)
        for imp in every[module]:
            target = _project_module(imp.target, modules)
            if target is not None and target != module:
                edges[module].setdefault(target, imp)
    return edges, every


def _cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected component with more than one
    module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return [_cycle_in(edges, set(c), c[0]) for c in sorted(components)]


def _cycle_in(edges: dict[str, dict[str, Import]], members: set[str], start: str) -> list[str]:
    """A shortest closed path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node]):
                if child not in members or child in previous:
                    continue
                previous[child] = node
                if child == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def _describe(cycle: list[str], edges: dict[str, dict[str, Import]]) -> str:
    steps = [f"{a} -> {b} ({edges[a][b].where()})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def _under(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_import_graph_is_read() -> None:
    """Guard against a vacuous pass: the graph sees the packages and a known edge."""
    edges, _ = _graph()
    assert {"routing", "routing.solver", "api.core", "api.commerce"} <= set(edges)
    assert "routing.reduce" in edges["routing.solver"]
    assert "routing.model" in edges["routing.insertion"]


def test_no_import_cycle() -> None:
    """No module reaches itself through project imports (rule in the module docstring)."""
    edges, _ = _graph()
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(
        "  " + _describe(cycle, edges) for cycle in cycles
    )


def test_core_and_commerce_do_not_import_each_other() -> None:
    """`api.core*` imports nothing of `api.commerce*`, and `api.commerce*` nothing of
    `api.core*`."""
    edges, _ = _graph()
    crossing = [
        f"{module} -> {target} ({imp.where()})"
        for module, targets in sorted(edges.items())
        for target, imp in sorted(targets.items())
        if (_under(module, ["api.core"]) and _under(target, ["api.commerce"]))
        or (_under(module, ["api.commerce"]) and _under(target, ["api.core"]))
    ]
    assert not crossing, "core/commerce imports across the boundary:\n  " + "\n  ".join(crossing)


def test_pure_core_imports_no_io_library() -> None:
    """geo, routing, dispatch and lab import none of redis, nats, asyncpg, litestar: neither
    themselves nor through any project module they import (transitively)."""
    edges, every = _graph()
    direct = {
        module: [imp for imp in imports if _under(imp.target, IO_LIBRARIES)]
        for module, imports in every.items()
    }
    offences = []
    for start in sorted(m for m in edges if _under(m, PURE_CORE)):
        # Breadth first over project imports, remembering how each module was reached.
        via: dict[str, str | None] = {start: None}
        frontier = [start]
        while frontier:
            following = []
            for module in frontier:
                for imp in direct[module]:
                    chain = [module]
                    while (parent := via[chain[-1]]) is not None:
                        chain.append(parent)
                    offences.append(
                        " -> ".join(chain[::-1]) + f" imports {imp.target} ({imp.where()})"
                    )
                for child in sorted(edges[module]):
                    if child not in via:
                        via[child] = module
                        following.append(child)
            frontier = following
    assert not offences, "the pure core reaches I/O libraries:\n  " + "\n  ".join(
        sorted(set(offences))
    )


def test_lab_imports_nothing_from_the_adapters() -> None:
    """The lab is pure core all the way down: no module under `lab` imports `api` (the
    promise and the day's KPIs it shares with commerce and `simulate` live in `dispatch`)."""
    _, every = _graph()
    offences = [f"{module} imports {imp.target} ({imp.where()})"
                for module, imports in sorted(every.items()) if _under(module, ["lab"])
                for imp in imports if _under(imp.target, ["api"])]
    assert not offences, "lab reaches into api:\n  " + "\n  ".join(offences)
