"""What the simulator needs from a system it starts itself: a fresh database and namespace
per run (so runs on one seed are comparable), privileged accounts, and clean-up."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from api.runtime import free_port
from api.settings import Settings


async def create_staff(dsn: str, email: str, password: str, role: str = "admin") -> None:
    """An admin or fleet-manager account, written the way `homechef users create-admin` does
    (privileged roles are never self-registered over the API)."""
    from api.commerce.accounts.passwords import Passwords
    from api.commerce.accounts.services import create_admin, insert_user

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        if role == "admin":
            await create_admin(pool, email, password)
        else:
            pw_hash = await Passwords().hash(password)
            async with pool.acquire() as conn:
                await insert_user(conn, email=email, password_hash=pw_hash, role=role,
                                  email_verified=True)
    finally:
        await pool.close()


def staff_login(role: str) -> tuple[str, str]:
    """A fresh (email, password) for a staff account of this run."""
    tag = secrets.token_hex(3)
    return f"{role.replace('_', '-')}-{tag}@homechef.demo", secrets.token_urlsafe(12)


class RunIsolation(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    database: str | None
    """A database created for this run on the configured server (dropped afterwards)."""
    server_dsn: str | None


async def isolated_settings(settings: Settings, policy: str) -> RunIsolation:
    """Settings for a run of its own: free ports, a new namespace, a new database on the
    configured PostgreSQL (or, without DATABASE_URL, embedded stores in a fresh folder)."""
    tag = secrets.token_hex(4)
    changes: dict[str, object] = {
        "server__namespace": f"sim{tag}", "server__core_port": free_port(settings.server.host),
        "server__commerce_port": free_port(settings.server.host), "dispatch__policy": policy,
        "gateway__port": free_port(settings.server.host),
        "server__jwt_secret": secrets.token_urlsafe(48), "server__log_level": "WARNING",
    }
    database = None
    if settings.stores.database_url:
        database = f"hc_sim_{tag}"
        conn = await asyncpg.connect(settings.stores.database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()
        parts = urlsplit(settings.stores.database_url)
        changes["stores__database_url"] = urlunsplit(parts._replace(path=f"/{database}"))
    # Embedded stores (if any) live in a folder of this run, removed with them.
    changes["server__data_dir"] = Path(tempfile.mkdtemp(prefix="homechef-sim-"))
    return RunIsolation(settings=settings.replace(**changes),
                        database=database, server_dsn=settings.stores.database_url)


async def clean_up(run: RunIsolation) -> None:
    """Drop the run's database, Redis keys and JetStream streams (best effort)."""
    s = run.settings
    if run.database and run.server_dsn:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(run.server_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
            finally:
                await conn.close()
    if s.stores.redis_url:
        import redis.asyncio as aioredis

        with contextlib.suppress(Exception):
            client = aioredis.from_url(s.stores.redis_url)
            try:
                keys = [k async for k in
                        client.scan_iter(match=f"{s.server.namespace}:*", count=1000)]
                for i in range(0, len(keys), 1000):
                    await client.delete(*keys[i:i + 1000])
            finally:
                await client.aclose()
    if s.stores.nats_url:
        import nats

        from streams.jetstream import delete_streams

        with contextlib.suppress(Exception):
            nc = await nats.connect(servers=s.stores.nats_servers)
            try:
                await delete_streams(nc.jetstream(), f"{s.server.namespace.upper()}_")
            finally:
                await nc.close()
