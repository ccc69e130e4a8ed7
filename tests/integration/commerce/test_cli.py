"""``homechef users create-admin`` creates an admin who can log in; bad input is refused."""

from __future__ import annotations

import uuid

from click.testing import CliRunner

from api.cli import main
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
