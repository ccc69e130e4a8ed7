"""`homechef routing solve FILE --time-limit S`: one JSON object on stdout; a file it cannot
parse or an infeasible instance is a clear message and a non-zero exit."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from api.cli import main

# Depot at 0,0; one pickup (node 1) at (3,4) and its delivery (node 2) at (6,8).
TINY = "2\t10\t1\n0\t0\t0\t0\t0\t500\t0\t0\t0\n1\t3\t4\t5\t10\t60\t7\t0\t2\n" \
       "2\t6\t8\t-5\t0\t100\t7\t1\t0\n"


def test_solves_a_tiny_instance_exactly(tmp_path: Path) -> None:
    """One vehicle visits pickup then delivery: distance 5 + 5 = 10 (open route)."""
    f = tmp_path / "tiny.txt"
    f.write_text(TINY)
    result = CliRunner().invoke(main, ["routing", "solve", str(f), "--time-limit", "1"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"instance", "vehicles", "distance", "seconds", "routes"}
    assert out["vehicles"] == 1
    assert out["routes"] == [[1, 2]]
    assert out["distance"] in (10.0, 20.0)  # open route, or back to the depot
    # Progress goes to stderr: what is solved, then the best plan as each phase ends.
    lines = result.stderr.splitlines()
    assert lines[0] == "tiny: 1 order, 2 vehicles available; solving for 1 s (seed 0)"
    steps = [re.fullmatch(r"\s+([\d.]+) s  (.+?)\s+(\d+) vehicles\s+([\d.]+) distance", line)
             for line in lines[1:]]
    assert all(steps), lines
    phases = [m.group(2) for m in steps if m]
    assert phases[0] == "first solution"
    assert phases[-1] == "final descent"
    last = steps[-1]
    assert last is not None
    assert (int(last.group(3)), float(last.group(4))) == (1, round(out["distance"], 2))


def test_unparsable_file_fails_clearly(tmp_path: Path) -> None:
    """A malformed line is reported (with its line number) and the exit code is non-zero."""
    f = tmp_path / "bad.txt"
    f.write_text("2\t10\t1\n0\t0\tzero\t0\t0\t500\t0\t0\t0\n")
    result = CliRunner().invoke(main, ["routing", "solve", str(f)])
    assert result.exit_code != 0
    assert "bad.txt:2" in result.output  # file:line
    assert "Traceback" not in result.output


def test_missing_file_and_infeasible_instance_fail_clearly(tmp_path: Path) -> None:
    """No such file, and a delivery whose window closes before its pickup can be reached."""
    result = CliRunner().invoke(main, ["routing", "solve", str(tmp_path / "nope.txt")])
    assert result.exit_code != 0
    assert "nope.txt" in result.output
    f = tmp_path / "infeasible.txt"
    f.write_text("2\t10\t1\n0\t0\t0\t0\t0\t500\t0\t0\t0\n1\t300\t400\t5\t0\t600\t7\t0\t2\n"
                 "2\t6\t8\t-5\t0\t10\t7\t1\t0\n")
    result = CliRunner().invoke(main, ["routing", "solve", str(f), "--time-limit", "1"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
