"""Test stores: the URLs in the environment when set, else embedded servers for the session.

Each run is isolated: its own PostgreSQL database, its own Redis key prefix and NATS
namespace (subjects and stream names), all dropped at the end.

``--stores=cluster`` runs the same tests on a local 6-node Redis Cluster and 3-node NATS
cluster with JetStream (`api.local_cluster`, started for the session on ports of its own,
``REDIS_CLUSTER=true``, ``NATS_STREAM_REPLICAS=3``); PostgreSQL stays single. Tests marked
``cluster`` always run on that cluster; they are deselected unless ``--stores=cluster`` or a
``-m`` expression naming ``cluster`` asks for them, so the default run does not pay the
cluster's start-up.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client
from redis.asyncio.cluster import RedisCluster

from api.local_cluster import ClusterUrls, LocalCluster
from api.migrate import migrate
from api.runtime import EmbeddedError, EmbeddedStores
from api.settings import ServerSettings, Settings, StoreSettings
from streams.jetstream import delete_streams
from tests.servers import KillableServer, redis_server

JWT_TEST_SECRET = "test-secret-" + "x" * 40

SERIAL_GROUPS = ("faults", "browser", "fuzz")
"""Directories whose tests share one expensive system of their own (session or package
fixtures): under pytest-xdist (``-n``) each runs whole on one worker, beside the rest. The
fault drills run one after another for a second reason: two drills side by side slow each
other's restarts, which the drills time."""


class StoreUrls:
    def __init__(self, database: str, redis: str, nats: str, *, redis_cluster: bool = False,
                 nats_replicas: int = 1) -> None:
        self.database = database
        self.redis = redis
        self.nats = nats
        """One NATS URL, or several comma-separated (`nats_servers`)."""
        self.redis_cluster = redis_cluster
        self.nats_replicas = nats_replicas

    @property
    def nats_servers(self) -> list[str]:
        return self.nats.split(",")

    def redis_client(self) -> aioredis.Redis:
        """A client of the session's Redis: a cluster client on a Redis Cluster."""
        if self.redis_cluster:
            return cast(aioredis.Redis, RedisCluster.from_url(self.redis))
        return aioredis.from_url(self.redis)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stores", choices=("single", "cluster"), default="single",
        help="single: one Redis and one NATS (default); cluster: a local Redis Cluster "
             "(3 primaries, 3 replicas) and a 3-node NATS cluster for the whole session.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs on the local Redis Cluster and NATS cluster (opt-in: "
                   "--stores=cluster or -m cluster)")
    if not hasattr(config, "workerinput"):  # once, in the controller, before any worker
        _compile_project()


PACKAGES = ("api", "apps", "dispatch", "fleet_console", "geo", "lab", "roads", "routing",
            "streams")


def _compile_project() -> None:
    """Write the project's bytecode once. The suite starts many Python processes (services,
    workers, CLI runs); with PYTHONDONTWRITEBYTECODE set (as on this machine) each would
    compile every project module from source again: ~0.7 of a service's ~2 CPU s of
    start-up, which a restart in a fault drill waits on. `compileall` writes regardless."""
    root = Path(__file__).parent.parent
    for package in PACKAGES:
        compileall.compile_dir(root / package, quiet=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        if parts and parts[0] in SERIAL_GROUPS:
            item.add_marker(pytest.mark.xdist_group(parts[0]))
    if config.getoption("--stores") == "cluster" or "cluster" in config.getoption("markexpr"):
        return
    deselected = [i for i in items if i.get_closest_marker("cluster")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if not i.get_closest_marker("cluster")]


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


class LazyCluster:
    """The session's local cluster, started by whichever fixture first needs it."""

    def __init__(self, data_dir: Path) -> None:
        self.cluster = LocalCluster(data_dir)
        self.urls: ClusterUrls | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> tuple[LocalCluster, ClusterUrls]:
        async with self._lock:
            if self.urls is None:
                try:
                    self.urls = await self.cluster.start_cluster()
                except EmbeddedError:
                    # Forming the clusters is the ground of these tests, not what they test:
                    # on a starved machine the nodes may not meet in time; one more go.
                    self.urls = await self.cluster.start_cluster()
        return self.cluster, self.urls

    async def stop(self) -> None:
        if self.urls is not None:
            await self.cluster.stop()
            self.cluster.remove_files()


@pytest.fixture(scope="session")
async def lazy_cluster(tmp_data_root: Path) -> AsyncIterator[LazyCluster]:
    holder = LazyCluster(tmp_data_root / "cluster")
    yield holder
    await holder.stop()


@pytest.fixture(scope="session")
async def local_cluster(lazy_cluster: LazyCluster) -> tuple[LocalCluster, ClusterUrls]:
    """The session's local Redis Cluster (3 primaries, 3 replicas) and 3-node NATS cluster
    with JetStream, on ports and in folders of its own; stopped and removed at the end."""
    return await lazy_cluster.start()


@pytest.fixture(scope="session")
async def store_urls(request: pytest.FixtureRequest, tmp_data_root: Path,
                     lazy_cluster: LazyCluster) -> AsyncIterator[StoreUrls]:
    """Server URLs: from DATABASE_URL / REDIS_URL / NATS_URL, or embedded ones we start;
    with ``--stores=cluster``, Redis and NATS are the session's `local_cluster`."""
    env = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "NATS_URL")}
    on_cluster = request.config.getoption("--stores") == "cluster"
    cluster_urls: ClusterUrls | None = None
    if on_cluster:
        _, cluster_urls = await lazy_cluster.start()
    stores = EmbeddedStores(tmp_data_root / "stores")
    need = {
        "postgres": not env["DATABASE_URL"],
        "redis": not (env["REDIS_URL"] or on_cluster),
        "nats": not (env["NATS_URL"] or on_cluster),
    }
    urls: dict[str, str] = {}
    if any(need.values()):
        urls = await stores.start(**need)
    try:
        if cluster_urls is not None:
            yield StoreUrls(database=env["DATABASE_URL"] or urls["postgres"],
                            redis=cluster_urls.redis_url, nats=cluster_urls.nats_url,
                            redis_cluster=True, nats_replicas=3)
        else:
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
            redis_cluster=store_urls.redis_cluster,
            nats_url=store_urls.nats,
            nats_stream_replicas=store_urls.nats_replicas,
            timeout_s=2.0,
        ),
        server=ServerSettings(
            jwt_secret=JWT_TEST_SECRET,
            data_dir=tmp_data_root / "data",
            namespace=run_id,
        ),
    )
    client = store_urls.redis_client()
    try:
        keys = [k async for k in client.scan_iter(match=f"{run_id}:*", count=1000)]
        for key in keys:  # one by one: on a cluster they live on different shards
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def nats_cleanup(store_urls: StoreUrls, run_id: str) -> AsyncIterator[None]:
    """Delete every JetStream stream of this run's namespace at session end."""
    yield
    nc = await nats.connect(servers=store_urls.nats_servers)
    try:
        await delete_streams(nc.jetstream(), f"{run_id.upper()}_")
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
    conn = await nats.connect(servers=store_urls.nats_servers)
    yield conn
    await conn.close()


@pytest.fixture
async def redis(store_urls: StoreUrls) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the session's server (keys must carry the run's namespace)."""
    client = store_urls.redis_client()
    yield client
    await client.aclose()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[KillableServer]:
    """A redis-server of the test's own, without persistence, that the test may kill, pause
    and start again: stopped, it refuses connections; started again, it is empty (as a
    restarted cache would be)."""
    (tmp_path / "redis").mkdir()
    server = redis_server(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
