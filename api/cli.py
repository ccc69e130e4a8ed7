"""The ``homechef`` command line: up, serve, migrate (later issues add more)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import click
import msgspec

from api.observability import configure_logging
from api.settings import Settings, SettingsError, load_settings, to_environ

log = logging.getLogger("homechef.cli")

_SERVICES = ("core", "commerce")
_PROCESSES = ("gateway", *_SERVICES)
"""What ``homechef up`` runs: the gateway in front of the two services."""


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def resolve_jwt_secret(settings: Settings) -> Settings:
    """Use JWT_SECRET when set; otherwise a secret kept (mode 600) under DATA_DIR."""
    if settings.server.jwt_secret:
        return settings
    path = settings.server.data_dir / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        settings.server.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    return settings.replace(server__jwt_secret=secret)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """HomeChef Dispatch: real-time dispatch and logistics for home-cooked food."""


@main.command()
def migrate() -> None:
    """Apply pending database migrations (DATABASE_URL)."""
    from api.migrate import MigrationError
    from api.migrate import migrate as run_migrations

    settings = _settings()
    configure_logging(settings.server.log_level)
    if not settings.stores.database_url:
        raise click.ClickException("DATABASE_URL is not set")
    try:
        applied = asyncio.run(run_migrations(settings.stores.database_url))
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    names = f": {', '.join(applied)}" if applied else ""
    click.echo(f"applied {len(applied)} migration(s){names}")


@main.command()
@click.argument("service", type=click.Choice(_PROCESSES))
def serve(service: str) -> None:
    """Serve one application (core on CORE_PORT, commerce on COMMERCE_PORT, the gateway in
    front of both on GATEWAY_PORT)."""
    import uvicorn

    settings = resolve_jwt_secret(_settings())
    if service == "gateway":
        _serve_gateway(settings)
        return
    missing = [n for n, v in (("DATABASE_URL", settings.stores.database_url),
                              ("REDIS_URL", settings.stores.redis_url),
                              ("NATS_URL", settings.stores.nats_url)) if not v]
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} not set: use `homechef up` to run with embedded stores"
        )
    configure_logging(settings.server.log_level)
    from api.app import create_commerce_app, create_core_app

    factory = create_core_app if service == "core" else create_commerce_app
    port = settings.server.core_port if service == "core" else settings.server.commerce_port
    from api.core.ws.fastws import FastLaneProtocol

    # No permessage-deflate: device messages are ~100-byte JSON fixes, and inflating every
    # one cost more CPU on the ingest path than the bytes it saves. The WebSocket protocol is
    # uvicorn's websockets-sansio one plus the sockets' synchronous fast lane (fastws.py).
    # log_config=None: uvicorn's loggers propagate to the root's JSON handler, which redacts
    # credentials (its handshake lines and access log carry the URL, ?token= included).
    from roads.manifest import RoadsError

    try:
        app = factory(settings)
    except RoadsError as exc:  # ROADS names a folder that cannot be loaded
        raise click.ClickException(f"ROADS: {exc}") from None
    uvicorn.run(app, host=settings.server.host, port=port, log_config=None,
                access_log=settings.server.access_log, lifespan="on", ws=FastLaneProtocol,
                ws_ping_interval=20, ws_ping_timeout=20, ws_per_message_deflate=False)


def _serve_gateway(settings: Settings) -> None:
    """The gateway needs no store: only the services' URLs and the JWT secret (per-user
    limits count verified users only)."""
    import uvicorn

    from api.gateway.app import create_gateway_app

    configure_logging(settings.server.log_level)
    # websockets-sansio: it implements the ASGI extension that lets the gateway answer a
    # refused socket handshake with the service's own status (401, 503) instead of a 403.
    uvicorn.run(create_gateway_app(settings), host=settings.server.host,
                port=settings.gateway.port, log_config=None,
                access_log=settings.server.access_log, lifespan="on", ws="websockets-sansio",
                ws_ping_interval=20, ws_ping_timeout=20, ws_per_message_deflate=False)


@main.command()
@click.option("--demo", is_flag=True,
              help="Also run the simulated city against it until Ctrl-C (see `simulate`).")
@click.option("--fresh", is_flag=True,
              help="Start from empty embedded stores (as `homechef reset` does first).")
@click.option("--city", type=click.Choice(["monaco", "none"]), default="monaco",
              show_default=True,
              help="With --demo and no ROADS: the demo city on real roads (its road data is "
                   "built under DATA_DIR on first use); none: straight lines in Bengaluru.")
def up(demo: bool, fresh: bool, city: str) -> None:
    """Run the whole system: embedded stores as needed, migrations, core and commerce."""
    settings = resolve_jwt_secret(_settings())
    configure_logging(settings.server.log_level)
    if fresh:
        _reset(settings)
    plan = None
    if demo:
        plan = _city_plan(settings, None if city == "none" or settings.roads.path else city,
                          roads=None, lat=None, lng=None, radius_m=None)
        settings = plan.settings
    try:
        code = asyncio.run(_up(settings, demo=plan))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


@main.command()
def reset() -> None:
    """Wipe the embedded stores of DATA_DIR (every account, order and demo city with them)
    and the demo's log; road data and the JWT secret stay. Refused while `homechef up`
    runs on them."""
    _reset(_settings())


def _reset(settings: Settings) -> None:
    from api.runtime import EmbeddedError, EmbeddedStores

    data_dir = settings.server.data_dir
    try:
        removed = EmbeddedStores(data_dir, settings.server.host).wipe()
    except EmbeddedError as exc:
        raise click.ClickException(str(exc)) from None
    for log_file in [data_dir / "homechef-demo.log", *data_dir.glob("simulate-*.log")]:
        if log_file.exists():
            log_file.unlink()
            removed.append(log_file)
    click.echo(f"reset {data_dir.resolve()}: "
               + (f"removed {', '.join(p.name for p in removed)}" if removed
                  else "no embedded data there"))
    if settings.stores.database_url or settings.stores.redis_url or settings.stores.nats_url:
        click.echo("(stores named by DATABASE_URL / REDIS_URL / NATS_URL are not touched)")


@main.group()
def cluster() -> None:
    """A local Redis Cluster and NATS cluster on loopback ports (develop and test on them)."""


@cluster.command("up")
@click.option("--redis-nodes", default=6, show_default=True,
              help="Redis Cluster nodes: half primaries, half their replicas.")
@click.option("--nats-nodes", default=3, show_default=True,
              help="NATS servers with JetStream, routed to each other.")
@click.option("--cores", type=click.IntRange(min=0, max=16), default=3, show_default=True,
              help="Core processes to run on the clusters, behind the gateway (with commerce "
                   "and an embedded PostgreSQL); 0: the clusters only.")
def cluster_up(redis_nodes: int, nats_nodes: int, cores: int) -> None:
    """Start the clusters and the system on them (core processes, commerce, the gateway);
    print the URLs; run until Ctrl-C (the clusters start empty each time)."""
    settings = resolve_jwt_secret(_settings())
    configure_logging(settings.server.log_level)
    try:
        code = asyncio.run(_cluster_up(settings, redis_nodes=redis_nodes,
                                       nats_nodes=nats_nodes, cores=cores))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


async def _cluster_up(settings: Settings, *, redis_nodes: int, nats_nodes: int,
                      cores: int) -> int:
    from api.local_cluster import LocalCluster
    from api.runtime import EmbeddedError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    local = LocalCluster(settings.server.data_dir / "cluster", redis_nodes=redis_nodes,
                         nats_nodes=nats_nodes)
    try:
        urls = await local.start_cluster()
    except EmbeddedError as exc:
        raise click.ClickException(str(exc)) from None
    replicas = min(3, nats_nodes)
    try:
        click.echo(f"Redis Cluster ({redis_nodes // 2} primaries, {redis_nodes // 2} "
                   f"replicas): {' '.join(urls.redis)}")
        click.echo(f"NATS cluster with JetStream ({nats_nodes} servers): {urls.nats_url}")
        click.echo("Environment for homechef on it:")
        click.echo(f"  REDIS_CLUSTER=true REDIS_URL={urls.redis_url}")
        click.echo(f"  NATS_URL={urls.nats_url} NATS_STREAM_REPLICAS={replicas}")
        if cores:
            on_cluster = settings.replace(
                stores__redis_url=urls.redis_url, stores__redis_cluster=True,
                stores__nats_url=urls.nats_url, stores__nats_stream_replicas=replicas)
            async with _running_system(on_cluster, stop, cores=cores) as system:
                if system is None:
                    return 0 if stop.is_set() else 1
                _echo_urls(system)
                click.echo("Press Ctrl-C to stop.")
                await _until_stopped(system, stop)
        else:
            click.echo("Press Ctrl-C to stop.")
            await stop.wait()
    finally:
        await local.stop()
    click.echo("stopped")
    return 0


class _System:
    """A started system: its effective settings and service processes."""

    def __init__(self, settings: Settings, children: dict[str, asyncio.subprocess.Process],
                 ports: dict[str, int]):
        self.settings = settings
        self.children = children
        self.ports = ports
        """Process name (``core``, ``core-2``, ..., ``commerce``, ``gateway``) -> port."""

    def url(self, process: str) -> str:
        return f"http://{self.settings.server.host}:{self.ports[process]}"


@contextlib.asynccontextmanager
async def _running_system(settings: Settings, stop: asyncio.Event, *,
                          log_path: Path | None = None, remove_store_files: bool = False,
                          cores: int = 1) -> AsyncIterator[_System | None]:
    """Embedded stores for unset URLs, migrations, core and commerce as child processes.

    Yields the system once both services answer /health (None if they never did); stops
    everything on exit. ``log_path``: the services' output goes there instead of the terminal.
    ``cores``: core processes (the first on CORE_PORT, the others on free ports), all behind
    the gateway.
    """
    from api.migrate import migrate as run_migrations
    from api.runtime import EmbeddedStores, _child_setup, free_port

    stores = EmbeddedStores(settings.server.data_dir, settings.server.host)
    children: dict[str, asyncio.subprocess.Process] = {}
    log_file = None
    try:
        need = {"postgres": not settings.stores.database_url,
                "redis": not settings.stores.redis_url, "nats": not settings.stores.nats_url}
        if any(need.values()):
            click.echo(f"starting embedded {', '.join(k for k, v in need.items() if v)} "
                       f"(data in {settings.server.data_dir.resolve()}) ...")
            urls = await stores.start(**need)
            settings = settings.replace(
                stores__database_url=settings.stores.database_url or urls.get("postgres"),
                stores__redis_url=settings.stores.redis_url or urls.get("redis"),
                stores__nats_url=settings.stores.nats_url or urls.get("nats"),
            )
        assert settings.stores.database_url
        applied = await run_migrations(settings.stores.database_url)
        click.echo(f"migrations: {len(applied)} applied")

        ports = {"core": settings.server.core_port}
        ports.update({f"core-{i}": free_port() for i in range(2, cores + 1)})
        host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else \
            settings.server.host
        if cores > 1:
            settings = settings.replace(gateway__core_url=",".join(
                f"http://{host}:{port}" for port in ports.values()))
        ports.update(commerce=settings.server.commerce_port, gateway=settings.gateway.port)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(log_path, "ab")  # noqa: ASYNC230, SIM115 - local file; closed below
        for name, port in ports.items():
            kind = name.split("-")[0]
            own = settings.replace(server__core_port=port) if kind == "core" else settings
            children[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "api.cli", "serve", kind,
                env={**os.environ, **to_environ(own)},
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                # A terminal's Ctrl-C reaches only us: the demo finishes and prints its
                # figures while the services still answer, then we stop them in order.
                start_new_session=True,
                preexec_fn=_child_setup(None, None, os.getpid()),
            )
        ready = await _wait_healthy(settings.server.host, ports, children, stop)
        yield _System(settings, children, ports) if ready else None
    finally:
        click.echo("stopping ...")
        for p in children.values():
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in children.values():
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
                await p.wait()
        await stores.stop()
        if remove_store_files:
            stores.remove_files()
        if log_file is not None:
            log_file.close()
        click.echo("stopped")


async def _up(settings: Settings, *, demo: CityPlan | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log_path = settings.server.data_dir / "homechef-demo.log" if demo else None
    async with _running_system(settings, stop, log_path=log_path) as system:
        if system is None:
            return 0 if stop.is_set() else 1
        _echo_urls(system)
        extra: list[asyncio.Task[object]] = []
        if demo is not None:
            click.echo(f"  services' logs in {log_path}")
            extra.append(asyncio.create_task(_demo(system, stop, demo)))
        click.echo("Press Ctrl-C to stop.")
        return await _until_stopped(system, stop, extra)


def _echo_urls(system: _System) -> None:
    click.echo("HomeChef Dispatch is up:")
    click.echo(f"  gateway   {system.url('gateway')}  (the one URL for clients: /api/v1, "
               "/ws, console /console/, apps /courier/ /kitchen/ /track/<token>)")
    for name in system.ports:
        if name != "gateway":
            click.echo(f"  {name:<9} {system.url(name)}  "
                       f"(internal; health /health, API docs /schema)")


async def _until_stopped(system: _System, stop: asyncio.Event,
                         extra: list[asyncio.Task[object]] | None = None) -> int:
    """Run until Ctrl-C or a process exits (then stop the rest); 1 if one failed."""
    extra = extra or []
    waits = [asyncio.create_task(p.wait()) for p in system.children.values()]
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*waits, stopper, *extra], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for t in extra:  # the demo prints its KPI table when stopped
        with contextlib.suppress(Exception):
            await asyncio.wait_for(t, 30)
    failed = [s for s, p in system.children.items() if p.returncode not in (None, 0)]
    stopper.cancel()
    for w in waits:
        w.cancel()
    if failed:
        click.echo(f"{', '.join(failed)} exited unexpectedly; stopping", err=True)
        return 1
    return 0


async def _wait_healthy(
    host: str,
    ports: dict[str, int],
    children: dict[str, asyncio.subprocess.Process],
    stop: asyncio.Event,
    timeout_s: float = 60.0,
) -> bool:
    deadline = time.monotonic() + timeout_s
    pending = dict(ports)
    while pending and time.monotonic() < deadline and not stop.is_set():
        for service, port in list(pending.items()):
            if children[service].returncode is not None:
                return False
            if await asyncio.to_thread(_http_ok, f"http://{host}:{port}/health"):
                del pending[service]
        await asyncio.sleep(0.2)
    return not pending


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # our own loopback URL
            return bool(r.status == 200)
    except OSError:
        return False


class Duration(click.ParamType):
    """``90``, ``90s``, ``2m``, ``1h``, ``1m30s`` -> seconds (float, > 0)."""

    name = "duration"
    _UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            import re

            text = str(value).strip().lower()
            parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
                                 r"(?:(\d+(?:\.\d+)?)s?)?", text)
            if not text or parts is None:
                self.fail(f"{value!r} is not a duration (e.g. 90s, 2m, 1m30s, 1h)", param, ctx)
            h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
            seconds = h * 3600 + m * 60 + sec
        if not seconds > 0 or seconds == float("inf"):
            self.fail(f"{value!r} must be a positive duration", param, ctx)
        return seconds


def _sim_config(*, couriers: int, chefs: int, customers: int, orders_per_min: float,
                duration_s: float | None, drain_s: float, seed: int, radius_m: float,
                lat: float, lng: float, policy: str | None, accept_prob: float,
                prep_scale: float, speed_factor: float, progress_s: float,
                wander_m: float = 0.0, roads: Path | None = None) -> object:
    from api.simulator.agents import Behaviour
    from api.simulator.city import CityConfig, Point
    from api.simulator.run import SimConfig

    return SimConfig(
        city=CityConfig(seed=seed, center=Point(lat, lng), radius_m=radius_m, chefs=chefs,
                        couriers=couriers, customers=customers),
        orders_per_min=orders_per_min, duration_s=duration_s, drain_s=drain_s,
        behaviour=Behaviour(accept_prob=accept_prob, prep_scale=prep_scale,
                            speed_factor=speed_factor, wander_m=wander_m),
        progress_s=progress_s, policy=policy, roads=roads)


def _print_result(result: object, json_path: str | None) -> int:
    from api.simulator.run import SimResult
    from dispatch.day_kpis import kpi_table

    assert isinstance(result, SimResult)
    click.echo("")
    click.echo(kpi_table(result.kpis, title=(
        f"KPIs (policy {result.policy}, seed {result.seed}, {result.couriers} couriers, "
        f"{result.chefs} chefs, {result.orders_per_min:g} orders/min, wall "
        f"{result.wall_s:.0f} s):")))
    click.echo(f"couriers told the food was ready: {result.food_ready_pushed} by core's "
               f"ORDER_READY push, {result.food_ready_polled} by polling")
    if result.errors:
        click.echo(f"{len(result.errors)} client errors; first: {result.errors[0]}", err=True)
    if result.unfinished_summary:  # each order's detail is in --json (``unfinished``)
        click.echo(result.unfinished_summary + (f" (each one in {json_path})" if json_path
                                                else " (each one with --json)"))
    if json_path:
        Path(json_path).write_bytes(msgspec.json.format(msgspec.json.encode(result)) + b"\n")
        click.echo(f"KPIs written to {json_path}")
    if result.kpis.double_assignments:
        click.echo(f"FAIL: {result.kpis.double_assignments} double assignment(s)", err=True)
        return 3
    return 0


@main.command()
@click.option("--couriers", type=click.IntRange(min=1, max=5000), default=60, show_default=True)
@click.option("--chefs", type=click.IntRange(min=1, max=1000), default=12, show_default=True)
@click.option("--customers", type=click.IntRange(min=1, max=20000), default=60,
              show_default=True)
@click.option("--orders-per-min", type=click.FloatRange(min=0, max=10000), default=12.0,
              show_default=True, help="Mean rate of new orders (Poisson arrivals).")
@click.option("--duration", "duration_s", type=Duration(), default="2m", show_default=True,
              help="How long customers order (e.g. 90s, 2m, 1h).")
@click.option("--drain", "drain_s", type=Duration(), default="7m", show_default=True,
              help="Then wait at most this long for in-flight orders to be delivered.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Same seed: same city and order stream.")
@click.option("--policy", type=click.Choice(["optimal", "greedy"]), default=None,
              help="Dispatch matcher. Own system: started with it (default optimal). "
                   "With --core-url: core must already run it, else this is an error.")
@click.option("--radius", "radius_m", type=click.FloatRange(min=100, max=50_000),
              default=None, help="City radius in metres [default: 1000, or the --city's].")
@click.option("--lat", type=click.FloatRange(-85, 85), default=None,
              help="City centre [default: 12.9716, the --city's, or with roads the road "
                   "data's middle].")
@click.option("--lng", type=click.FloatRange(-180, 180), default=None,
              help="City centre [default: 77.5946, the --city's, or with roads the road "
                   "data's middle].")
@click.option("--city", type=click.Choice(["monaco"]), default=None,
              help="A built-in demo city on real roads (its road data is built under "
                   "DATA_DIR on first use; core rides them).")
@click.option("--roads", "roads_dir", type=click.Path(file_okay=False, exists=True,
                                                      path_type=Path), default=None,
              help="Road data (`homechef roads build`) core rides and the city is placed "
                   "on [default: ROADS, or the --city's].")
@click.option("--accept-prob", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Share of offers couriers accept.")
@click.option("--prep-scale", type=click.FloatRange(min=0.01, max=100), default=1.0,
              show_default=True, help="Multiplies every kitchen's preparation time.")
@click.option("--speed-factor", type=click.FloatRange(min=0.1, max=8), default=1.0,
              hidden=True, help="Couriers ride this much faster than their vehicle (tests).")
@click.option("--progress-every", "progress_s", type=Duration(), default="5s",
              show_default=True)
@click.option("--core-url", default=None, help="Drive a running core (with --commerce-url).")
@click.option("--commerce-url", default=None)
@click.option("--admin-email", envvar="HOMECHEF_ADMIN_EMAIL", default=None,
              help="With --core-url: an admin account (env HOMECHEF_ADMIN_EMAIL).")
@click.option("--admin-password", envvar="HOMECHEF_ADMIN_PASSWORD", default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Also write the KPIs as JSON to this file.")
def simulate(couriers: int, chefs: int, customers: int, orders_per_min: float,
             duration_s: float, drain_s: float, seed: int, policy: str | None,
             radius_m: float | None, lat: float | None, lng: float | None, city: str | None,
             roads_dir: Path | None, accept_prob: float, prep_scale: float,
             speed_factor: float, progress_s: float, core_url: str | None,
             commerce_url: str | None, admin_email: str | None, admin_password: str | None,
             json_path: str | None) -> None:
    """Run a seeded demo city for --duration, then print its KPI table.

    Without --core-url/--commerce-url it starts its own system (as `up` does, in a fresh
    database and namespace, with DISPATCH_POLICY=--policy) and stops it afterwards.
    Exits 3 when any order was double-assigned.
    """
    if (core_url is None) != (commerce_url is None):
        raise click.UsageError("give both --core-url and --commerce-url, or neither")
    if core_url and not (admin_email and admin_password):
        raise click.UsageError("--core-url needs --admin-email and --admin-password "
                               "(create one with `homechef users create-admin`)")
    plan = _city_plan(_settings(), city, roads=roads_dir, lat=lat, lng=lng,
                      radius_m=radius_m)
    settings = plan.settings
    config = _sim_config(couriers=couriers, chefs=chefs, customers=customers,
                         orders_per_min=orders_per_min, duration_s=duration_s,
                         drain_s=drain_s, seed=seed, radius_m=plan.radius_m,
                         lat=plan.lat, lng=plan.lng,
                         policy=policy, accept_prob=accept_prob, prep_scale=prep_scale,
                         speed_factor=speed_factor, progress_s=progress_s,
                         roads=settings.roads.path)
    configure_logging("WARNING")
    try:
        if core_url and commerce_url and admin_email and admin_password:
            from api.simulator.run import Endpoints

            result = asyncio.run(_simulate(Endpoints(
                core_url=core_url.rstrip("/"), commerce_url=commerce_url.rstrip("/"),
                admin_email=admin_email, admin_password=admin_password), config))
        else:
            result = asyncio.run(_simulate_own(settings, config, policy or "optimal"))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(_print_result(result, json_path))


async def _simulate(endpoints: object, config: object,
                    stop: asyncio.Event | None = None) -> object:
    from api.simulator.clients import SimulatorError
    from api.simulator.run import Endpoints, SimConfig, simulate

    assert isinstance(endpoints, Endpoints)
    assert isinstance(config, SimConfig)
    try:
        return await simulate(endpoints, config, echo=click.echo, stop=stop)
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from None


async def _simulate_own(settings: Settings, config: object, policy: str) -> object:
    from api.simulator.run import Endpoints
    from api.simulator.system import clean_up, create_staff, isolated_settings, staff_login

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    run = await isolated_settings(settings, policy)
    log_path = settings.server.data_dir / f"simulate-{run.settings.server.namespace}.log"
    click.echo(f"starting a fresh system (namespace {run.settings.server.namespace}, "
               f"dispatch policy {policy}; services' logs in {log_path}) ...")
    try:
        async with _running_system(run.settings, stop, log_path=log_path,
                                   remove_store_files=True) as system:
            if system is None:
                raise click.ClickException(f"the system did not start; see {log_path}")
            assert system.settings.stores.database_url
            email, password = staff_login("admin")
            await create_staff(system.settings.stores.database_url, email, password, "admin")
            endpoints = Endpoints(core_url=system.url("core"),
                                  commerce_url=system.url("commerce"),
                                  admin_email=email, admin_password=password)
            return await _simulate(endpoints, config, stop)
    finally:
        await clean_up(run)


class CityPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Where a simulated city lies and the settings its system runs with (ROADS)."""

    settings: Settings
    lat: float
    lng: float
    radius_m: float


def _city_plan(settings: Settings, city: str | None, *, roads: Path | None,
               lat: float | None, lng: float | None, radius_m: float | None) -> CityPlan:
    """Where a simulated city lies (`up --demo`, `simulate`) and on which roads.

    - A demo city (`--city`): its centre and radius, on its road data (built under
      DATA_DIR on first use, with progress) unless `roads` names other data.
    - Else with road data (`roads`, or ROADS): the middle of the data (a city elsewhere
      would be off the map: every ride unreachable, no order dispatched).
    - Else Bengaluru, on straight lines.
    Explicit `lat`/`lng`/`radius_m` win."""
    from roads.manifest import RoadsError, read_manifest

    centre, radius = (12.9716, 77.5946), 1000.0
    try:
        if city is not None:
            from api.simulator.cities import CITIES, city_roads

            demo = CITIES[city]
            centre, radius = (demo.center.lat, demo.center.lng), demo.radius_m
            roads = roads or city_roads(demo, settings.server.data_dir,
                                        lambda line: click.echo(f"roads: {line}", err=True))
        roads = roads or settings.roads.path
        if roads is not None:
            if city is None:
                lo_lng, lo_lat, hi_lng, hi_lat = read_manifest(roads).bbox
                centre = (lo_lat + hi_lat) / 2, (lo_lng + hi_lng) / 2
            else:
                read_manifest(roads)
            settings = settings.replace(roads__path=roads.resolve())
    except RoadsError as exc:
        raise click.ClickException(f"roads: {exc}") from None
    return CityPlan(settings=settings, lat=centre[0] if lat is None else lat,
                    lng=centre[1] if lng is None else lng,
                    radius_m=radius if radius_m is None else radius_m)


async def _demo(system: _System, stop: asyncio.Event, plan: CityPlan) -> None:
    """`up --demo`: a fleet manager for the console, then the simulated city until Ctrl-C."""
    from api.simulator.system import create_staff, staff_login

    assert system.settings.stores.database_url
    fm_email, fm_password = staff_login("fleet_manager")
    await create_staff(system.settings.stores.database_url, fm_email, fm_password, "fleet_manager")
    email, password = staff_login("admin")
    await create_staff(system.settings.stores.database_url, email, password, "admin")
    click.echo(f"Fleet console: {system.url('core')}/console/")
    click.echo(f"  log in as fleet manager {fm_email} / {fm_password}")
    config = _sim_config(couriers=60, chefs=12, customers=60, orders_per_min=12.0,
                         duration_s=None, drain_s=0.0, seed=42, radius_m=plan.radius_m,
                         lat=plan.lat, lng=plan.lng, policy=None, accept_prob=0.9,
                         prep_scale=1.0, speed_factor=1.0, progress_s=10.0,
                         wander_m=300.0,  # idle couriers cruise: the map moves at once
                         roads=system.settings.roads.path)
    from api.simulator.run import Endpoints, SimResult

    result = await _simulate(Endpoints(core_url=system.url("core"),
                                       commerce_url=system.url("commerce"),
                                       admin_email=email, admin_password=password),
                             config, stop)
    assert isinstance(result, SimResult)
    _print_result(result, None)


@main.command()
@click.option("--day", "day_name", default="dinner-peak", show_default=True,
              help="A preset day: dinner-peak, lunch-dinner or tiny (see docs/lab.md).")
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False), default=None,
              help="A scenario JSON file instead of --day (fields left out take the "
                   "dinner-peak defaults).")
@click.option("--replay", "replay_path", type=click.Path(dir_okay=False), default=None,
              help="A recorded day (JSON, lab/replay.py) instead of --day: replay it "
                   "under the policies.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--policy", "policies", default="production", show_default=True,
              help="Policies to run on the same day, comma-separated: production (the "
                   "DISPATCH_ settings), greedy, optimal, improved, ... (all in docs/lab.md).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help='Write {"policy", "seed", "kpis", ...} here (several policies: '
                   '{"day", "seed", "runs": [...]}).')
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the KPIs over the day, policy beside policy "
                   "(needs matplotlib: the lab extra).")
@click.option("--save-day", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Write the day as a recorded day (JSON), replayable with --replay.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def lab(day_name: str, scenario_path: str | None, replay_path: str | None, seed: int,
        policies: str, json_path: str | None, plot_path: str | None, save_path: str | None,
        quiet: bool) -> None:
    """Replay a city day on a virtual clock through the production round planner and
    print its KPIs, one column per policy."""
    from lab.city import Day, build_day
    from lab.policies import POLICIES
    from lab.replay import load_recorded, record_day, replay_day
    from lab.scenario import PRESETS, load_scenario

    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    bad = [p for p in chosen if p not in POLICIES]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise click.BadParameter(f"give distinct policies among {', '.join(POLICIES)}",
                                 param_hint="--policy")
    if scenario_path is not None and replay_path is not None:
        raise click.BadParameter("give --scenario or --replay, not both",
                                 param_hint="--replay")
    day: Day | None = None
    if replay_path is not None:
        try:
            day = replay_day(load_recorded(Path(replay_path).read_bytes()), seed)
        except OSError as exc:
            raise click.ClickException(f"cannot read {replay_path}: {exc}") from None
        except msgspec.DecodeError as exc:  # ValidationError included
            raise click.ClickException(f"bad recorded day {replay_path}: {exc}") from None
        scenario = day.scenario
    elif scenario_path is not None:
        try:
            scenario = load_scenario(Path(scenario_path).read_bytes())
        except OSError as exc:
            raise click.ClickException(f"cannot read {scenario_path}: {exc}") from None
        except msgspec.DecodeError as exc:  # ValidationError included
            raise click.ClickException(f"bad scenario {scenario_path}: {exc}") from None
    elif day_name in PRESETS:
        scenario = PRESETS[day_name]
    else:
        raise click.BadParameter(f"one of {', '.join(sorted(PRESETS))}", param_hint="--day")
    if plot_path:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.ClickException(
                "--plot needs matplotlib, which is not installed: "
                "pip install 'homechef-dispatch[lab]'") from None
    settings = _settings()
    def echo(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    started = time.perf_counter()
    if day is None:
        day = build_day(scenario, seed)
    echo(f"day {scenario.name}, seed {seed}: {len(day.orders)} orders, {len(day.couriers)} "
         f"couriers, {len(day.chefs)} kitchens (built in {time.perf_counter() - started:.1f} s)")
    if save_path:
        Path(save_path).write_bytes(msgspec.json.encode(record_day(day)) + b"\n")
        echo(f"day written to {save_path}")
    report = _run_lab(day, chosen, settings, echo)
    click.echo(report.table)
    if json_path:
        Path(json_path).write_bytes(msgspec.json.format(msgspec.json.encode(report.document))
                                    + b"\n")
        click.echo(f"KPIs written to {json_path}")
    if plot_path:
        from api.lab_plot import plot_day

        plot_day(report.series, Path(plot_path),
                 f"lab day {scenario.name}, seed {seed}: {' vs '.join(chosen)}")
        click.echo(f"plot written to {plot_path}")


@main.command("lab-record")
@click.option("--since", required=True, help="First instant, ISO 8601 (UTC if no offset).")
@click.option("--until", required=True, help="End of the window, ISO 8601 (excluded).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Where to write the recorded day (JSON), for homechef lab --replay.")
def lab_record(since: str, until: str, out_path: str) -> None:
    """Export the dispatch history in PostgreSQL (DATABASE_URL, this deployment's
    HOMECHEF_NAMESPACE) between two instants as a recorded day (docs/lab.md)."""
    from datetime import UTC, datetime

    import asyncpg

    from api.lab_record import record_from_history
    from dispatch.promise import epoch_ms
    from geo.travel import HaversineTravelModel

    def instant(text: str, name: str) -> int:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise click.BadParameter("an ISO 8601 instant", param_hint=name) from None
        return epoch_ms(at if at.tzinfo else at.replace(tzinfo=UTC))

    since_ms, until_ms = instant(since, "--since"), instant(until, "--until")
    if until_ms <= since_ms:
        raise click.BadParameter("after --since", param_hint="--until")
    settings = _settings()
    if not settings.stores.database_url:
        raise click.ClickException("DATABASE_URL is not set")
    dsn = settings.stores.database_url

    async def read() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await record_from_history(
                conn, namespace=settings.server.namespace, since_ms=since_ms,
                until_ms=until_ms, model=HaversineTravelModel())
        finally:
            await conn.close()

    try:
        day = asyncio.run(read())
    except ValueError as exc:  # no order or no courier in the window
        raise click.ClickException(f"no day to record: {exc}") from None
    Path(out_path).write_bytes(msgspec.json.encode(day) + b"\n")
    from lab.replay import RecordedDay

    assert isinstance(day, RecordedDay)
    click.echo(f"{len(day.orders)} orders and {len(day.couriers)} courier spans written to "
               f"{out_path}; replay with homechef lab --replay {out_path}")


class LabReport(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    document: object
    series: list[tuple[str, list[Any]]]
    """(policy, `lab.kpis.SeriesPoint`s) per run."""


def _run_lab(day: Any, policies: list[str], settings: Settings,
             echo: Callable[[str], None]) -> LabReport:
    """Run the day under each policy (the production round parameters of `settings`, as
    `Dispatcher` builds them), and gather the table, the JSON and the series."""
    from api.lab_dispatch import lab_dispatch
    from geo.travel import HaversineTravelModel
    from lab.city import Day
    from lab.engine import simulate_day
    from lab.kpis import KPI_ROWS, lab_kpis, series
    from lab.policies import apply_policy

    assert isinstance(day, Day)
    scenario, seed = day.scenario, day.seed
    model = HaversineTravelModel()
    production = lab_dispatch(settings.dispatch, model)
    runs = []
    for policy in policies:
        dispatch = apply_policy(policy, production)
        t0 = time.perf_counter()
        run = simulate_day(day, dispatch, model, progress=echo, label=policy)
        kpis = lab_kpis(run, len(day.couriers))
        echo(f"{policy}: {run.rounds} rounds, {run.offers} offers, "
             f"wall {time.perf_counter() - t0:.1f} s")
        runs.append((policy, kpis, series(run, day.start_ms,
                                          day.start_ms + round(scenario.hours * 3.6e6))))
    width = max(len(label) for label, _ in KPI_ROWS)
    col = max(9, *(len(p) for p in policies))
    head = f"| {'KPI':<{width}} | " + " | ".join(f"{p:>{col}}" for p, _, _ in runs) + " |"
    rule = f"| {'-' * width} | " + " | ".join("-" * col for _ in runs) + " |"
    rows = [f"| {label:<{width}} | " + " | ".join(
        f"{_lab_cell(getattr(k, field)):>{col}}" for _, k, _ in runs) + " |"
        for label, field in KPI_ROWS]
    table = "\n".join([f"lab day {scenario.name}, seed {seed}:", head, rule, *rows])
    docs = [{"policy": p, "seed": seed, "day": scenario.name, "kpis": k, "series": s}
            for p, k, s in runs]
    document: object = docs[0] if len(docs) == 1 else {
        "day": scenario.name, "seed": seed, "runs": docs}
    return LabReport(table=table, document=document,
                     series=[(p, list(s)) for p, _, s in runs])


def _lab_cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


@main.group()
def gateway() -> None:
    """The single entry point's configuration."""


@gateway.command("nginx-conf")
@click.option("--cores", type=click.IntRange(min=1, max=64), default=None,
              help="Core processes core-1..N (docker-compose.cluster.yml); default: one, core.")
@click.option("--commerces", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="With --cores: commerce processes commerce-1..N.")
def gateway_nginx_conf(cores: int | None, commerces: int) -> None:
    """Print the nginx.conf of docker-compose.yml's gateway (the routing table and limits);
    with --cores, docker-compose.cluster.yml's."""
    from api.gateway.nginx import cluster_upstreams, nginx_conf

    upstreams = cluster_upstreams(cores, commerces) if cores else None
    click.echo(nginx_conf(upstreams=upstreams), nl=False)


@main.group()
def routing() -> None:
    """Route optimisation tools."""


@routing.command("solve")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0.01), default=10.0,
              show_default=True, help="Solver budget in seconds.")
@click.option("--seed", type=int, default=0, show_default=True)
def routing_solve(file: str, time_limit_s: float, seed: int) -> None:
    """Solve a Li & Lim PDPTW instance; print one JSON object on stdout (progress on stderr)."""
    from routing.cli import solve_file

    try:
        result = solve_file(file, time_limit_s, seed, log=lambda line: click.echo(line, err=True))
    except FileNotFoundError:
        raise click.ClickException(f"no such file: {file}") from None
    except (ValueError, RuntimeError) as exc:  # parse errors, infeasible input, no solution
        raise click.ClickException(str(exc)) from None
    click.echo(msgspec.json.encode(result).decode())


@main.group()
def roads() -> None:
    """Road network data (OSRM) built from OpenStreetMap extracts."""


@roads.command("build")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to build into [default: DATA_DIR/roads/<name of FILE>].")
@click.option("--profile", "profiles", multiple=True,
              type=click.Choice(["car", "bicycle", "foot"]),
              help="Profile to build (repeat the option) [default: car, bicycle, foot].")
@click.option("--algorithm", type=click.Choice(["mld", "ch"]), default="mld",
              show_default=True,
              help="mld: partition + customize (live speeds can be re-customised); "
                   "ch: contract.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
def roads_build(file: Path, out: Path | None, profiles: tuple[str, ...], algorithm: str,
                threads: int) -> None:
    """Build OSRM road data from FILE (.osm.pbf, .osm, .osm.bz2); serve it with ROADS=OUT.

    Exit status 1 with one line on stderr when FILE is missing, is not an OpenStreetMap
    extract, or an OSRM tool refuses it."""
    from roads.build import build_roads, source_stem
    from roads.manifest import RoadsError
    from roads.profiles import PROFILES

    if out is None:
        out = _settings().server.data_dir / "roads" / source_stem(file)
    chosen = [p for p in PROFILES if p in profiles] if profiles else list(PROFILES)
    try:
        manifest = build_roads(file, out, profiles=chosen,
                               algorithm="ch" if algorithm == "ch" else "mld",
                               threads=threads, progress=lambda line: click.echo(
                                   f"roads: {line}", err=True))
    except RoadsError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the output folder cannot be made or written
        raise click.ClickException(f"{exc.filename or out}: {exc.strerror}") from None
    lo_lng, lo_lat, hi_lng, hi_lat = manifest.bbox
    click.echo(f"built {', '.join(manifest.profiles)} ({manifest.algorithm}) in "
               f"{manifest.build_s:.1f} s; bbox lat {lo_lat:.4f}..{hi_lat:.4f}, "
               f"lng {lo_lng:.4f}..{hi_lng:.4f}; serve with ROADS={out}")


from api.commerce.cli import users  # noqa: E402  (commerce's command group)

main.add_command(users)

if __name__ == "__main__":
    main()
