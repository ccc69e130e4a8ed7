"""``homechef users ...``: account administration from the command line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import click
import msgspec

from api.commerce.accounts.schemas import Email, Password
from api.runtime import EmbeddedError, EmbeddedStores
from api.settings import SettingsError, load_settings


class _AdminInput(msgspec.Struct, frozen=True):
    email: Email
    password: Password


@click.group()
def users() -> None:
    """Manage commerce accounts (DATABASE_URL)."""


@users.command("create-admin")
@click.option("--email", required=True, help="The admin's email (login name).")
@click.option("--password", required=True, help="At least 8 characters.")
def create_admin_command(email: str, password: str) -> None:
    """Create an admin account (admins are never self-registered over the API).

    In DATABASE_URL; without it, in the embedded PostgreSQL of ``homechef up`` under DATA_DIR,
    running (found from its pidfile) or stopped (started for the command, then stopped)."""
    from api.commerce.accounts.services import create_admin
    from api.problems import Problem

    try:
        msgspec.convert({"email": email, "password": password}, _AdminInput)
        settings = load_settings()
    except (msgspec.ValidationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None

    async def make(dsn: str) -> str:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            user = await create_admin(pool, email, password)
        finally:
            await pool.close()
        return str(user.id)

    async def run() -> tuple[str, str]:
        if settings.stores.database_url:
            return await make(settings.stores.database_url), "DATABASE_URL"
        return await _in_embedded(settings.server.data_dir, settings.server.host, make)

    try:
        user_id, where = asyncio.run(run())
    except Problem as exc:
        raise click.ClickException(exc.detail) from None
    except EmbeddedError as exc:
        raise click.ClickException(f"embedded PostgreSQL: {exc}") from None
    click.echo(f"created admin {email} ({user_id}) in {where}")


async def _in_embedded(data_dir: Path, host: str,
                       make: Callable[[str], Awaitable[str]]) -> tuple[str, str]:
    """Run ``make`` on the embedded database of ``homechef up`` (DATA_DIR): the running one,
    or one started for it (migrated first: it may never have run) and stopped after."""
    from api.migrate import migrate

    stores = EmbeddedStores(data_dir, host)
    url = stores.running_url("postgres")
    if url is not None:
        return await make(url), f"the running embedded PostgreSQL ({data_dir})"
    urls = await stores.start(postgres=True, redis=False, nats=False)
    try:
        await migrate(urls["postgres"])
        return await make(urls["postgres"]), f"the embedded PostgreSQL ({data_dir})"
    finally:
        await stores.stop()
