"""Ordered SQL migrations: one transaction each, recorded in ``schema_migrations``.

Concurrent runs are safe: the whole run holds a PostgreSQL advisory lock, so a second runner
waits, then finds everything applied and does nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

log = logging.getLogger("homechef.migrate")

# Any constant works; it only has to be the same for every runner of this schema.
_LOCK_KEY = 0x486F6D6543686566  # "HomeChef"
_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration file is malformed, was edited after being applied, or failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Migrations in version order from ``directory`` (default: the packaged ones)."""
    if directory is None:
        files = [
            (f.name, f.read_text())
            for f in resources.files("api").joinpath("migrations").iterdir()
            if f.name.endswith(".sql")
        ]
    else:
        files = [(p.name, p.read_text()) for p in directory.glob("*.sql")]
    migrations: list[Migration] = []
    for name, sql in sorted(files):
        m = _NAME_RE.match(name)
        if not m:
            raise MigrationError(f"migration file {name!r} must be named NNNN_description.sql")
        migrations.append(Migration(int(m.group(1)), name, sql))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {[m.name for m in migrations]}")
    return migrations


async def migrate(dsn: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    migrations = load_migrations(directory)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                r["version"]: r
                for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            }
            for m in migrations:
                if m.version in done:
                    if done[m.version]["checksum"] != m.checksum:
                        raise MigrationError(
                            f"migration {m.name} changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(m.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES ($1, $2, $3)",
                            m.version, m.name, m.checksum,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"migration {m.name} failed: {exc}") from exc
                log.info("applied migration %s", m.name)
                applied_now.append(m.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied_now
