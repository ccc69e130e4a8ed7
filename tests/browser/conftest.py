"""The fleet console in headless Chromium (Debian's /usr/bin/chromium, never a download)
against a real core and commerce on loopback ports, in a namespace of their own."""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext

from api.app import create_commerce_app
from api.commerce.accounts.passwords import Argon2Params, Passwords
from api.commerce.accounts.services import create_admin
from api.runtime import free_port
from api.settings import Settings
from streams.catalog import Names
from streams.jetstream import ensure_streams
from tests.integration.core.conftest import CoreServer, serve_core
from tests.servers import serve_app

# Debian's Chromium by default; CHROMIUM_PATH points elsewhere (another distribution's build).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAST_HASH = Argon2Params(time_cost=1, memory_kib=8192, parallelism=1)


class Console:
    """Core (serving /console/) and commerce (login) for one module, plus a staff account."""

    def __init__(self, core: CoreServer, commerce_url: str, names: Names, js: JetStreamContext,
                 email: str, password: str) -> None:
        self.core = core
        self.js = js
        self.commerce_url = commerce_url
        self.names = names
        self.email = email
        self.password = password

    @property
    def url(self) -> str:
        return f"{self.core.url}/console/"


@contextlib.asynccontextmanager
async def serve_console(settings: Settings, **overrides: object) -> AsyncIterator[Console]:
    """Core and commerce in a namespace of their own (`overrides` change core's settings),
    with an admin account for the console."""
    ns = f"{settings.server.namespace}b{secrets.token_hex(2)}"
    commerce_port = free_port()
    core_settings = settings.replace(
        server__namespace=ns,
        server__commerce_port=commerce_port,
        console__commerce_url=f"http://127.0.0.1:{commerce_port}",
        **overrides,
    )
    email, password = f"fleet-{uuid.uuid4().hex[:8]}@example.com", "console-pass-1"
    assert settings.stores.database_url
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=1)
    try:
        await create_admin(pool, email, password, Passwords(FAST_HASH))
    finally:
        await pool.close()
    nc = await nats.connect(servers=settings.stores.nats_servers)
    names = Names(ns)
    await ensure_streams(nc.jetstream(), names)
    try:
        async with serve_core(core_settings) as core:
            commerce_settings = core_settings.replace(console__origins=core.url)
            commerce = create_commerce_app(commerce_settings)
            async with serve_app(commerce, commerce_port) as commerce_url:
                yield Console(core, commerce_url, names, nc.jetstream(), email, password)
    finally:
        for spec in ("ORDERS", "DISPATCH", "LOCATIONS"):
            with contextlib.suppress(Exception):  # best-effort cleanup
                await nc.jetstream().delete_stream(f"{ns.upper()}_{spec}")
        await nc.close()


@pytest.fixture(scope="module")
async def console(settings: Settings) -> AsyncIterator[Console]:
    """Automatic dispatch is effectively off (one round an hour): the test assigns by hand."""
    async with serve_console(settings, dispatch__round_s=3600.0) as served:
        yield served


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does), or set CHROMIUM_PATH")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()
