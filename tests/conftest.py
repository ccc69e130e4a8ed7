"""Test stores: the URLs in the environment when set, else embedded servers for the session.

Each run is isolated: its own PostgreSQL database, its own Redis key prefix and NATS
namespace (subjects and stream names), all dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client

from api.migrate import migrate
from api.runtime import EmbeddedStores
from api.settings import ServerSettings, Settings, StoreSettings

JWT_TEST_SECRET = "test-secret-" + "x" * 40

SERIAL_GROUPS = ("faults", "browser", "fuzz")
"""Directories whose tests share one expensive system of their own (session or package
fixtures): under pytest-xdist (``-n``) each runs whole on one worker, beside the rest."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        if parts and parts[0] in SERIAL_GROUPS:
            item.add_marker(pytest.mark.xdist_group(parts[0]))


class StoreUrls:
    def __init__(self, database: str, redis: str, nats: str) -> None:
        self.database = database
        self.redis = redis
        self.nats = nats


@pytest.fixture(scope="session")
def run_id() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture(scope="session")
def tmp_data_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="homechef-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class BuiltRoads:
    """What `homechef roads build` did for the session's road data."""

    def __init__(self, directory: Path, exit_code: int, stdout: str, stderr: str) -> None:
        self.directory = directory
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


@pytest.fixture(scope="session")
def monaco_roads(tmp_data_root: Path) -> BuiltRoads:
    """Road data of the shipped Monaco extract (car and bicycle, MLD), built once per session
    through the CLI (~3 s): the tests of every road consumer read it, the CLI test checks
    how it was built."""
    from click.testing import CliRunner

    from api.cli import main
    from roads.build import SAMPLE_EXTRACT

    out = tmp_data_root / "roads" / "monaco"
    result = CliRunner().invoke(main, ["roads", "build", str(SAMPLE_EXTRACT), "--out", str(out),
                                       "--profile", "car", "--profile", "bicycle"])
    return BuiltRoads(out, result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="session")
async def store_urls(tmp_data_root: Path) -> AsyncIterator[StoreUrls]:
    """Server URLs: from DATABASE_URL / REDIS_URL / NATS_URL, or embedded ones we start."""
    env = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "NATS_URL")}
    stores = EmbeddedStores(tmp_data_root / "stores")
    need = {
        "postgres": not env["DATABASE_URL"],
        "redis": not env["REDIS_URL"],
        "nats": not env["NATS_URL"],
    }
    urls: dict[str, str] = {}
    if any(need.values()):
        urls = await stores.start(**need)
    try:
        yield StoreUrls(
            database=env["DATABASE_URL"] or urls["postgres"],
            redis=env["REDIS_URL"] or urls["redis"],
            nats=env["NATS_URL"] or urls["nats"],
        )
    finally:
        await stores.stop()
        stores.remove_files()


def database_url_for(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
async def create_database(store_urls: StoreUrls) -> AsyncIterator[object]:
    """Factory: a fresh, empty database on the test server, dropped at session end."""
    created: list[str] = []

    async def create(prefix: str = "hc_test") -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        conn = await asyncpg.connect(store_urls.database)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return database_url_for(store_urls.database, name)

    yield create
    conn = await asyncpg.connect(store_urls.database)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(create_database: object) -> str:
    """The session's migrated database."""
    url: str = await create_database()  # type: ignore[operator]
    await migrate(url)
    return url


@pytest.fixture(scope="session")
async def settings(
    store_urls: StoreUrls, database_url: str, run_id: str, tmp_data_root: Path,
    nats_cleanup: None,
) -> AsyncIterator[Settings]:
    """Settings for apps under test; Redis keys and NATS names carry the run's namespace."""
    yield Settings(
        stores=StoreSettings(
            database_url=database_url,
            redis_url=store_urls.redis,
            nats_url=store_urls.nats,
            timeout_s=2.0,
        ),
        server=ServerSettings(
            jwt_secret=JWT_TEST_SECRET,
            data_dir=tmp_data_root / "data",
            namespace=run_id,
        ),
    )
    client = aioredis.from_url(store_urls.redis)
    try:
        keys = [k async for k in client.scan_iter(match=f"{run_id}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def nats_cleanup(store_urls: StoreUrls, run_id: str) -> AsyncIterator[None]:
    """Delete every JetStream stream of this run's namespace at session end."""
    yield
    nc = await nats.connect(store_urls.nats)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"{run_id.upper()}_"):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()


@pytest.fixture
async def js_names(nats_cleanup: None, run_id: str) -> object:
    """A fresh namespace per test (its streams are dropped at session end)."""
    from streams.catalog import Names

    return Names(f"{run_id}_{secrets.token_hex(3)}")


@pytest.fixture
async def nc(store_urls: StoreUrls) -> AsyncIterator[Client]:
    """A plain NATS connection to the session's server."""
    conn = await nats.connect(store_urls.nats)
    yield conn
    await conn.close()


@pytest.fixture
async def redis(store_urls: StoreUrls) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the session's server (keys must carry the run's namespace)."""
    client = aioredis.from_url(store_urls.redis)
    yield client
    await client.aclose()
