"""The one settings object, read from the environment at start-up (never at import time)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Process configuration. A URL left as None means "start an embedded server"."""

    database_url: str | None = None
    """PostgreSQL DSN (``postgresql://user@host:port/db``)."""
    redis_url: str | None = None
    """Redis URL (``redis://host:port/db``)."""
    nats_url: str | None = None
    """NATS URL (``nats://host:port``); JetStream must be enabled on the server."""
    jwt_secret: str | None = None
    """HS256 signing secret, >= 32 characters; ``homechef up`` makes one under DATA_DIR."""
    host: str = "127.0.0.1"
    core_port: int = 8000
    commerce_port: int = 8001
    data_dir: Path = Path("./.homechef")
    namespace: str = "hc"
    """Prefix of every Redis key, NATS subject and JetStream stream: isolates test runs."""
    log_level: str = "INFO"
    db_pool_min: int = 1
    db_pool_max: int = 10
    redis_pool_max: int = 64
    """Redis connections per process (callers wait for a free one beyond this)."""
    store_timeout_s: float = 5.0
    """Connect / health-check timeout for each store."""
    courier_stale_s: float = 60.0
    """A courier with no fix for this long drops out of search results."""
    ingest_max_batch: int = 1000
    """Most fixes accepted in one HTTP batch or WebSocket LOCATIONS message."""
    ingest_flush_ms: float = 5.0
    """Device-socket fixes are coalesced for this long into one NATS message per region."""
    indexer_batch: int = 1000
    """Fixes the indexer pulls from the stream and applies in one Redis call."""
    index_rebuild_s: float = 600.0
    """After a Redis flush the indexer replays this much of the location stream."""
    ws_queue_size: int = 256
    """Outgoing messages buffered per WebSocket before the slow-client policy applies."""
    dispatch_round_s: float = 2.0
    """Seconds between matching rounds of a region."""
    offer_ttl_s: float = 30.0
    """An offer not accepted within this is withdrawn and the order re-dispatched."""
    lease_ttl_s: float = 6.0
    """A region's round lease; a dead holder's regions are taken over after this."""
    dispatch_radius_m: float = 5000.0
    """Couriers farther than this from the chef are not candidates."""
    dispatch_candidates: int = 12
    """Candidate couriers per order (nearest first, from the H3 index)."""
    unassigned_penalty_s: float = 1800.0
    """Cost of leaving an order for a later round (a pair costlier than this is never used)."""
    console_origins: str = ""
    """Comma-separated browser origins allowed to call commerce (the console's login), e.g.
    ``https://ops.example.com``; empty: core's own origin (``http://HOST:CORE_PORT``)."""
    commerce_public_url: str = ""
    """Commerce's URL as browsers reach it (the console logs in there); empty: the console's
    host name with COMMERCE_PORT."""
    console_tile_url: str = ""
    """Optional map tiles under the console (``https://.../{z}/{x}/{y}.png``); empty: none."""
    dispatch_max_stack: int = 2
    """Most orders one courier carries at once (stacking); 1 turns stacking off."""
    dispatch_policy: str = "optimal"
    """Matcher of a round: ``optimal`` (minimum total cost) or ``greedy`` (nearest courier
    first, the baseline the simulator compares against)."""
    dispatch_search: str = "snapshot"
    """Candidate search of a round: ``snapshot`` (read the region's fresh couriers once, one
    round trip, and search every order in memory) or ``live`` (`nearby_many` on the Redis
    index, one pipeline per ring step); both return the same candidates."""
    routing_max_wait_s: float = 30.0
    """POST /routing/optimize is refused (429, Retry-After) when its solve would wait longer
    than this for the solver process (the queued solves' time limits add up)."""


_ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "nats_url": "NATS_URL",
    "jwt_secret": "JWT_SECRET",
    "host": "HOST",
    "core_port": "CORE_PORT",
    "commerce_port": "COMMERCE_PORT",
    "data_dir": "DATA_DIR",
    "namespace": "HOMECHEF_NAMESPACE",
    "log_level": "LOG_LEVEL",
    "db_pool_min": "DB_POOL_MIN",
    "db_pool_max": "DB_POOL_MAX",
    "redis_pool_max": "REDIS_POOL_MAX",
    "store_timeout_s": "STORE_TIMEOUT_S",
    "courier_stale_s": "COURIER_STALE_S",
    "ingest_max_batch": "INGEST_MAX_BATCH",
    "ingest_flush_ms": "INGEST_FLUSH_MS",
    "indexer_batch": "INDEXER_BATCH",
    "index_rebuild_s": "INDEX_REBUILD_S",
    "ws_queue_size": "WS_QUEUE_SIZE",
    "dispatch_round_s": "DISPATCH_ROUND_S",
    "offer_ttl_s": "OFFER_TTL_S",
    "lease_ttl_s": "LEASE_TTL_S",
    "dispatch_radius_m": "DISPATCH_RADIUS_M",
    "dispatch_candidates": "DISPATCH_CANDIDATES",
    "unassigned_penalty_s": "UNASSIGNED_PENALTY_S",
    "console_origins": "CONSOLE_ORIGINS",
    "commerce_public_url": "COMMERCE_PUBLIC_URL",
    "console_tile_url": "CONSOLE_TILE_URL",
    "dispatch_max_stack": "DISPATCH_MAX_STACK",
    "dispatch_policy": "DISPATCH_POLICY",
    "dispatch_search": "DISPATCH_SEARCH",
    "routing_max_wait_s": "ROUTING_MAX_WAIT_S",
}
DISPATCH_POLICIES = ("optimal", "greedy")
DISPATCH_SEARCHES = ("snapshot", "live")

_URL_SCHEMES = {
    "database_url": ("postgres", "postgresql"),
    "redis_url": ("redis", "rediss", "unix"),
    "nats_url": ("nats", "tls", "ws", "wss"),
}
_NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
MIN_JWT_SECRET_LEN = 32


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return _ENV_NAMES[field]


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer port, got {raw!r}") from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name} must be between 1 and 65535, got {port}")
    return port


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name} must be >= 1, got {value}")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name} must be a positive finite number, got {raw!r}")
    return value


def _url(field: str, raw: str) -> str:
    name = _ENV_NAMES[field]
    schemes = _URL_SCHEMES[field]
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise SettingsError(
            f"{name} must be a URL with scheme {' or '.join(schemes)}, got {raw!r}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise SettingsError(f"{name} has no host: {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise SettingsError(f"{name} has an invalid port: {raw!r}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise SettingsError naming the first bad variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}

    def get(field: str) -> str | None:
        raw = env.get(_ENV_NAMES[field])
        return raw.strip() if raw is not None and raw.strip() != "" else None

    for field in ("database_url", "redis_url", "nats_url"):
        raw = get(field)
        if raw is not None:
            values[field] = _url(field, raw)
    secret = get("jwt_secret")
    if secret is not None:
        if len(secret) < MIN_JWT_SECRET_LEN:
            raise SettingsError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} characters "
                f"(got {len(secret)})"
            )
        values["jwt_secret"] = secret
    if (host := get("host")) is not None:
        values["host"] = host
    for field in ("core_port", "commerce_port"):
        if (raw := get(field)) is not None:
            values[field] = _port(_ENV_NAMES[field], raw)
    if values.get("core_port", 8000) == values.get("commerce_port", 8001):
        raise SettingsError("CORE_PORT and COMMERCE_PORT must differ")
    if (raw := get("data_dir")) is not None:
        values["data_dir"] = Path(raw).expanduser()
    if (raw := get("namespace")) is not None:
        if not _NAMESPACE_RE.match(raw):
            raise SettingsError(
                "HOMECHEF_NAMESPACE must be a letter then up to 31 letters, digits or _, "
                f"got {raw!r}"
            )
        values["namespace"] = raw
    if (raw := get("log_level")) is not None:
        if raw.upper() not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {sorted(_LOG_LEVELS)}, got {raw!r}")
        values["log_level"] = raw.upper()
    for field in ("db_pool_min", "db_pool_max"):
        if (raw := get(field)) is not None:
            values[field] = _positive_int(_ENV_NAMES[field], raw)
    pool_min = values.get("db_pool_min", 1)
    pool_max = values.get("db_pool_max", 10)
    assert isinstance(pool_min, int)
    assert isinstance(pool_max, int)
    if pool_min > pool_max:
        raise SettingsError("DB_POOL_MIN must not exceed DB_POOL_MAX")
    for field in ("store_timeout_s", "courier_stale_s", "index_rebuild_s", "dispatch_round_s",
                  "ingest_flush_ms",
                  "offer_ttl_s", "lease_ttl_s", "dispatch_radius_m", "unassigned_penalty_s",
                  "routing_max_wait_s"):
        if (raw := get(field)) is not None:
            values[field] = _positive_float(_ENV_NAMES[field], raw)
    for field in ("ingest_max_batch", "indexer_batch", "ws_queue_size", "dispatch_candidates",
                  "redis_pool_max", "dispatch_max_stack"):
        if (raw := get(field)) is not None:
            values[field] = _positive_int(_ENV_NAMES[field], raw)
    if (raw := get("console_origins")) is not None:
        origins = [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise SettingsError(
                    f"CONSOLE_ORIGINS must list origins like https://host[:port], got {origin!r}")
        values["console_origins"] = ",".join(origins)
    for field in ("commerce_public_url", "console_tile_url"):
        if (raw := get(field)) is not None:
            if urlsplit(raw).scheme not in ("http", "https"):
                raise SettingsError(f"{_ENV_NAMES[field]} must be an http(s) URL, got {raw!r}")
            values[field] = raw
    if (raw := get("dispatch_policy")) is not None:
        if raw.lower() not in DISPATCH_POLICIES:
            raise SettingsError(
                f"DISPATCH_POLICY must be one of {', '.join(DISPATCH_POLICIES)}, got {raw!r}")
        values["dispatch_policy"] = raw.lower()
    if (raw := get("dispatch_search")) is not None:
        if raw.lower() not in DISPATCH_SEARCHES:
            raise SettingsError(
                f"DISPATCH_SEARCH must be one of {', '.join(DISPATCH_SEARCHES)}, got {raw!r}")
        values["dispatch_search"] = raw.lower()
    return Settings(**values)  # type: ignore[arg-type]


def console_origins(settings: Settings) -> list[str]:
    """Origins commerce accepts cross-origin calls from: CONSOLE_ORIGINS, else core's own."""
    if settings.console_origins:
        return settings.console_origins.split(",")
    hosts = dict.fromkeys([settings.host, "127.0.0.1", "localhost"])
    return [f"http://{h}:{settings.core_port}" for h in hosts if h not in ("0.0.0.0", "::")]


def to_environ(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    out: dict[str, str] = {}
    for field, name in _ENV_NAMES.items():
        value = getattr(settings, field)
        if value is not None:
            out[name] = str(value)
    return out
