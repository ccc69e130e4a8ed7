"""A real core server (uvicorn on a free loopback port) shared by the core tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from api.app import create_core_app
from api.auth import Role, TokenCodec
from api.runtime import free_port
from api.settings import Settings
from tests.servers import FAST_LANE, serve_app


class CoreServer:
    def __init__(self, url: str, settings: Settings, app: object) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://")
        self.settings = settings
        self.app = app
        assert settings.server.jwt_secret
        self.codec = TokenCodec(settings.server.jwt_secret)

    def token(self, user_id: str, role: Role | str) -> str:
        return self.codec.issue(user_id, role)

    def auth(self, user_id: str, role: Role | str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, role)}"}

    @property
    def core(self) -> object:
        return self.app.state.core  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def serve_core(settings: Settings, ws: str = FAST_LANE) -> AsyncIterator[CoreServer]:
    app = create_core_app(settings)
    async with serve_app(app, ws=ws) as url:
        yield CoreServer(url, settings, app)


@pytest.fixture(scope="session")
async def core_server(settings: Settings) -> AsyncIterator[CoreServer]:
    async with serve_core(settings) as srv:
        yield srv


@pytest.fixture
async def http(core_server: CoreServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=core_server.url, timeout=10) as client:
        yield client


async def eventually(check: Callable[[], object], timeout_s: float = 5.0) -> object:
    """Poll an async predicate until it returns a truthy value (or fail after timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()  # type: ignore[misc]
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(0.05)


class CoreProcess:
    """`homechef serve core` in its own process (for multi-process and kill tests)."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                await self.kill()


async def spawn_core(settings: Settings, **env: str) -> CoreProcess:
    """Start a core process with the session's stores and namespace plus ``env`` overrides."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from api.settings import to_environ

    port = free_port()
    child_env = {**os.environ, **to_environ(settings), "CORE_PORT": str(port),
                 "COMMERCE_PORT": str(free_port()), "LOG_LEVEL": "WARNING", **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "serve", "core", env=child_env,
        cwd=Path(__file__).parents[3], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"core process exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return CoreProcess(proc, url)
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("core process did not become healthy")
            await asyncio.sleep(0.1)
