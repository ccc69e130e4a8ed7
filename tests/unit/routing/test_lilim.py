"""Li & Lim reader: real files parse into the model; malformed input fails with a line number."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from routing.cli import solve_file
from routing.feasibility import check_plan
from routing.lilim import TIME_SCALE, LiLimFormatError, parse_lilim, read_lilim
from routing.model import make_plan

# A copy of one public Li & Lim instance ships with the tests (the full set stays in shared/).
DATA = Path(__file__).resolve().parents[2] / "data" / "li_lim"
LC101 = DATA / "lc101.txt"


TINY = """2\t10\t1
0\t0\t0\t0\t0\t500\t0\t0\t0
1\t3\t4\t5\t10\t60\t7\t0\t2
2\t6\t8\t-5\t0\t100\t7\t1\t0
"""


def test_reads_lc101() -> None:
    """lc101: 25 vehicles of capacity 200 at the depot; nodes become paired tasks, times x100."""
    inst = read_lilim(LC101)
    p = inst.problem
    assert (inst.name, inst.n_vehicles, inst.capacity) == ("lc101", 25, 200)
    assert len(p.vehicles) == 25
    assert all(v.capacity == 200 for v in p.vehicles)
    assert len(p.tasks) == 106
    assert len(p.pairs) == 53
    # Row "1 45 68 -10 912 967 90 11 0": a delivery whose pickup is node 11.
    t1 = p.task_by_id()[1]
    assert (t1.demand, t1.ready_s, t1.due_s, t1.service_s) == (-10, 91200, 96700, 9000)
    assert any(pair.pickup_id == 11 and pair.delivery_id == 1 for pair in p.pairs)
    assert p.vehicles[0].shift_end_s == 1236 * TIME_SCALE
    assert p.dist[0, 1] == pytest.approx(math.hypot(45 - 40, 68 - 50))


def test_travel_rounds_up_so_integer_feasible_means_exactly_feasible() -> None:
    """Scaled travel time is the exact distance rounded up, never down (and exact when whole)."""
    inst = parse_lilim(TINY)
    p = inst.problem
    assert p.dist[0, 1] == 5.0
    assert p.travel_s[0, 1] == 5 * TIME_SCALE
    assert p.travel_s[0, 2] == 10 * TIME_SCALE
    assert (p.travel_s >= p.dist * TIME_SCALE - 1e-6).all()
    assert (p.travel_s < p.dist * TIME_SCALE + 1).all()


def test_tiny_file_round_trip_through_checker() -> None:
    """The parsed tiny instance has a feasible one-vehicle plan with distance 5 + 5 + 10."""
    p = parse_lilim(TINY).problem
    plan = make_plan(p, [(0, [1, 2])])
    assert check_plan(p, plan) == []
    assert plan.dist == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("text", "line_no", "fragment"),
    [
        ("", 0, "empty"),
        ("2 10\n", 1, "vehicles capacity speed"),
        ("2 ten 1\n0 0 0 0 0 500 0 0 0\n", 1, "not a number"),
        (TINY.replace("1\t3\t4\t5", "1\t3\t4"), 3, "expected 9 fields"),
        (TINY.replace("2\t6\t8", "5\t6\t8"), 4, "expected node id 2"),
        (TINY.replace("10\t60", "60\t10"), 3, "bad window"),
        (TINY.replace("-5\t0\t100\t7\t1", "-4\t0\t100\t7\t1"), 3, "not this node's partner"),
        (TINY.replace("7\t0\t2", "7\t0\t9"), 3, "does not exist"),
        (TINY.replace("7\t0\t2", "7\t2\t2"), 3, "exactly one"),
        (TINY.replace("\t1\t0\n", "\t1.5\t0\n"), 4, "expected an integer"),
        ("2\t10\t1\n0\t0\t0\t0\t0\t500\t0\t0\t0\n", 0, "at least one"),
    ],
)
def test_rejects_malformed_input(text: str, line_no: int, fragment: str) -> None:
    """Unparsable input raises LiLimFormatError (a ValueError) naming the line and the reason."""
    with pytest.raises(LiLimFormatError) as err:
        parse_lilim(text, source="bad.txt")
    assert err.value.line_no == line_no
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)
    if line_no:
        assert f"bad.txt:{line_no}:" in str(err.value)


def test_rejects_binary_file(tmp_path: Path) -> None:
    """A non-text file is a format error, not a UnicodeDecodeError."""
    f = tmp_path / "x.txt"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LiLimFormatError):
        read_lilim(f)


def test_solve_file_returns_cli_result(tmp_path: Path) -> None:
    """`solve_file` returns instance, vehicles, distance, seconds and depot-free routes."""
    f = tmp_path / "tiny.txt"
    f.write_text(TINY)
    result = solve_file(str(f), time_limit_s=0.2)
    assert set(result) == {"instance", "vehicles", "distance", "seconds", "routes"}
    assert result["instance"] == "tiny"
    assert result["vehicles"] == 1
    assert result["routes"] == [[1, 2]]
    assert result["distance"] == pytest.approx(20.0)


def test_solve_file_rejects_infeasible_input(tmp_path: Path) -> None:
    """An order nobody can reach in time is a clear ValueError naming the task."""
    f = tmp_path / "late.txt"
    f.write_text(TINY.replace("10\t60", "1\t2"))  # pickup due at 2, 5 units away
    with pytest.raises(ValueError, match="task 1/2 cannot be served"):
        solve_file(str(f), time_limit_s=0.2)
