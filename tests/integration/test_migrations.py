"""Migrations: ordered, one transaction each, recorded, idempotent, safe to run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from api.migrate import MigrationError, load_migrations, migrate

CreateDb = Callable[[], Awaitable[str]]


async def _rows(url: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    return [(r["version"], r["name"]) for r in rows]


async def test_packaged_migrations_apply_once(create_database: CreateDb) -> None:
    """A fresh database gets every packaged migration; a second run applies nothing."""
    url = await create_database()
    expected = [m.name for m in load_migrations()]
    assert expected, "the package ships migrations"
    assert await migrate(url) == expected
    assert await migrate(url) == []
    assert [name for _, name in await _rows(url)] == expected


async def test_concurrent_runs_apply_each_migration_exactly_once(
    create_database: CreateDb, tmp_path: Path
) -> None:
    """Six runners at once: each migration is applied by exactly one of them, in order."""
    (tmp_path / "0001_a.sql").write_text(
        "CREATE TABLE a (id int PRIMARY KEY); SELECT pg_sleep(0.2);"
    )
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (id int REFERENCES a (id) );")
    (tmp_path / "0003_c.sql").write_text("ALTER TABLE a ADD COLUMN note text;")
    url = await create_database()
    results = await asyncio.gather(*(migrate(url, tmp_path) for _ in range(6)))
    applied = sorted(name for run in results for name in run)
    assert applied == ["0001_a.sql", "0002_b.sql", "0003_c.sql"]
    assert await _rows(url) == [(1, "0001_a.sql"), (2, "0002_b.sql"), (3, "0003_c.sql")]


async def test_failing_migration_rolls_back_and_is_not_recorded(
    create_database: CreateDb, tmp_path: Path
) -> None:
    """A migration that fails leaves no partial change and no record; earlier ones stay."""
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT * FROM nowhere;")
    url = await create_database()
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        await migrate(url, tmp_path)
    assert await _rows(url) == [(1, "0001_ok.sql")]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None
    finally:
        await conn.close()


async def test_edited_migration_is_refused(create_database: CreateDb, tmp_path: Path) -> None:
    """Changing an applied migration's SQL is an error, not a silent skip."""
    f = tmp_path / "0001_t.sql"
    f.write_text("CREATE TABLE t (id int);")
    url = await create_database()
    await migrate(url, tmp_path)
    f.write_text("CREATE TABLE t (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(url, tmp_path)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    """Files must be NNNN_description.sql so their order is unambiguous."""
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        load_migrations(tmp_path)
