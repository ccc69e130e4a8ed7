"""`homechef roads build FILE --out DIR`: OSRM data per profile from the wheel's own tools,
progress on stderr, a manifest; a missing or corrupt file is one line and exit status 1."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.cli import _city_plan, main
from api.settings import Settings
from roads.build import SAMPLE_EXTRACT
from tests.conftest import BuiltRoads


def _build(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["roads", "build", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_builds_the_monaco_extract_with_a_manifest(monaco_roads: BuiltRoads) -> None:
    """Each profile is extracted, partitioned and customised (MLD), with a progress line per
    step; the manifest names the source by hash, the road network's bbox, the profiles and
    the UTC build time."""
    assert monaco_roads.exit_code == 0, monaco_roads.stderr
    progress = monaco_roads.stderr.splitlines()
    for n, profile in enumerate(("car", "bicycle"), 1):
        for step in ("extract", "partition", "customize"):
            assert any(line.startswith(f"roads: [{n}/2] {profile}: {step} ")
                       for line in progress), progress
    assert f"ROADS={monaco_roads.directory}" in monaco_roads.stdout
    manifest = json.loads((monaco_roads.directory / "manifest.json").read_text())
    assert manifest["source"] == "monaco.osm.pbf"
    assert manifest["source_sha256"] == hashlib.sha256(SAMPLE_EXTRACT.read_bytes()).hexdigest()
    assert manifest["algorithm"] == "mld"
    assert manifest["profiles"] == {"car": "car/monaco.osrm", "bicycle": "bicycle/monaco.osrm"}
    min_lng, min_lat, max_lng, max_lat = manifest["bbox"]
    # The extract's published extent: lat 43.715-43.770, lng 7.349-7.491.
    assert 43.714 < min_lat < 43.716
    assert 43.769 < max_lat < 43.771
    assert 7.348 < min_lng < 7.350
    assert 7.490 < max_lng < 7.492
    built = datetime.strptime(manifest["built_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(0) <= datetime.now(UTC) - built < timedelta(hours=1)
    for base in manifest["profiles"].values():
        assert (monaco_roads.directory / f"{base}.mldgr").is_file()
    assert not list(monaco_roads.directory.glob(".*.tmp"))


def test_ch_into_the_default_folder_under_data_dir(tmp_path: Path) -> None:
    """Without --out the data goes to DATA_DIR/roads/<name>; --algorithm ch contracts."""
    code, _, err = _build(str(SAMPLE_EXTRACT), "--profile", "foot", "--algorithm", "ch",
                          env={"DATA_DIR": str(tmp_path)})
    assert code == 0, err
    out = tmp_path / "roads" / "monaco"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["algorithm"] == "ch"
    assert manifest["profiles"] == {"foot": "foot/monaco.osrm"}
    assert (out / "foot" / "monaco.osrm.hsgr").is_file()
    assert "roads: [1/1] foot: contract " in err


def test_a_missing_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    code, _out, err = _build(str(tmp_path / "nowhere.osm.pbf"), "--out", str(tmp_path / "o"))
    assert code == 1
    assert err == f"Error: {tmp_path / 'nowhere.osm.pbf'}: no such file\n"
    assert not (tmp_path / "o").exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _build(str(SAMPLE_EXTRACT), "--out", str(blocker / "roads"))
    assert code == 1
    assert err.startswith("Error: ")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_an_extract_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(bytes(range(256)) * 40)
    code, _, err = _build(str(junk), "--out", str(tmp_path / "o"))
    assert code == 1
    assert err.strip() == f"Error: {junk}: not an OSM PBF file (no OSMHeader block at the start)"
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    code, _, err = _build(str(empty), "--out", str(tmp_path / "o"))
    assert (code, err.strip()) == (1, f"Error: {empty}: the file is empty")


def test_a_truncated_extract_fails_in_osrm_extract_without_a_traceback(tmp_path: Path) -> None:
    """The start of a real file passes the header check; osrm-extract then aborts, and its
    own reason is the error. Nothing is left that looks like a build."""
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(SAMPLE_EXTRACT.read_bytes()[:500_000])
    out = tmp_path / "o"
    code, _, err = _build(str(cut), "--out", str(out), "--profile", "bicycle")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last == "Error: osrm-extract failed (killed by SIGABRT): PBF error: unexpected EOF"
    assert "Traceback" not in err
    assert not (out / "manifest.json").exists()
    assert not (out / "bicycle").exists()
    assert "osrm-extract" in (out / "build.log").read_text()


def test_the_demo_city_lies_inside_the_road_data(monaco_roads: BuiltRoads,
                                                 tmp_path: Path) -> None:
    """`up --demo` with ROADS set places its city in the middle of the road network (a city
    elsewhere would be off the map); without ROADS and city it stays where it was; a demo
    city lies at its own centre on its road data under DATA_DIR (here the session's, found
    built: nothing is built again), which the system then rides (ROADS)."""
    def plan(settings: Settings, city: str | None = None) -> tuple[float, float, Path | None]:
        p = _city_plan(settings, city, roads=None, lat=None, lng=None, radius_m=None)
        return p.lat, p.lng, p.settings.roads.path

    assert plan(Settings()) == (12.9716, 77.5946, None)
    lat, lng, roads = plan(Settings().replace(roads__path=monaco_roads.directory))
    assert lat == pytest.approx((43.715032 + 43.769991) / 2, abs=1e-4)
    assert lng == pytest.approx((7.349002 + 7.49066) / 2, abs=1e-4)
    assert roads == monaco_roads.directory.resolve()
    with pytest.raises(click.ClickException, match="no manifest"):
        plan(Settings().replace(roads__path=tmp_path))
    from api.simulator.cities import CITIES

    built = (monaco_roads.directory / "manifest.json").stat().st_mtime_ns
    data_dir = monaco_roads.directory.parent.parent
    assert plan(Settings().replace(server__data_dir=data_dir), "monaco") == (
        CITIES["monaco"].center.lat, CITIES["monaco"].center.lng,
        monaco_roads.directory.resolve())
    assert (monaco_roads.directory / "manifest.json").stat().st_mtime_ns == built
    explicit = _city_plan(Settings(), None, roads=monaco_roads.directory, lat=None, lng=None,
                          radius_m=500.0)  # --roads DIR: its middle, and core rides it
    assert (explicit.lat, explicit.lng) == (lat, lng)
    assert explicit.radius_m == 500.0
    assert explicit.settings.roads.path == monaco_roads.directory.resolve()
