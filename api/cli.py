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

import click
import msgspec

from api.observability import configure_logging
from api.settings import Settings, SettingsError, load_settings, to_environ

log = logging.getLogger("homechef.cli")

_SERVICES = ("core", "commerce")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def resolve_jwt_secret(settings: Settings) -> Settings:
    """Use JWT_SECRET when set; otherwise a secret kept (mode 600) under DATA_DIR."""
    if settings.jwt_secret:
        return settings
    path = settings.data_dir / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    return msgspec.structs.replace(settings, jwt_secret=secret)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """HomeChef Dispatch: real-time dispatch and logistics for home-cooked food."""


@main.command()
def migrate() -> None:
    """Apply pending database migrations (DATABASE_URL)."""
    from api.migrate import MigrationError
    from api.migrate import migrate as run_migrations

    settings = _settings()
    configure_logging(settings.log_level)
    if not settings.database_url:
        raise click.ClickException("DATABASE_URL is not set")
    try:
        applied = asyncio.run(run_migrations(settings.database_url))
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    names = f": {', '.join(applied)}" if applied else ""
    click.echo(f"applied {len(applied)} migration(s){names}")


@main.command()
@click.argument("service", type=click.Choice(_SERVICES))
def serve(service: str) -> None:
    """Serve one application (core on CORE_PORT, commerce on COMMERCE_PORT)."""
    import uvicorn

    settings = resolve_jwt_secret(_settings())
    missing = [n for n, v in (("DATABASE_URL", settings.database_url),
                              ("REDIS_URL", settings.redis_url),
                              ("NATS_URL", settings.nats_url)) if not v]
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} not set: use `homechef up` to run with embedded stores"
        )
    configure_logging(settings.log_level)
    from api.app import create_commerce_app, create_core_app

    factory = create_core_app if service == "core" else create_commerce_app
    port = settings.core_port if service == "core" else settings.commerce_port
    # No permessage-deflate: device messages are ~100-byte JSON fixes, and inflating every
    # one cost more CPU on the ingest path than the bytes it saves.
    uvicorn.run(factory(settings), host=settings.host, port=port, log_config=None,
                access_log=False, lifespan="on", ws_ping_interval=20, ws_ping_timeout=20,
                ws_per_message_deflate=False)


@main.command()
def up() -> None:
    """Run the whole system: embedded stores as needed, migrations, core and commerce."""
    settings = resolve_jwt_secret(_settings())
    configure_logging(settings.log_level)
    try:
        code = asyncio.run(_up(settings))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


async def _up(settings: Settings) -> int:
    from api.migrate import migrate as run_migrations
    from api.runtime import EmbeddedStores, _child_setup

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    stores = EmbeddedStores(settings.data_dir, settings.host)
    children: dict[str, asyncio.subprocess.Process] = {}
    try:
        need = {"postgres": not settings.database_url, "redis": not settings.redis_url,
                "nats": not settings.nats_url}
        if any(need.values()):
            click.echo(f"starting embedded {', '.join(k for k, v in need.items() if v)} "
                       f"(data in {settings.data_dir.resolve()}) ...")
            urls = await stores.start(**need)
            settings = msgspec.structs.replace(
                settings,
                database_url=settings.database_url or urls.get("postgres"),
                redis_url=settings.redis_url or urls.get("redis"),
                nats_url=settings.nats_url or urls.get("nats"),
            )
        assert settings.database_url
        applied = await run_migrations(settings.database_url)
        click.echo(f"migrations: {len(applied)} applied")

        env = {**os.environ, **to_environ(settings)}
        for service in _SERVICES:
            children[service] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "api.cli", "serve", service, env=env,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup(None, None, os.getpid()),
            )
        ports = {"core": settings.core_port, "commerce": settings.commerce_port}
        ready = await _wait_healthy(settings.host, ports, children, stop)
        if ready:
            click.echo("HomeChef Dispatch is up:")
            for service, port in ports.items():
                click.echo(f"  {service:<9} http://{settings.host}:{port}  "
                           f"(health /health, API docs /schema)")
            click.echo("Press Ctrl-C to stop.")
        waits = [asyncio.create_task(p.wait()) for p in children.values()]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
        failed = [s for s, p in children.items() if p.returncode not in (None, 0)]
        stopper.cancel()
        for w in waits:
            w.cancel()
        if failed:
            click.echo(f"{', '.join(failed)} exited unexpectedly; stopping", err=True)
            return 1
        return 0
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
        click.echo("stopped")


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


@main.group()
def routing() -> None:
    """Route optimisation tools."""


@routing.command("solve")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0.01), default=10.0,
              show_default=True, help="Solver budget in seconds.")
@click.option("--seed", type=int, default=0, show_default=True)
def routing_solve(file: str, time_limit_s: float, seed: int) -> None:
    """Solve a Li & Lim PDPTW instance; print one JSON object on stdout."""
    from routing.cli import solve_file

    try:
        result = solve_file(file, time_limit_s, seed)
    except FileNotFoundError:
        raise click.ClickException(f"no such file: {file}") from None
    except (ValueError, RuntimeError) as exc:  # parse errors, infeasible input, no solution
        raise click.ClickException(str(exc)) from None
    click.echo(msgspec.json.encode(result).decode())


from api.commerce.cli import users  # noqa: E402  (commerce's command group)

main.add_command(users)

if __name__ == "__main__":
    main()
