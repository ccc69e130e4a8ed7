"""Settings come from the environment; a bad value fails at start-up naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import (
    ServerSettings,
    Settings,
    SettingsError,
    StoreSettings,
    env_names,
    load_settings,
    to_environ,
)


def test_defaults_when_environment_is_empty() -> None:
    """Nothing set: embedded stores (URLs None), loopback host, ports 8000/8001, ./.homechef."""
    s = load_settings({})
    assert s.stores.database_url is None
    assert s.stores.redis_url is None
    assert s.stores.nats_url is None
    assert s.server.jwt_secret is None
    assert (s.server.host, s.server.core_port, s.server.commerce_port) == ("127.0.0.1", 8000, 8001)
    assert s.server.data_dir == Path(".homechef")


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
    assert s.stores.database_url == "postgresql://postgres@127.0.0.1:5432/x"
    assert s.stores.redis_url == "redis://127.0.0.1:6379/2"
    assert s.stores.nats_url == "nats://127.0.0.1:4222"
    assert s.server.core_port == 9000
    assert s.server.commerce_port == 9001
    assert s.server.data_dir == Path("/tmp/hc")
    assert s.server.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://x@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql:///nohost"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:notaport"}, "REDIS_URL"),
        ({"NATS_URL": "127.0.0.1:4222"}, "NATS_URL"),
        ({"NATS_URL": "nats://127.0.0.1:4301,127.0.0.1:4302"}, "NATS_URL"),
        ({"NATS_STREAM_REPLICAS": "0"}, "NATS_STREAM_REPLICAS"),
        ({"REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER"),
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
    assert s.stores.database_url is None
    assert s.server.core_port == 8000


def test_environment_round_trip() -> None:
    """to_environ() gives a child process the same settings."""
    s = Settings(
        stores=StoreSettings(redis_url="redis://127.0.0.1:1/0"),
        server=ServerSettings(
            jwt_secret="k" * 40,
            core_port=9100,
            commerce_port=9101,
            namespace="abc",
        ),
    )
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
    assert s.console.tile_url.endswith("{z}/{x}/{y}.png")
    default = load_settings({"CORE_PORT": "9000", "COMMERCE_PORT": "9001"})
    assert console_origins(default) == ["http://127.0.0.1:9000", "http://localhost:9000"]
    for bad in ("ops.example.com", "https://ops.example.com/console", "ftp://x"):
        with pytest.raises(SettingsError, match="CONSOLE_ORIGINS"):
            load_settings({"CONSOLE_ORIGINS": bad})
    with pytest.raises(SettingsError, match="COMMERCE_PUBLIC_URL"):
        load_settings({"COMMERCE_PUBLIC_URL": "commerce:8001"})


TODAYS_VARIABLES = (
    "DATABASE_URL", "REDIS_URL", "NATS_URL", "JWT_SECRET", "HOST", "CORE_PORT", "COMMERCE_PORT",
    "DATA_DIR", "HOMECHEF_NAMESPACE", "LOG_LEVEL", "DB_POOL_MIN", "DB_POOL_MAX", "REDIS_POOL_MAX",
    "STORE_TIMEOUT_S", "COURIER_STALE_S", "INGEST_MAX_BATCH", "INGEST_FLUSH_MS", "INDEXER_BATCH",
    "INDEX_REBUILD_S", "WS_QUEUE_SIZE", "DISPATCH_ROUND_S", "OFFER_TTL_S", "LEASE_TTL_S",
    "DISPATCH_RADIUS_M", "DISPATCH_CANDIDATES", "UNASSIGNED_PENALTY_S", "CONSOLE_ORIGINS",
    "COMMERCE_PUBLIC_URL", "CONSOLE_TILE_URL", "DISPATCH_MAX_STACK", "DISPATCH_POLICY",
    "DISPATCH_SEARCH", "ROUTING_MAX_WAIT_S",
)


def test_cluster_stores_are_named_by_several_urls_and_a_flag() -> None:
    """A NATS cluster is several comma-separated URLs (the client's server list); a Redis
    Cluster is ``REDIS_CLUSTER=true`` with any one node in ``REDIS_URL``."""
    s = load_settings({"NATS_URL": "nats://127.0.0.1:4301, nats://127.0.0.1:4302,",
                       "NATS_STREAM_REPLICAS": "3", "REDIS_CLUSTER": "true",
                       "REDIS_URL": "redis://127.0.0.1:7001"})
    assert s.stores.nats_servers == ["nats://127.0.0.1:4301", "nats://127.0.0.1:4302"]
    assert (s.stores.nats_stream_replicas, s.stores.redis_cluster) == (3, True)
    default = load_settings({"NATS_URL": "nats://127.0.0.1:4222"})
    assert default.stores.nats_servers == ["nats://127.0.0.1:4222"]
    assert (default.stores.nats_stream_replicas, default.stores.redis_cluster) == (1, False)


def test_every_existing_variable_is_still_read() -> None:
    """Grouping the settings renamed no variable: each one documented before (README,
    docker-compose.yml, .ci/run) still sets a field, and only one."""
    names = list(env_names().values())
    assert len(names) == len(set(names))
    assert set(TODAYS_VARIABLES) <= set(names)
    for name in TODAYS_VARIABLES:
        value = {"LOG_LEVEL": "DEBUG", "DISPATCH_POLICY": "greedy", "DISPATCH_SEARCH": "live",
                 "DATA_DIR": "/srv/hc", "HOMECHEF_NAMESPACE": "other",
                 "JWT_SECRET": "j" * 32, "CONSOLE_ORIGINS": "https://ops.example.com",
                 "DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r/1",
                 "NATS_URL": "nats://n:4222", "HOST": "0.0.0.0",
                 "COMMERCE_PUBLIC_URL": "https://shop.example.com",
                 "CONSOLE_TILE_URL": "https://t.example.com/{z}/{x}/{y}.png",
                 "DB_POOL_MIN": "3", "CORE_PORT": "9000"}.get(name, "7")
        assert load_settings({name: value}) != Settings(), name


def test_names_derive_from_group_and_field() -> None:
    """A field's variable is its group's prefix and its name, upper-cased (no prefix for
    stores and server); the ones that keep an older name say so on the field."""
    names = env_names()
    assert names["dispatch.round_s"] == "DISPATCH_ROUND_S"
    assert names["dispatch.max_orders_per_round"] == "DISPATCH_MAX_ORDERS_PER_ROUND"
    assert names["ingest.max_batch"] == "INGEST_MAX_BATCH"
    assert names["ws.queue_size"] == "WS_QUEUE_SIZE"
    assert names["routing.max_wait_s"] == "ROUTING_MAX_WAIT_S"
    assert names["stores.redis_url"] == "REDIS_URL"
    assert names["server.core_port"] == "CORE_PORT"
    assert names["dispatch.offer_ttl_s"] == "OFFER_TTL_S"
    assert names["server.namespace"] == "HOMECHEF_NAMESPACE"


def test_operational_limits_are_settings_with_todays_values() -> None:
    """The limits that were module constants are documented settings with the same defaults,
    and can be set like any other."""
    s = Settings()
    assert s.dispatch.max_orders_per_round == 2000
    assert s.dispatch.outbox_grace_ms == 3000
    assert s.dispatch.stack_candidates == 4
    assert s.dispatch.delivered_within_m == 150.0
    assert s.dispatch.default_promise_s == 45 * 60
    assert s.ingest.socket_pending_max == 64
    assert (s.ingest.publish_attempts, s.ingest.publish_timeout_s) == (4, 2.0)
    assert s.ingest.last_fix_cache_size == 200_000
    assert load_settings({"DISPATCH_STACK_CANDIDATES": "6"}).dispatch.stack_candidates == 6
    with pytest.raises(SettingsError, match="INGEST_PUBLISH_ATTEMPTS"):
        load_settings({"INGEST_PUBLISH_ATTEMPTS": "0"})


def test_every_field_is_documented() -> None:
    """Each group and each of its fields has a docstring (the field's reference)."""
    import ast
    import inspect

    import api.settings as module

    tree = ast.parse(inspect.getsource(module))
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name.endswith("Settings")
                and cls.name != "Settings"):
            continue
        assert ast.get_docstring(cls), cls.name
        body = cls.body
        for stmt, after in zip(body, [*body[1:], None], strict=True):
            if isinstance(stmt, ast.AnnAssign):
                doc = after.value if isinstance(after, ast.Expr) else None
                assert isinstance(doc, ast.Constant), f"{cls.name}.{ast.unparse(stmt.target)}"
                assert isinstance(doc.value, str)


@pytest.mark.parametrize(("env", "message"), [
    ({"DISPATCH_SEARCH": "everywhere"}, "DISPATCH_SEARCH must be one of snapshot, live"),
    ({"INGEST_MAX_BATCH": "1.5"}, "INGEST_MAX_BATCH must be an integer"),
    ({"OFFER_TTL_S": "inf"}, "OFFER_TTL_S must be a number <="),
    ({"DISPATCH_RADIUS_M": "-5"}, "DISPATCH_RADIUS_M must be a number > 0"),
])
def test_type_errors_read_as_sentences(env: dict[str, str], message: str) -> None:
    """A value its type refuses is reported with the variable, what it must be, and the value."""
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_choices_match_in_any_case() -> None:
    """Choices (Literal types) are read in any case and stored in their canonical case."""
    s = load_settings({"LOG_LEVEL": "debug", "DISPATCH_SEARCH": "LIVE"})
    assert (s.server.log_level, s.dispatch.search) == ("DEBUG", "live")


def test_replace_names_group_and_field() -> None:
    """`Settings.replace(group__field=...)` copies with those fields changed, the rest kept;
    a name without a group is refused."""
    base = Settings()
    s = base.replace(server__namespace="t1", dispatch__round_s=0.2, dispatch__max_stack=1)
    assert (s.server.namespace, s.dispatch.round_s, s.dispatch.max_stack) == ("t1", 0.2, 1)
    assert s.stores == base.stores
    assert s.dispatch.offer_ttl_s == base.dispatch.offer_ttl_s
    with pytest.raises(TypeError, match="group__field"):
        base.replace(namespace="t1")


def test_the_compose_files_set_only_settings_that_exist() -> None:
    """Every variable docker-compose.yml and docker-compose.cluster.yml give the services is
    a setting (a typo would be silently ignored by the services), and each loads."""
    import yaml

    root = Path(__file__).resolve().parents[3]
    known = set(env_names().values()) | {"FORWARDED_ALLOW_IPS"}  # uvicorn reads that one
    for name in ("docker-compose.yml", "docker-compose.cluster.yml"):
        env = yaml.safe_load((root / name).read_text())["x-homechef-env"]
        assert set(env) <= known, (name, set(env) - known)
        values = {k: "j" * 32 if k == "JWT_SECRET" else str(v) for k, v in env.items()
                  if not str(v).startswith("${")}
        values["JWT_SECRET"] = "j" * 32
        values["PHOTOS_S3_SECRET_ACCESS_KEY"] = "s" * 16
        assert load_settings(values).stores.database_url == env["DATABASE_URL"]
