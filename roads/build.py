"""`homechef roads build`: OSRM data for each profile from one OpenStreetMap extract.

The tools and Lua profiles are the `osrm-bindings` wheel's own (``osrm/bin``,
``osrm/share/profiles``), so the data always matches the in-process engine that reads it.
Per profile: ``osrm-extract`` then ``osrm-partition`` + ``osrm-customize`` (MLD) or
``osrm-contract`` (CH), into ``<out>/.<profile>.tmp``, renamed to ``<out>/<profile>`` only
when every step succeeded; ``manifest.json`` is written last. The tools' own log goes to
``<out>/build.log``; a failing tool's last error line is the error shown.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from roads.manifest import Manifest, RoadsError, write_manifest
from roads.profiles import Algorithm, Profile

__all__ = ["SAMPLE_EXTRACT", "SOURCE_SUFFIXES", "build_roads", "check_source", "osrm_home",
           "source_stem"]

SAMPLE_EXTRACT = Path(__file__).resolve().parent / "data" / "monaco.osm.pbf"
"""The Monaco extract shipped with the package (roads/data/README.md: licence, attribution)."""

SOURCE_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2")
"""What osrm-extract reads."""

_PBF_MAX_HEADER = 64 * 1024  # the PBF format's own limit on a BlobHeader


def osrm_home() -> Path:
    """The installed `osrm` package folder (found without loading its extension)."""
    spec = importlib.util.find_spec("osrm")
    if spec is None or spec.origin is None:
        raise RoadsError("the osrm-bindings package is not installed (pip install -e .)")
    return Path(spec.origin).parent


def source_stem(source: Path) -> str:
    """``monaco.osm.pbf`` -> ``monaco``."""
    name = source.name
    for suffix in SOURCE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or "roads"
    return source.stem


def check_source(source: Path) -> None:
    """Refuse, with a reason, a file that is missing or plainly not an OSM extract. A file
    that passes may still be corrupt further in; osrm-extract then says where."""
    if not source.exists():
        raise RoadsError(f"{source}: no such file")
    if not source.is_file():
        raise RoadsError(f"{source}: not a file")
    if not source.name.endswith(SOURCE_SUFFIXES):
        raise RoadsError(f"{source}: expected an OpenStreetMap extract "
                         f"({', '.join(SOURCE_SUFFIXES)})")
    try:
        with source.open("rb") as f:
            head = f.read(4 + _PBF_MAX_HEADER)
    except OSError as exc:
        raise RoadsError(f"{source}: cannot read ({exc.strerror})") from None
    if not head:
        raise RoadsError(f"{source}: the file is empty")
    if source.name.endswith(".pbf"):
        # A PBF starts with a 4-byte big-endian BlobHeader length, then the header of the
        # first blob, whose type is "OSMHeader".
        size = int.from_bytes(head[:4], "big")
        if not 0 < size <= _PBF_MAX_HEADER or b"OSMHeader" not in head[4 : 4 + size]:
            raise RoadsError(f"{source}: not an OSM PBF file (no OSMHeader block at the start)")
    elif source.name.endswith(".osm") and b"<osm" not in head[:4096]:
        raise RoadsError(f"{source}: not an OSM XML file (no <osm> element at the start)")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex (the manifest's `source_sha256`)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tool_error(output: str) -> str:
    """The line of a tool's output that says what went wrong (its last error line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "what():" in line:
            return line.split("what():", 1)[1].strip()
        if "[error]" in line:
            return line.split("[error]", 1)[1].strip()
    return lines[-1] if lines else "no output"


def run_tool(argv: list[str], log_path: Path) -> None:
    """Run one of the wheel's tools, its output appended to `log_path`; RoadsError with
    the tool's last error line when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tool = Path(argv[0]).name
        rc = proc.returncode
        how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        raise RoadsError(f"{tool} failed ({how}): "
                         f"{_tool_error(proc.stdout + proc.stderr)}")


def network_bbox(base: Path) -> tuple[float, float, float, float]:
    """(min_lng, min_lat, max_lng, max_lat) of the road nodes in ``<base>.nbg_nodes``.

    OSRM's data files are tar archives; the node coordinates are int32 (lng, lat) pairs in
    micro-degrees."""
    with tarfile.open(f"{base}.nbg_nodes") as tar:
        member = tar.extractfile("/common/nbn_data/coordinates")
        if member is None:
            raise RoadsError(f"{base}.nbg_nodes holds no coordinates")
        xy = np.frombuffer(member.read(), dtype="<i4").reshape(-1, 2) / 1e6
    if not len(xy):
        raise RoadsError("the extract has no roads for this profile")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _steps(algorithm: Algorithm) -> tuple[str, ...]:
    return ("partition", "customize") if algorithm == "mld" else ("contract",)


def build_roads(
    source: Path,
    out: Path,
    *,
    profiles: Sequence[Profile],
    algorithm: Algorithm = "mld",
    threads: int = 2,
    progress: Callable[[str], None] = lambda _line: None,
) -> Manifest:
    """Build `profiles` from `source` into `out` and write its manifest (module docstring).

    Raises RoadsError for a missing or bad source, an unknown profile, or a failing tool."""
    check_source(source)
    home = osrm_home()
    bin_dir, profile_dir = home / "bin", home / "share" / "profiles"
    for profile in profiles:
        if not (profile_dir / f"{profile}.lua").is_file():
            raise RoadsError(f"no OSRM profile {profile!r} in {profile_dir}")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "build.log"
    log_path.write_text("")
    stem = source_stem(source)
    started = time.perf_counter()
    progress(f"source {source} ({source.stat().st_size:,} bytes)")
    sha256 = file_sha256(source)
    bases: dict[Profile, str] = {}
    boxes: list[tuple[float, float, float, float]] = []
    for n, profile in enumerate(profiles, 1):
        tmp = out / f".{profile}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        base = tmp / f"{stem}.osrm"
        commands = [("extract", [str(bin_dir / "osrm-extract"), "-p",
                                 str(profile_dir / f"{profile}.lua"), str(source),
                                 "-o", str(base), "-t", str(threads)])]
        commands += [(step, [str(bin_dir / f"osrm-{step}"), str(base), "-t", str(threads)])
                     for step in _steps(algorithm)]
        for step, argv in commands:
            t0 = time.perf_counter()
            try:
                run_tool(argv, log_path)
            except RoadsError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            progress(f"[{n}/{len(profiles)}] {profile}: {step} "
                     f"{time.perf_counter() - t0:.1f} s")
        boxes.append(network_bbox(base))
        final = out / profile
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        bases[profile] = f"{profile}/{stem}.osrm"
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))
    manifest = Manifest(
        source=source.name, source_sha256=sha256, source_bytes=source.stat().st_size,
        bbox=bbox, algorithm=algorithm, profiles=bases,
        built_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        build_s=round(time.perf_counter() - started, 3),
        osrm_bindings=importlib.metadata.version("osrm-bindings"))
    path = write_manifest(out, manifest)
    progress(f"wrote {path}")
    return manifest
