"""The one settings object, read from the environment at start-up (never at import time).

Settings come in frozen groups (``settings.dispatch.round_s``, ``settings.stores.redis_url``).
Each field's environment variable is derived from its name: the group's prefix (the group's
name, upper-cased, then ``_``) and the field, upper-cased — ``dispatch.round_s`` is
``DISPATCH_ROUND_S``. The ``stores`` and ``server`` groups have no prefix (``REDIS_URL``,
``CORE_PORT``), and a field whose historical name differs says so with :func:`env` in its
annotation (``dispatch.offer_ttl_s`` is ``OFFER_TTL_S``). :func:`env_names` lists them all.

Values are validated by their types: :func:`load_settings` converts the environment's strings
into the groups with ``msgspec.convert`` (ranges are ``msgspec.Meta`` constraints, choices
are ``Literal`` and match in any case); what a type cannot say (URL schemes, the namespace's
shape, the JWT secret's length, two fields that must agree) each group checks in
``__post_init__``. Every error is a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "ConsoleSettings",
    "DispatchPolicy",
    "DispatchSearch",
    "DispatchSettings",
    "GatewaySettings",
    "IngestSettings",
    "NotifySettings",
    "PhotoSettings",
    "RoadsSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "StoreSettings",
    "WsSettings",
    "console_origins",
    "env",
    "env_names",
    "load_settings",
    "to_environ",
]


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


def env(name: str) -> msgspec.Meta:
    """Annotation metadata giving a field an environment variable other than the derived one
    (``Annotated[float, env("OFFER_TTL_S")]``); on a group of :class:`Settings`, ``name`` is
    the group's prefix instead."""
    return msgspec.Meta(extra={"env": name})


PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
"""A count or size, at least 1."""
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=31_536_000)]
"""A positive duration in seconds, at most a year (the bound also refuses ``inf``)."""
Millis = Annotated[float, msgspec.Meta(gt=0, le=31_536_000_000)]
"""A positive duration in milliseconds, at most a year."""
Meters = Annotated[float, msgspec.Meta(gt=0, le=20_037_509)]
"""A positive distance in metres, at most half the Earth's circumference."""
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DispatchPolicy = Literal["optimal", "greedy"]
"""``optimal``: minimum total cost; ``greedy``: nearest courier first (the baseline)."""
DispatchSearch = Literal["snapshot", "live"]
"""``snapshot``: read the region's couriers once, search in memory; ``live``: the Redis index."""

MIN_JWT_SECRET_LEN = 32
_NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_URL_SCHEMES = {
    "database_url": ("postgres", "postgresql"),
    "redis_url": ("redis", "rediss", "unix"),
    "nats_url": ("nats", "tls", "ws", "wss"),
}


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Connections to the stores (no prefix). A URL left as None means "start an embedded
    server" (``homechef up``); the apps themselves require all three."""

    database_url: str | None = None
    """PostgreSQL DSN (``postgresql://user@host:port/db``)."""
    redis_url: str | None = None
    """Redis URL (``redis://host:port/db``); with ``REDIS_CLUSTER`` any one node."""
    redis_cluster: bool = False
    """The Redis is a Redis Cluster: the client discovers its nodes from ``REDIS_URL``."""
    nats_url: str | None = None
    """NATS URL (``nats://host:port``), or several servers of one cluster comma-separated
    (the client connects to one and fails over to the others); JetStream must be enabled."""
    nats_stream_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Replicas of every JetStream stream (its durable consumers inherit them): 1 on a single
    server, 3 on a cluster of three or more."""
    db_pool_min: PositiveInt = 1
    """PostgreSQL connections each process keeps open."""
    db_pool_max: PositiveInt = 10
    """Most PostgreSQL connections per process."""
    redis_pool_max: PositiveInt = 64
    """Redis connections per process (callers wait for a free one beyond this)."""
    timeout_s: Annotated[Seconds, env("STORE_TIMEOUT_S")] = 5.0
    """Connect / health-check timeout for each store."""

    def __post_init__(self) -> None:
        for field, schemes in _URL_SCHEMES.items():
            url = getattr(self, field)
            if url is not None:
                urls = [u.strip() for u in url.split(",")] if field == "nats_url" else [url]
                if not any(urls):
                    raise SettingsError(f"{_env_name(StoreSettings, field)} names no server")
                for one in filter(None, urls):
                    _check_url(_env_name(StoreSettings, field), one, schemes)
        if self.db_pool_min > self.db_pool_max:
            raise SettingsError("DB_POOL_MIN must not exceed DB_POOL_MAX")

    @property
    def nats_servers(self) -> list[str]:
        """``NATS_URL`` as the client's server list."""
        return [u.strip() for u in (self.nats_url or "").split(",") if u.strip()]


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The processes themselves (no prefix): where they listen, keep data and log."""

    host: str = "127.0.0.1"
    """Interface both services listen on."""
    core_port: Port = 8000
    """Port of core (GPS ingest, dispatch, tracking, the console)."""
    commerce_port: Port = 8001
    """Port of commerce (accounts, chefs, orders, payments); must differ from core's."""
    data_dir: Path = Path("./.homechef")
    """Embedded stores, logs and the generated JWT secret of ``homechef up``."""
    namespace: Annotated[str, env("HOMECHEF_NAMESPACE")] = "hc"
    """Prefix of every Redis key, NATS subject and JetStream stream: isolates test runs.
    A letter then up to 31 letters, digits or ``_``."""
    log_level: LogLevel = "INFO"
    """Root log level (any case in the environment)."""
    access_log: bool = False
    """uvicorn's access log, one line per HTTP request (at INFO), under ``homechef serve``;
    tokens in URLs are redacted like every logged line."""
    jwt_secret: str | None = None
    """HS256 signing secret, >= 32 characters; ``homechef up`` makes one under DATA_DIR."""

    def __post_init__(self) -> None:
        if self.core_port == self.commerce_port:
            raise SettingsError("CORE_PORT and COMMERCE_PORT must differ")
        if not _NAMESPACE_RE.match(self.namespace):
            raise SettingsError(
                "HOMECHEF_NAMESPACE must be a letter then up to 31 letters, digits or _, "
                f"got {self.namespace!r}")
        if self.jwt_secret is not None and len(self.jwt_secret) < MIN_JWT_SECRET_LEN:
            raise SettingsError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} characters "
                                f"(got {len(self.jwt_secret)})")


class IngestSettings(msgspec.Struct, frozen=True, kw_only=True):
    """GPS fixes in (HTTP batches and device sockets), the stream, and the live index."""

    max_batch: PositiveInt = 1000
    """Most fixes accepted in one HTTP batch or WebSocket LOCATIONS message."""
    flush_ms: Millis = 10.0
    """Device-socket fixes are coalesced for this long into one NATS message per region."""
    indexer_batch: Annotated[PositiveInt, env("INDEXER_BATCH")] = 5000
    """Most couriers the indexer files in one Redis call (a backlog after an outage is
    filed in calls of this many)."""
    indexer_in_flight: Annotated[PositiveInt, env("INDEXER_IN_FLIGHT")] = 4
    """Most Redis calls a process's indexer has in flight at once."""
    index_rebuild_s: Annotated[Seconds, env("INDEX_REBUILD_S")] = 600.0
    """After a Redis flush the indexer replays this much of the location stream."""
    courier_stale_s: Annotated[Seconds, env("COURIER_STALE_S")] = 60.0
    """A courier with no fix for this long drops out of search results (dispatch
    candidates, the console's fleet, tracking)."""
    socket_pending_max: PositiveInt = 64
    """Device messages a socket holds for the slow path (those that must await a store)
    before it stops reading from the client: the socket's backpressure."""
    publish_attempts: PositiveInt = 4
    """Tries to publish one coalesced message of device-socket fixes to JetStream before its
    fixes are counted failed and reported to their devices (``ERROR not_stored``)."""
    publish_timeout_s: Seconds = 2.0
    """Wait for JetStream's acknowledgement of one publish attempt."""
    last_fix_cache_size: PositiveInt = 200_000
    """Couriers whose last accepted fix each process keeps in memory (LRU; a miss costs a
    Redis read)."""


class WsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """WebSocket connections: device, order-tracking and console sockets."""

    queue_size: PositiveInt = 256
    """Outgoing messages buffered per WebSocket before the slow-client policy applies."""
    share_ttl_s: Annotated[Seconds, env("SHARE_TTL_S")] = 4 * 3600.0
    """A tracking share link (`POST /orders/{id}/share`) expires this long after it is made."""
    share_grace_s: Annotated[Seconds, env("SHARE_GRACE_S")] = 1800.0
    """A share link still shows its order this long after it was delivered or cancelled (the
    end of the timeline), then no more."""


class DispatchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Matching orders to couriers: the rounds, offers and their limits."""

    round_s: Seconds = 2.0
    """Seconds between matching rounds of a region."""
    offer_ttl_s: Annotated[Seconds, env("OFFER_TTL_S")] = 30.0
    """An offer not accepted within this is withdrawn and the order re-dispatched."""
    lease_ttl_s: Annotated[Seconds, env("LEASE_TTL_S")] = 6.0
    """A region's round lease; a dead holder's regions are taken over after this."""
    radius_m: Meters = 5000.0
    """Couriers farther than this from the chef are not candidates."""
    scheduled_lead_s: Seconds = 1200.0
    """A scheduled order enters matching this long before its food is ready when no idle
    courier is near at acceptance (one is: its ride ahead, as for any order)."""
    candidates: PositiveInt = 12
    """Candidate couriers per order (nearest first, from the H3 index)."""
    unassigned_penalty_s: Annotated[Seconds, env("UNASSIGNED_PENALTY_S")] = 1800.0
    """Cost of leaving an order for a later round (a pair costlier than this is never used)."""
    max_stack: PositiveInt = 1
    """Most orders one courier carries at once (stacking); 1, the default, is no stacking:
    on the lab's dinner peak a stacked order's first customer waits for the second pickup
    (docs/lab.md, ADR 0044)."""
    stack_candidates: PositiveInt = 4
    """Couriers already heading to a chef looked at per order when stacking is on (beyond
    those that declined it)."""
    policy: DispatchPolicy = "optimal"
    """Matcher of a round: ``optimal`` (minimum total cost) or ``greedy`` (nearest courier
    first, the baseline the simulator compares against)."""
    prep_prediction: bool = True
    """Predict each order's ready time from its kitchen's history (observed ÷ declared prep
    of its last `prep_history` orders, shrunk toward the city's; `dispatch.prep`) for queue
    entry and costs. Off: the declared time is trusted until the chef marks the food ready
    (docs/lab.md measures both)."""
    prep_history: PositiveInt = 20
    """Orders per kitchen whose ready times the prediction learns from (the most recent)."""
    prep_history_ttl_s: Seconds = 604800.0
    """A kitchen's prep history is forgotten this long after its last ready mark (7 days)."""
    commit_early_s: Seconds | None = 180.0
    """Wait for a better courier: an idle courier is offered an order only when it would
    reach the chef at most this long before the food is ready (`RoundParams.commit_early_s`).
    DISPATCH_COMMIT_EARLY_S=null: any courier cheaper than the unassigned penalty."""
    late_added_only: bool = True
    """Charge a pair only the lateness its courier adds, not what no courier could avoid
    (`CostParams.late_added_only`). Off: an order late by more than
    UNASSIGNED_PENALTY_S / 3 whoever takes it is never offered (docs/lab.md)."""
    stack_max_delay_s: Seconds | None = None
    """Stacking refused when it would delay an order already on board by more than this
    (`RoundParams.stack_max_delay_s`). Unset: any delay, priced in the cost."""
    reposition_hints: bool = True
    """Repositioning hints for idle couriers toward predicted demand (`dispatch.reposition`):
    a courier reads its own at GET /api/v1/delivery/hint, the console all of them at
    GET /api/v1/fleet/hints. Off: no hints (the lab's ``-repos`` policies measure them)."""
    search: DispatchSearch = "snapshot"
    """Candidate search of a round: ``snapshot`` (read the region's fresh couriers once, one
    round trip, and search every order in memory) or ``live`` (`nearby_many` on the Redis
    index, one pipeline per ring step); both return the same candidates."""
    max_orders_per_round: PositiveInt = 2000
    """Waiting orders one round of a region reads (oldest first); the rest wait a round."""
    outbox_grace_ms: PositiveInt = 3000
    """The outbox relay leaves rows younger than this to the request publishing them."""
    default_promise_s: Seconds = 2700.0
    """Delivery promise of an order placed without one: 45 minutes after it is queued."""
    delivered_within_m: Meters = 150.0
    """A courier may mark an order delivered only this close to the drop-off."""
    stall_no_fix_s: Seconds = 180.0
    """The watchdog withdraws an assigned order (not yet picked up) whose courier sent no
    GPS fix for this long, and re-dispatches it; a picked-up one is only surfaced. Three
    times COURIER_STALE_S: a tunnel or a lift is forgiven, a dead app is not."""
    stall_no_progress_s: Seconds = 1800.0
    """The watchdog withdraws an assigned order not picked up this long after the food was
    marked ready (and after the assignment): the courier moves but does not come. Covers a
    ride across the whole DISPATCH_RADIUS_M plus a wait at the kitchen."""
    stuck_s: Seconds = 3600.0
    """An order in one active state for longer than this is surfaced as stuck (metric, log,
    ``GET /fleet/orders?status=stuck``); longer than the default 45-minute promise."""
    watchdog_s: Seconds = 5.0
    """Seconds between the watchdog's sweeps (one core process sweeps, under a lease)."""


class RoutingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The route optimiser behind POST /routing/optimize."""

    max_wait_s: Seconds = 30.0
    """A solve is refused (429, Retry-After) when it would wait longer than this for the
    solver process (the queued solves' time limits add up)."""


class RoadsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Travel times on real roads (docs/roads.md); without ``ROADS``, the straight-line model
    (haversine x circuity / vehicle speed) serves every travel time."""

    path: Annotated[Path | None, env("ROADS")] = None
    """A folder built by ``homechef roads build`` (its ``manifest.json``); core loads its
    profiles at start-up and fails to start when it cannot."""
    snap_speed_mps: Annotated[float, msgspec.Meta(gt=0, le=50)] = 1.4
    """Speed over the distance between a point and its nearest road (walking pace)."""
    max_snap_m: Meters = 1000.0
    """A point farther than this from every road of the vehicle's profile is off the map:
    travel to or from it is unreachable (infinite), never a guess."""
    scooter_factor: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0
    """Scooters ride the car network; their road time is the car's times this factor."""
    cache_pairs: Annotated[int, msgspec.Meta(ge=0)] = 200_000
    """Point pairs whose road legs dispatch keeps per profile between rounds (the same
    chef -> drop-off and parked courier -> chef pairs come back every round); 0: none."""
    match: bool = True
    """Match couriers' fixes to the roads (OSRM Match) in the background: their snapped
    trails (``GET /fleet/couriers/{id}/trail``) and the speeds live traffic learns from."""
    match_batch: PositiveInt = 8
    """A courier's fixes are matched once this many new ones arrived (~20-30 s riding)."""
    match_interval_s: Seconds = 2.0
    """How often the matcher looks for couriers due."""
    match_budget_ms: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 100.0
    """Matching time per look at most (OSRM holds the GIL): the rest waits, its oldest
    fixes dropped beyond ``ROADS_MATCH_MAX_FIXES``, so ingest never pays for a backlog."""
    match_max_fixes: PositiveInt = 64
    """Unmatched fixes kept per courier."""
    trail_points: PositiveInt = 120
    """Snapped positions kept per courier for its trail."""
    traffic_interval_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 300.0
    """Learnt segment speeds are applied (MLD re-customised, swapped in) this often; 0: no
    live traffic."""
    traffic_half_life_s: Seconds = 900.0
    """A speed sample's weight halves every this long."""
    traffic_min_samples: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 3.0
    """A segment's learnt speed is applied only while its samples weigh this much."""


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """The single entry point (``homechef serve gateway``): one port in front of core and
    commerce, with limits on what one client may send (docs/gateway.md)."""

    port: Port = 8080
    """Port of the gateway (the URL clients use); the services' own ports stay internal."""
    core_url: str = ""
    """Where the gateway reaches core; empty: ``http://HOST:CORE_PORT``. Several core
    processes: their URLs comma-separated (requests and sockets go round-robin, and one that
    cannot be connected to goes to the next)."""
    commerce_url: str = ""
    """Where the gateway reaches commerce; empty: ``http://HOST:COMMERCE_PORT``."""
    body_max_bytes: PositiveInt = 1_048_576
    """Largest request body accepted (413 beyond; checked before it reaches a service)."""
    upload_max_bytes: PositiveInt = 9 * 1_048_576
    """Largest body of a photo upload route (PHOTOS_MAX_BYTES plus the multipart framing)."""
    connect_timeout_s: Seconds = 2.0
    """Connecting to a service; past it the service counts as down (503, Retry-After)."""
    read_timeout_s: Seconds = 30.0
    """Waiting for a service's answer (504 beyond); route solves are limited below this."""
    ip_rate_per_s: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 50.0
    """Sustained ``/api/v1`` requests and socket opens per client IP (token bucket)."""
    ip_burst: PositiveInt = 200
    """Requests one IP may send at once before the rate applies."""
    user_rate_per_s: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 20.0
    """Sustained ``/api/v1`` requests per signed-in user (token's ``sub``), from any IP."""
    user_burst: PositiveInt = 100
    """Requests one user may send at once before the rate applies."""
    limiter_keys_max: PositiveInt = 100_000
    """IPs and users whose buckets are kept (least recently seen dropped first: a dropped
    bucket starts full)."""
    retry_after_s: PositiveInt = 2
    """``Retry-After`` of a 503 while a service is unreachable."""

    def __post_init__(self) -> None:
        for field in ("core_url", "commerce_url"):
            for url in getattr(self, field).split(","):  # several processes of a service
                if url.strip():
                    _check_url(_env_name(GatewaySettings, field), url.strip(),
                               ("http", "https"))


class ConsoleSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The fleet console (served by core; it logs in at commerce)."""

    origins: str = ""
    """Comma-separated browser origins allowed to call commerce (the console's login), e.g.
    ``https://ops.example.com``; empty: core's own origin (``http://HOST:CORE_PORT``)."""
    commerce_url: Annotated[str, env("COMMERCE_PUBLIC_URL")] = ""
    """Commerce's URL as browsers reach it (the console logs in there); empty: the console's
    host name with COMMERCE_PORT."""
    tile_url: str = ""
    """Optional map tiles under the console (``https://.../{z}/{x}/{y}.png``); empty: none."""

    def __post_init__(self) -> None:
        origins = [o.strip().rstrip("/") for o in self.origins.split(",") if o.strip()]
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise SettingsError(
                    f"CONSOLE_ORIGINS must list origins like https://host[:port], got {origin!r}")
        msgspec.structs.force_setattr(self, "origins", ",".join(origins))
        for field in ("commerce_url", "tile_url"):
            url = getattr(self, field)
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise SettingsError(
                    f"{_env_name(ConsoleSettings, field)} must be an http(s) URL, got {url!r}")


class PhotoSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Uploaded photos (chef kitchens, dishes, proof of delivery; docs/photos.md)."""

    storage: Literal["local", "s3"] = "local"
    """Where photos live: a folder under DATA_DIR, or an S3-compatible bucket."""
    max_bytes: PositiveInt = 8 * 1_048_576
    """Largest upload (413 beyond). Through the gateway GATEWAY_BODY_MAX_BYTES caps it too."""
    max_pixels: PositiveInt = 40_000_000
    """Largest width x height, read from the header before any pixel is decoded."""
    thumb_px: Annotated[int, msgspec.Meta(ge=16, le=2048)] = 320
    """Longest side of a thumbnail."""
    url_ttl_s: Seconds = 900.0
    """Lifetime of a signed photo URL."""
    url_key: str | None = None
    """HMAC key of the local store's signed URLs, >= 32 characters; unset: derived from
    JWT_SECRET."""
    s3_endpoint_url: str = ""
    """S3-compatible endpoint (``http://minio:9000``); empty: AWS's own."""
    s3_public_url: str = ""
    """The endpoint as browsers reach it, when it differs (``http://localhost:9000`` for a
    MinIO container named ``minio``): presigned URLs are signed for this host."""
    s3_bucket: str = "homechef-photos"
    """Bucket of the photos (created at start-up when missing)."""
    s3_region: str = "us-east-1"
    """Region the S3 requests are signed for (MinIO accepts the default)."""
    s3_access_key_id: str = ""
    """Access key; empty: boto3's own chain (environment, instance role)."""
    s3_secret_access_key: str = ""
    """Secret key that goes with PHOTOS_S3_ACCESS_KEY_ID."""

    def __post_init__(self) -> None:
        if self.url_key is not None and len(self.url_key) < MIN_JWT_SECRET_LEN:
            raise SettingsError(
                f"PHOTOS_URL_KEY must be at least {MIN_JWT_SECRET_LEN} characters")
        for field in ("s3_endpoint_url", "s3_public_url"):
            url = getattr(self, field)
            if url:
                _check_url(_env_name(PhotoSettings, field), url, ("http", "https"))


class NotifySettings(msgspec.Struct, frozen=True, kw_only=True):
    """Notifications leaving by e-mail, SMS and Web Push (docs/notifications.md): where they
    go and how the delivery outbox retries."""

    smtp_host: Annotated[str, env("SMTP_HOST")] = ""
    """SMTP server for e-mail; empty: the development sink (logged, kept in memory)."""
    smtp_port: Annotated[Port, env("SMTP_PORT")] = 587
    """Port of the SMTP server."""
    smtp_username: Annotated[str, env("SMTP_USERNAME")] = ""
    """SMTP login; empty: no authentication (a local relay)."""
    smtp_password: Annotated[str, env("SMTP_PASSWORD")] = ""
    """SMTP password (a secret: from the environment only)."""
    smtp_tls: Annotated[Literal["starttls", "tls", "none"], env("SMTP_TLS")] = "starttls"
    """``starttls`` (submission, port 587), ``tls`` (implicit, 465) or ``none`` (a local
    relay)."""
    mail_from: Annotated[str, env("MAIL_FROM")] = "HomeChef <no-reply@homechef.local>"
    """Sender of every e-mail."""
    vapid_subject: Annotated[str, env("VAPID_SUBJECT")] = "mailto:ops@homechef.local"
    """Contact the push services may use (``mailto:`` or ``https:``)."""
    vapid_private_key: Annotated[str, env("VAPID_PRIVATE_KEY")] = ""
    """The deployment's VAPID private key (base64url raw or DER, a secret), for commerce
    processes that share no DATA_DIR; empty: one generated once under DATA_DIR."""
    push_ttl_s: Annotated[int, msgspec.Meta(ge=0, le=2_419_200)] = 3600
    """How long a push service keeps a message for an offline browser."""
    push_allow_loopback: bool = False
    """Accept ``http://`` loopback push endpoints (a local push service in tests and
    development); otherwise endpoints must be public ``https://`` URLs."""
    batch: PositiveInt = 100
    """Deliveries one worker leases per pass."""
    concurrency: PositiveInt = 16
    """Deliveries one worker sends at once."""
    send_timeout_s: Seconds = 10.0
    """One send (SMTP dialogue, SMS call, push POST); past it the attempt failed."""
    lease_s: Seconds = 60.0
    """A leased delivery is left alone this long; a worker that died mid-send loses it then
    (so it is sent again: at least once)."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8
    """Attempts before a delivery is given up (status ``failed``)."""
    backoff_s: Seconds = 5.0
    """Wait before the second attempt; doubled after each failure."""
    backoff_max_s: Seconds = 1800.0
    """Longest wait between attempts."""
    poll_s: Seconds = 1.0
    """Worker poll interval when no local commit woke it (retries come due meanwhile)."""

    def __post_init__(self) -> None:
        if self.lease_s <= self.send_timeout_s:
            raise SettingsError("NOTIFY_LEASE_S must exceed NOTIFY_SEND_TIMEOUT_S")
        if urlsplit(self.vapid_subject).scheme not in ("mailto", "https"):
            raise SettingsError("VAPID_SUBJECT must be a mailto: or https: URL")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Process configuration, one frozen group per concern."""

    stores: Annotated[StoreSettings, env("")] = msgspec.field(default_factory=StoreSettings)
    server: Annotated[ServerSettings, env("")] = msgspec.field(default_factory=ServerSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    ws: WsSettings = msgspec.field(default_factory=WsSettings)
    dispatch: DispatchSettings = msgspec.field(default_factory=DispatchSettings)
    routing: RoutingSettings = msgspec.field(default_factory=RoutingSettings)
    roads: RoadsSettings = msgspec.field(default_factory=RoadsSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    photos: PhotoSettings = msgspec.field(default_factory=PhotoSettings)
    notify: NotifySettings = msgspec.field(default_factory=NotifySettings)

    def replace(self, **changes: Any) -> Settings:
        """A copy with fields changed, each named ``group__field``:
        ``settings.replace(server__namespace="t1", dispatch__round_s=0.2)``. Like
        ``msgspec.structs.replace``, values are taken as given (the groups' own checks run)."""
        by_group: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            group, sep, field = key.partition("__")
            if not sep or group not in self.__struct_fields__:
                raise TypeError(f"Settings.replace takes group__field names, got {key!r}")
            by_group.setdefault(group, {})[field] = value
        return msgspec.structs.replace(self, **{
            group: msgspec.structs.replace(getattr(self, group), **fields)
            for group, fields in by_group.items()})


def _metas(hint: Any) -> list[msgspec.Meta]:
    return [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, msgspec.Meta)]


def _env_override(hint: Any) -> str | None:
    for meta in _metas(hint):
        if meta.extra and "env" in meta.extra:
            return str(meta.extra["env"])
    return None


@cache
def _fields(cls: type) -> dict[str, Any]:
    """``cls``'s fields with their annotations (``Annotated`` metadata kept)."""
    return typing.get_type_hints(cls, include_extras=True)


@cache
def _groups() -> dict[str, tuple[type[msgspec.Struct], str]]:
    """Each group of Settings: its class and environment prefix."""
    out: dict[str, tuple[type[msgspec.Struct], str]] = {}
    for name, hint in _fields(Settings).items():
        prefix = _env_override(hint)
        out[name] = (typing.get_args(hint)[0] if prefix is not None else hint,
                     f"{name.upper()}_" if prefix is None else prefix)
    return out


def _env_name(group_cls: type, field: str) -> str:
    prefix = next(p for cls, p in _groups().values() if cls is group_cls)
    return _env_override(_fields(group_cls)[field]) or f"{prefix}{field.upper()}"


def env_names() -> dict[str, str]:
    """Every setting's environment variable, keyed ``group.field``."""
    return {f"{group}.{field}": _env_name(cls, field)
            for group, (cls, _) in _groups().items() for field in cls.__struct_fields__}


def _literal_values(hint: Any) -> tuple[str, ...] | None:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Path and isinstance(value, str):
        return Path(value).expanduser()
    raise NotImplementedError


def _check_url(name: str, raw: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise SettingsError(
            f"{name} must be a URL with scheme {' or '.join(schemes)}, got {raw!r}")
    if parts.scheme != "unix" and not parts.hostname:
        raise SettingsError(f"{name} has no host: {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise SettingsError(f"{name} has an invalid port: {raw!r}") from None


def _load_group(cls: type[msgspec.Struct], env: Mapping[str, str]) -> Any:
    raw: dict[str, str] = {}
    names: dict[str, str] = {}
    for field, hint in _fields(cls).items():
        name = _env_name(cls, field)
        value = env.get(name, "").strip()
        if not value:
            continue  # blank counts as unset
        choices = _literal_values(hint)
        if choices is not None:  # choices match in any case
            value = next((c for c in choices if c.lower() == value.lower()), value)
        raw[field], names[field] = value, name
    try:
        return msgspec.convert(raw, cls, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _named_error(cls, str(exc), raw, names) from None


def _named_error(cls: type, message: str, raw: dict[str, str],
                 names: dict[str, str]) -> SettingsError:
    """The variable's name and value in front of msgspec's description of what was wrong."""
    match = re.fullmatch(r"(.*) - at `\$\.(\w+)`", message)
    if match is None:  # a group's own check: its message names the variable already
        return SettingsError(message)
    problem, field = match.groups()
    name, value = names[field], raw[field]
    choices = _literal_values(_fields(cls)[field])
    if choices is not None:
        return SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    expected = re.sub(r", got `\w+`$", "", problem).removeprefix("Expected ")
    expected = expected.replace("`int`", "an integer").replace("`float`", "a number")
    return SettingsError(f"{name} must be {expected}, got {value!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise SettingsError naming the first bad variable."""
    env = os.environ if environ is None else environ
    return Settings(**{group: _load_group(cls, env) for group, (cls, _) in _groups().items()})


def console_origins(settings: Settings) -> list[str]:
    """Origins commerce accepts cross-origin calls from: CONSOLE_ORIGINS, else core's own."""
    if settings.console.origins:
        return settings.console.origins.split(",")
    server = settings.server
    hosts = dict.fromkeys([server.host, "127.0.0.1", "localhost"])
    return [f"http://{h}:{server.core_port}" for h in hosts if h not in ("0.0.0.0", "::")]


def to_environ(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    out: dict[str, str] = {}
    for key, name in env_names().items():
        group, field = key.split(".")
        value = getattr(getattr(settings, group), field)
        if value is not None:
            out[name] = str(value)
    return out
