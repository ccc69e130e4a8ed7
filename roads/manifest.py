"""`manifest.json`: what a road folder built by `homechef roads build` holds.

A road folder is self-describing: ``<dir>/manifest.json`` plus one sub-folder per profile
(``<dir>/car/<name>.osrm.*``). The manifest is written last, so a folder without one is an
unfinished build and is refused.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from roads.profiles import Algorithm, Profile

__all__ = ["MANIFEST_NAME", "Manifest", "RoadsError", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"


class RoadsError(Exception):
    """A road folder or source extract is unusable; the message says why, for a person."""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    version: int = 1
    source: str
    """The extract's file name (``monaco.osm.pbf``)."""
    source_sha256: str
    source_bytes: int
    bbox: tuple[float, float, float, float]
    """(min_lng, min_lat, max_lng, max_lat) of the routable road nodes (WGS84)."""
    algorithm: Algorithm
    profiles: dict[Profile, str]
    """Profile -> its OSRM base path, relative to the folder (``car/monaco.osrm``)."""
    built_at: str
    """UTC, ISO 8601 (``2026-12-06T16:30:00Z``)."""
    build_s: float
    osrm_bindings: str
    """Version of the wheel whose tools built the data (the engine must read the same)."""


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RoadsError(f"{directory} is not a road folder: no {MANIFEST_NAME} "
                         "(build one with `homechef roads build FILE.osm.pbf`)") from None
    except OSError as exc:
        raise RoadsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise RoadsError(f"{path} is not a valid road manifest: {exc}") from None


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write atomically (a temporary file renamed over), so readers never see half of it."""
    path = directory / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
    tmp.replace(path)
    return path
