"""`homechef simulate` refuses bad input with a clear click error before starting anything;
DISPATCH_POLICY is validated like every other setting."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api.cli import Duration, main
from api.settings import SettingsError, load_settings


@pytest.mark.parametrize(("args", "needle"), [
    (["--orders-per-min", "-1"], "--orders-per-min"),
    (["--duration", "2x"], "is not a duration"),
    (["--duration", "0s"], "must be a positive duration"),
    (["--drain", "abc"], "is not a duration"),
    (["--couriers", "0"], "--couriers"),
    (["--policy", "fastest"], "--policy"),
    (["--accept-prob", "1.5"], "--accept-prob"),
    (["--core-url", "http://127.0.0.1:1"], "both --core-url and --commerce-url"),
    (["--core-url", "http://127.0.0.1:1", "--commerce-url", "http://127.0.0.1:2"],
     "--admin-email"),
])
def test_bad_simulate_input_is_a_usage_error(args: list[str], needle: str) -> None:
    """Exit code 2 (click usage error) and a message naming the problem."""
    result = CliRunner().invoke(main, ["simulate", *args], env={
        "HOMECHEF_ADMIN_EMAIL": "", "HOMECHEF_ADMIN_PASSWORD": ""})
    assert result.exit_code == 2, result.output
    assert needle in result.output


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("0.5m", 30)])
def test_durations(text: str, seconds: float) -> None:
    """Durations read as plain seconds or with h/m/s units."""
    assert Duration().convert(text, None, None) == seconds


def test_dispatch_policy_setting() -> None:
    """optimal by default; greedy accepted (any case); anything else names the variable."""
    assert load_settings({}).dispatch.policy == "optimal"
    assert load_settings({"DISPATCH_POLICY": "Greedy"}).dispatch.policy == "greedy"
    with pytest.raises(SettingsError, match="DISPATCH_POLICY"):
        load_settings({"DISPATCH_POLICY": "random"})
