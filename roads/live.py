"""Learnt speeds applied to the road data while it serves (the I/O side of live traffic).

`Recustomiser.customise` copies a profile's built MLD data into a fresh generation folder,
runs the wheel's ``osrm-customize --segment-speed-file`` there with the speeds learnt so far
(`roads.traffic`), and opens an engine on the result. The built data is never changed, so
each generation starts from the profile's own speeds and a segment no longer reported goes
back to them. The caller swaps the engine in (`RoadTravelModel.swap_engine`): queries
already running finish on the old engine, the next ones use the new one, the service never
stops. Only MLD data can be re-customised (CH would need a full contraction).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from roads.build import osrm_home, run_tool
from roads.manifest import Manifest, RoadsError
from roads.profiles import Profile
from roads.traffic import SegmentSpeed, segment_speed_csv

__all__ = ["Recustomiser"]


class Recustomiser:
    """Generations of one road folder's profiles with learnt speeds, under `work_dir`
    (default ``<folder>/live``), named ``<profile>-<pid>-<n>``: several processes may
    serve one folder. Each keeps its newest `keep` generations per profile; those of
    processes no longer running are removed when a Recustomiser starts."""

    def __init__(self, directory: Path, manifest: Manifest, *, work_dir: Path | None = None,
                 keep: int = 2, threads: int = 1) -> None:
        if manifest.algorithm != "mld":
            raise RoadsError("live traffic needs MLD road data (built with --algorithm mld)")
        self.directory = directory
        self.manifest = manifest
        self.work_dir = work_dir or directory / "live"
        self.keep = max(1, keep)
        self.threads = threads
        self.generation = 0
        self.last_s = 0.0
        """How long the last customise took (copy + osrm-customize + load)."""
        self._remove_orphans()

    def customise(self, profile: Profile, speeds: Iterable[SegmentSpeed]) -> Any:
        """A new engine for `profile` with `speeds` applied (blocking: run it in a thread).
        Raises RoadsError when the tool fails."""
        import osrm

        started = time.perf_counter()
        self.generation += 1
        base = self.directory / self.manifest.profiles[profile]
        gen = self.work_dir / f"{profile}-{os.getpid()}-{self.generation:06d}"
        shutil.rmtree(gen, ignore_errors=True)
        shutil.copytree(base.parent, gen)
        speed_file = gen / "speeds.csv"
        speed_file.write_text(segment_speed_csv(speeds))
        target = gen / base.name
        run_tool([str(osrm_home() / "bin" / "osrm-customize"), str(target), "-t",
              str(self.threads), "--segment-speed-file", str(speed_file)],
             gen / "customize.log")
        try:
            engine = osrm.OSRM(storage_config=str(target), algorithm="MLD",
                               use_shared_memory=False)
        except RuntimeError as exc:
            raise RoadsError(f"cannot load re-customised {profile} data: {exc}") from None
        self._prune(profile)
        self.last_s = time.perf_counter() - started
        return engine

    def _prune(self, profile: Profile) -> None:
        gens = sorted(self.work_dir.glob(f"{profile}-{os.getpid()}-*"))
        for old in gens[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    def _remove_orphans(self) -> None:
        """Generations whose process is gone (a restart, a crash) are nobody's."""
        if not self.work_dir.is_dir():
            return
        for gen in self.work_dir.iterdir():
            parts = gen.name.split("-")
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            alive = True
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass  # someone else's process: alive
            if not alive:
                with contextlib.suppress(OSError):
                    shutil.rmtree(gen)
