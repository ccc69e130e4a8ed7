"""``homechef users ...``: account administration from the command line."""

from __future__ import annotations

import asyncio

import asyncpg
import click
import msgspec

from api.commerce.accounts.schemas import Email, Password
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
    """Create an admin account (admins are never self-registered over the API)."""
    from api.commerce.accounts.services import create_admin
    from api.problems import Problem

    try:
        msgspec.convert({"email": email, "password": password}, _AdminInput)
        settings = load_settings()
    except (msgspec.ValidationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.stores.database_url:
        raise click.ClickException("DATABASE_URL is not set")
    dsn = settings.stores.database_url

    async def run() -> str:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            user = await create_admin(pool, email, password)
        finally:
            await pool.close()
        return str(user.id)

    try:
        user_id = asyncio.run(run())
    except Problem as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"created admin {email} ({user_id})")
