"""``homechef users create-admin`` creates an admin who can log in; bad input is refused."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
from click.testing import CliRunner

from api.cli import main
from api.migrate import migrate
from api.runtime import EmbeddedStores
from api.settings import Settings


def test_create_admin_then_duplicate_and_bad_email(settings: Settings) -> None:
    """The first run creates the admin; the same email again and a malformed email fail
    with a message and a non-zero exit."""
    assert settings.stores.database_url
    env = {"DATABASE_URL": settings.stores.database_url}
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    runner = CliRunner()
    args = ["users", "create-admin", "--email", email, "--password", "sup3r-secret"]
    r = runner.invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    assert f"created admin {email}" in r.output
    r = runner.invoke(main, args, env=env)
    assert r.exit_code != 0
    assert "already exists" in r.output
    r = runner.invoke(main, ["users", "create-admin", "--email", "nope", "--password",
                             "sup3r-secret"], env=env)
    assert r.exit_code != 0


async def test_create_admin_in_the_embedded_database_of_homechef_up_and_reset(
        tmp_path: Path) -> None:
    """Without DATABASE_URL the command finds the embedded PostgreSQL of `homechef up` under
    DATA_DIR: the running one (no URL to copy from the logs), or, stopped, it starts it
    (migrating a fresh one) and stops it again. `homechef reset` wipes it, once stopped."""
    data_dir = tmp_path / "homechef"
    env = {"DATABASE_URL": None, "DATA_DIR": str(data_dir)}
    stores = EmbeddedStores(data_dir)
    try:
        url = (await stores.start(postgres=True, redis=False, nats=False))["postgres"]
        await migrate(url)
        running = await asyncio.to_thread(CliRunner().invoke, main, [
            "users", "create-admin", "--email", "up@example.com", "--password", "sup3r-secret"],
            env=env)
        assert running.exit_code == 0, running.output
        assert "the running embedded PostgreSQL" in running.output
        await stores.stop()

        stopped = await asyncio.to_thread(CliRunner().invoke, main, [
            "users", "create-admin", "--email", "down@example.com", "--password",
            "sup3r-secret"], env=env)
        assert stopped.exit_code == 0, stopped.output
        assert "created admin down@example.com" in stopped.output
        assert stores.running_url("postgres") is None  # stopped again

        url = (await stores.start(postgres=True, redis=False, nats=False))["postgres"]
        conn = await asyncpg.connect(url)
        try:
            roles = dict(await conn.fetch("SELECT email, role FROM users WHERE email = ANY($1)",
                                          ["up@example.com", "down@example.com"]))
        finally:
            await conn.close()
        assert roles == {"up@example.com": "admin", "down@example.com": "admin"}

        (data_dir / "roads").mkdir()
        location = data_dir / "postgres-location.txt"  # as root: PostgreSQL's temp folder
        pg_files = Path(location.read_text().strip()) if location.exists() else data_dir
        refused = CliRunner().invoke(main, ["reset"], env=env)
        assert refused.exit_code != 0
        assert "still running" in refused.output
        await stores.stop()
        wiped = CliRunner().invoke(main, ["reset"], env=env)
        assert wiped.exit_code == 0, wiped.output
        assert "removed" in wiped.output
        assert sorted(p.name for p in data_dir.iterdir()) == ["roads"]  # road data stays
        assert not (pg_files / "data").exists()
    finally:
        await stores.stop()
        stores.remove_files()
