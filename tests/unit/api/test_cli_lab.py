"""`homechef lab`: a small day end to end through the CLI — the KPI table with one column per
policy, the JSON document, the PNG, and clear refusals of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from api.cli import main


def test_tiny_day_greedy_vs_optimal(tmp_path: Path) -> None:
    """Both policies on the same tiny day: a table row per KPI with both columns, progress on
    stderr, a JSON with one run per policy holding the live simulator's KPI names plus the
    ETA error, and a PNG."""
    out, png = tmp_path / "lab.json", tmp_path / "lab.png"
    result = CliRunner().invoke(main, ["lab", "--day", "tiny", "--seed", "3", "--policy",
                                       "greedy,optimal", "--json", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "lab day tiny, seed 3:"
    assert lines[1].split("|")[2:4] == ["    greedy ", "   optimal "]
    assert any(line.startswith("| orders delivered ") for line in lines)
    assert "greedy 16:30 UTC: placed 30" in result.stderr  # progress
    doc = json.loads(out.read_text())
    assert (doc["day"], doc["seed"]) == ("tiny", 3)
    assert [r["policy"] for r in doc["runs"]] == ["greedy", "optimal"]
    for run in doc["runs"]:
        assert run["seed"] == 3
        kpis = run["kpis"]
        assert {"wait_at_chef_p50_s", "order_to_door_p50_s", "late_pct", "eta_error_p90_s",
                "orders_per_courier_hour", "idle_km_per_order", "stacked_pct"} <= set(kpis)
        assert kpis["placed"] == 30
        assert kpis["delivered"] == 30
        assert sum(p["placed"] for p in run["series"]) == 30
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_policy_writes_policy_seed_kpis(tmp_path: Path) -> None:
    """One policy: the document is {"policy", "seed", "kpis", ...}; the same seed gives the
    same file."""
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        result = CliRunner().invoke(main, ["lab", "--day", "tiny", "--seed", "5", "--quiet",
                                           "--json", str(path)])
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
    doc = json.loads(paths[0].read_text())
    assert (doc["policy"], doc["seed"]) == ("production", 5)  # the default policy
    assert doc["kpis"]["placed"] == 30
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_scenario_file(tmp_path: Path) -> None:
    """--scenario reads the day from JSON (fields left out: the defaults); a field of the
    wrong type is refused with its name, an unknown day or policy is a usage error."""
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"name": "mine", "hours": 0.25, "drain_h": 0.5,
                                "chefs": {"count": 3}, "customers": {"count": 10},
                                "arrivals": {"orders": 5},
                                "couriers": {"count": 4}}))
    result = CliRunner().invoke(main, ["lab", "--scenario", str(good), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "lab day mine, seed 1:"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"couriers": {"count": "many"}}))
    result = CliRunner().invoke(main, ["lab", "--scenario", str(bad)])
    assert result.exit_code == 1
    assert "couriers.count" in result.output
    assert CliRunner().invoke(main, ["lab", "--day", "nope"]).exit_code == 2
    assert CliRunner().invoke(main, ["lab", "--policy", "fastest"]).exit_code == 2


def test_plot_without_matplotlib_says_how_to_install(tmp_path: Path) -> None:
    """Where matplotlib cannot be imported (a child process that blocks it), --plot is
    refused with the install hint before the day runs, and nothing is written."""
    png = tmp_path / "lab.png"
    code = ("import sys; sys.modules['matplotlib'] = None; from api.cli import main; "
            f"main(['lab', '--day', 'tiny', '--plot', {str(png)!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    assert "pip install 'homechef-dispatch[lab]'" in done.stderr
    assert "UTC: placed" not in done.stderr  # refused before the day ran
    assert not png.exists()


def test_the_lab_runs_what_the_settings_switch_on() -> None:
    """Each improvement's DISPATCH_ setting reaches the lab's dispatch through the functions
    `Dispatcher` builds its own from (`round_params`, `prep_params`); the defaults are the
    lab's ``improved-repos`` policy, the one measured against greedy (ADR 0044)."""
    import msgspec

    from api.core.dispatch.service import prep_params, round_params
    from api.lab_dispatch import lab_dispatch
    from api.settings import load_settings
    from dispatch.reposition import RepositionParams
    from geo.travel import HaversineTravelModel
    from lab.policies import apply_policy

    model = HaversineTravelModel()
    default = lab_dispatch(load_settings({}).dispatch, model)
    assert apply_policy("improved-repos", default) == default
    off = lab_dispatch(load_settings({
        "DISPATCH_PREP_PREDICTION": "false", "DISPATCH_COMMIT_EARLY_S": "null",
        "DISPATCH_LATE_ADDED_ONLY": "0", "DISPATCH_REPOSITION_HINTS": "0",
        "DISPATCH_MAX_STACK": "2"}).dispatch, model)
    assert off.prep is None
    assert (off.params.commit_early_s, off.params.stack_max_delay_s) == (None, None)
    assert not off.params.costs.late_added_only
    assert off.reposition is None
    assert apply_policy("optimal", off) == off
    on = load_settings({"DISPATCH_PREP_PREDICTION": "true", "DISPATCH_COMMIT_EARLY_S": "180",
                        "DISPATCH_LATE_ADDED_ONLY": "1", "DISPATCH_STACK_MAX_DELAY_S": "60",
                        "DISPATCH_PREP_HISTORY": "7",
                        "DISPATCH_REPOSITION_HINTS": "1"}).dispatch
    lab = lab_dispatch(on, model)
    same = round_params(on, model)
    assert msgspec.structs.replace(lab.params, pairs=same.pairs) == same
    assert lab.prep == prep_params(on)
    assert lab.prep is not None
    assert lab.prep.history == 7
    assert (lab.params.commit_early_s, lab.params.stack_max_delay_s) == (180.0, 60.0)
    assert lab.params.costs.late_added_only
    assert lab.reposition == RepositionParams()


def test_a_saved_day_replays_with_the_same_kpis(tmp_path: Path) -> None:
    """`--save-day` writes the day as a record; `--replay` of it under the same policy and
    seed gives the same KPIs; `--replay` with `--scenario`, or of a file that is no recorded
    day, is refused."""
    rec, a, b = tmp_path / "day.json", tmp_path / "a.json", tmp_path / "b.json"
    first = CliRunner().invoke(main, ["lab", "--day", "tiny", "--seed", "4", "--quiet",
                                      "--policy", "improved", "--save-day", str(rec),
                                      "--json", str(a)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["lab", "--replay", str(rec), "--seed", "4", "--quiet",
                                      "--policy", "improved", "--json", str(b)])
    assert again.exit_code == 0, again.output
    assert json.loads(a.read_text())["kpis"] == json.loads(b.read_text())["kpis"]
    both = CliRunner().invoke(main, ["lab", "--replay", str(rec), "--scenario", str(rec)])
    assert both.exit_code == 2
    (tmp_path / "bad.json").write_text('{"orders": []}')
    bad = CliRunner().invoke(main, ["lab", "--replay", str(tmp_path / "bad.json")])
    assert bad.exit_code == 1
    assert "bad recorded day" in bad.output


def test_lab_record_refuses_a_bad_window(tmp_path: Path) -> None:
    """`homechef lab-record` names the bad option before it reads any database."""
    out = str(tmp_path / "day.json")
    bad = CliRunner().invoke(main, ["lab-record", "--since", "yesterday", "--until",
                                    "2026-09-07T22:00", "--out", out])
    assert bad.exit_code == 2
    assert "--since" in bad.output
    backwards = CliRunner().invoke(main, ["lab-record", "--since", "2026-09-07T22:00",
                                          "--until", "2026-09-07T16:00Z", "--out", out])
    assert backwards.exit_code == 2
    assert "--until" in backwards.output
    assert not Path(out).exists()
