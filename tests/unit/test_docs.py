"""The reference docs describe the repository as it is.

Rules checked:
- every repository path a page names (in backticks or as a relative link) exists — a path is a
  token whose first segment is a top-level entry of the repository (``api/core/gps/``,
  ``routing/eta.py``, ``api/core/dispatch/lua/*.lua``); globs must match at least one file;
- every setting's environment variable is documented on some page, and every variable a
  page's knob table names (``| `NAME` |``) is a real setting.
"""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import env_names

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([*ROOT.joinpath("docs").rglob("*.md"), ROOT / "README.md"])
TOP = {"geo", "dispatch", "routing", "streams", "roads", "api", "fleet_console", "tests", "bench",
       "docs", ".ci", "deploy"}
"""Tracked top-level folders (build output such as test-artifacts/ is not checked)."""
_TICKED = re.compile(r"`([A-Za-z0-9_.*/<>{}-]+)`")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_KNOB = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`")


def _knobs(text: str) -> set[str]:
    """First-column names of the tables whose header starts ``| variable``."""
    found: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if line.startswith("| variable"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and (m := _KNOB.match(line)):
            found.add(m.group(1))
    return found


def _named_paths(page: Path) -> list[tuple[str, Path]]:
    text = page.read_text()
    found: list[tuple[str, Path]] = []
    for token in _TICKED.findall(text):
        first = token.split("/", 1)[0]
        if "/" in token and first in TOP and not re.search(r"[<>{}]", token):
            found.append((token, ROOT / token))
    for target in _LINK.findall(text):
        if "://" not in target and not target.startswith("mailto:"):
            found.append((target, (page.parent / target).resolve()))
    return found


def _exists(path: Path) -> bool:
    if "*" in path.name or "*" in str(path.parent):
        return any(ROOT.glob(str(path.relative_to(ROOT))))
    return path.exists()


def test_every_named_path_exists() -> None:
    """A page never points at a file or folder that is not in the repository."""
    missing = [f"{page.relative_to(ROOT)}: {token}" for page in PAGES
               for token, path in _named_paths(page) if not _exists(path)]
    assert not missing, "docs name paths that do not exist:\n" + "\n".join(missing)
    assert sum(len(_named_paths(p)) for p in PAGES) > 50  # the check really read the pages


def test_every_setting_is_documented_and_no_knob_is_made_up() -> None:
    """Each environment variable of `Settings` appears in the docs; each knob-table row names
    a real one."""
    text = "\n".join(p.read_text() for p in PAGES)
    names = set(env_names().values())
    undocumented = sorted(n for n in names if f"`{n}`" not in text)
    assert not undocumented, f"settings missing from the docs: {undocumented}"
    knobs = _knobs(text)
    assert len(knobs) > 20  # the check really found the knob tables
    made_up = sorted(k for k in knobs if k not in names)
    assert not made_up, f"knob tables name variables that are not settings: {made_up}"
