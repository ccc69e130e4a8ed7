"""Settings come from the environment; a bad value fails at start-up naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings, SettingsError, load_settings, to_environ


def test_defaults_when_environment_is_empty() -> None:
    """Nothing set: embedded stores (URLs None), loopback host, ports 8000/8001, ./.homechef."""
    s = load_settings({})
    assert s.database_url is None
    assert s.redis_url is None
    assert s.nats_url is None
    assert s.jwt_secret is None
    assert (s.host, s.core_port, s.commerce_port) == ("127.0.0.1", 8000, 8001)
    assert s.data_dir == Path(".homechef")


def test_values_are_read_and_typed() -> None:
    """Each variable lands in its field with the right type."""
    s = load_settings({
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x",
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "NATS_URL": "nats://127.0.0.1:4222",
        "JWT_SECRET": "s" * 32,
        "HOST": "0.0.0.0",
        "CORE_PORT": "9000",
        "COMMERCE_PORT": "9001",
        "DATA_DIR": "/tmp/hc",
    })
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/x"
    assert s.redis_url == "redis://127.0.0.1:6379/2"
    assert s.nats_url == "nats://127.0.0.1:4222"
    assert s.core_port == 9000
    assert s.commerce_port == 9001
    assert s.data_dir == Path("/tmp/hc")
    assert s.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://x@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql:///nohost"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:notaport"}, "REDIS_URL"),
        ({"NATS_URL": "127.0.0.1:4222"}, "NATS_URL"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"CORE_PORT": "eighty"}, "CORE_PORT"),
        ({"CORE_PORT": "0"}, "CORE_PORT"),
        ({"COMMERCE_PORT": "70000"}, "COMMERCE_PORT"),
        ({"CORE_PORT": "9000", "COMMERCE_PORT": "9000"}, "COMMERCE_PORT"),
        ({"HOMECHEF_NAMESPACE": "has space"}, "HOMECHEF_NAMESPACE"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DB_POOL_MAX": "-1"}, "DB_POOL_MAX"),
        ({"DB_POOL_MIN": "5", "DB_POOL_MAX": "2"}, "DB_POOL_MIN"),
        ({"STORE_TIMEOUT_S": "nan"}, "STORE_TIMEOUT_S"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    """An invalid value raises SettingsError whose message names the variable."""
    with pytest.raises(SettingsError, match=variable):
        load_settings(env)


def test_blank_values_count_as_unset() -> None:
    """An empty or whitespace value means "not set" (embedded store), not an error."""
    s = load_settings({"DATABASE_URL": "  ", "CORE_PORT": ""})
    assert s.database_url is None
    assert s.core_port == 8000


def test_environment_round_trip() -> None:
    """to_environ() gives a child process the same settings."""
    s = Settings(redis_url="redis://127.0.0.1:1/0", jwt_secret="k" * 40, core_port=9100,
                 commerce_port=9101, namespace="abc")
    assert load_settings(to_environ(s)) == s


def test_cli_reports_bad_setting_without_traceback() -> None:
    """`homechef migrate` with a bad variable exits non-zero with a one-line message."""
    from click.testing import CliRunner

    from api.cli import main

    result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": "mysql://h/db"})
    assert result.exit_code != 0
    assert "DATABASE_URL" in result.output
    assert "Traceback" not in result.output


def test_console_settings_and_default_origins() -> None:
    """CONSOLE_ORIGINS lists origins (trailing slash dropped); unset, commerce accepts core's
    own origin; a path or a non-http scheme is refused naming the variable."""
    from api.settings import console_origins

    s = load_settings({"CONSOLE_ORIGINS": "https://ops.example.com/, http://10.0.0.5:8000",
                       "CONSOLE_TILE_URL": "https://tiles.example.com/{z}/{x}/{y}.png"})
    assert console_origins(s) == ["https://ops.example.com", "http://10.0.0.5:8000"]
    assert s.console_tile_url.endswith("{z}/{x}/{y}.png")
    default = load_settings({"CORE_PORT": "9000", "COMMERCE_PORT": "9001"})
    assert console_origins(default) == ["http://127.0.0.1:9000", "http://localhost:9000"]
    for bad in ("ops.example.com", "https://ops.example.com/console", "ftp://x"):
        with pytest.raises(SettingsError, match="CONSOLE_ORIGINS"):
            load_settings({"CONSOLE_ORIGINS": bad})
    with pytest.raises(SettingsError, match="COMMERCE_PUBLIC_URL"):
        load_settings({"COMMERCE_PUBLIC_URL": "commerce:8001"})
